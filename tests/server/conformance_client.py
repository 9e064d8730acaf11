"""Send the RFC 4475 / RFC 5118 torture messages to running routr servers; report the answers.

Run by ``tests/server/test_conformance.py`` inside the servers' loopback-only network
namespace::

    conformance_client.py --corpus DIR --server UDP_PORT,TCP_PORT [--server ...]

Every message is sent byte-exact from its ``.sip`` file. Over UDP it leaves from a socket
bound to ``host:<top Via port, default 5060>``, because that is where a server answers a
Via without ``rport`` (RFC 3261 §18.2.2). After the message, an OPTIONS from the same
socket is a barrier: the server handles one flow's messages in order, so once the OPTIONS
200 is here, every answer the server gives synchronously (parse errors, 416, 420, 505) is
here too. A request that parses goes on to the registrar or the proxy, which answer
asynchronously: for those we wait for a final answer on the message's Call-ID (bounded by
``--timeout``), then send a second OPTIONS. Non-2xx finals to an INVITE are ACKed, so the
server stops retransmitting them.

Some corpus messages share a transaction id (branch, sent-by, Call-ID, CSeq, method), such
as longreq over UDP and TCP. To one server the later ones are retransmissions of the first
(RFC 3261 §17.2.3) and get its answer again; so each message goes to the first server (of
several started alike) that has not seen its id. Messages that share only a branch
(cparam01/cparam02) are different requests, answered each on its own.

Prints one JSON list on stdout, one object per (message, transport).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import select
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from routr.sip.errors import ParseError
from routr.sip.message import Request, Response, parse_message
from routr.sip.transaction import server_key

CORPORA = ("rfc4475", "rfc5118")
_VIA_LINE = re.compile(
    rb"^(?:via|v)[ \t]*:[ \t]*SIP[ \t]*/[ \t]*[^/\s]+[ \t]*/[ \t]*\S+[ \t]+([^;,\s]+)",
    re.IGNORECASE | re.MULTILINE,
)
_CALL_ID_LINE = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_STATUS_LINE = re.compile(rb"^SIP/2\.0 (\d{3}) ?([^\r\n]*)")
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", re.I | re.M)

Info = dict[str, Any]


# -- the corpus -------------------------------------------------------------------------


def load_manifest(corpus_dir: Path) -> list[dict[str, str]]:
    """Both manifests' rows, each with its ``corpus`` and ``path``."""
    rows = []
    for corpus in CORPORA:
        manifest = corpus_dir / corpus / "MANIFEST.tsv"
        with manifest.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                path = str(manifest.parent / f"{row['name']}.sip")
                rows.append({**row, "corpus": corpus, "path": path})
    return rows


def transports_of(row: dict[str, str]) -> list[str]:
    """``udp``, ``udp-only`` -> [udp]; ``udp+tcp`` -> [udp, tcp]."""
    return ["udp"] + (["tcp"] if "tcp" in row["transport"].split("+") else [])


def inspect(data: bytes) -> tuple[str | None, str | None, str | None]:
    """The message's Call-ID, its transaction key and Request-URI when the server will hand
    it to the registrar or proxy (it parses, is a request and passes check())."""
    match = _CALL_ID_LINE.search(data)
    call_id = match.group(1).decode("utf-8", "replace") if match else None
    try:
        msg = parse_message(data, datagram=True)
        if isinstance(msg, Request):
            msg.check()
            return msg.call_id, server_key(msg), str(msg.uri)
    except ParseError:
        pass
    return call_id, None, None


def plan(rows: list[dict[str, str]]) -> list[tuple[dict[str, str], str, int]]:
    """(row, transport, server index): a message goes to the first server that has not yet
    seen its transaction key."""
    seen: list[set[str]] = []
    out = []
    for row in rows:
        key = inspect(Path(row["path"]).read_bytes())[1]
        for transport in transports_of(row):
            index = 0
            if key is not None:
                while index < len(seen) and key in seen[index]:
                    index += 1
                if index == len(seen):
                    seen.append(set())
                seen[index].add(key)
            out.append((row, transport, index))
    return out


def servers_needed(corpus_dir: Path) -> int:
    return 1 + max(index for _, _, index in plan(load_manifest(corpus_dir)))


def reply_port(data: bytes) -> int:
    """The top Via's port (5060 when absent): where routr answers a Via without rport."""
    message = None
    try:
        message = parse_message(data)
    except ParseError as exc:
        message = exc.message
    if message is not None:
        try:
            return message.via.port or 5060
        except ParseError:
            pass
    match = _VIA_LINE.search(data)  # a Via the parser refuses (SIP/7.0/UDP ...)
    if match:
        hostport = match.group(1).decode("latin-1")
        tail = hostport.rsplit("]", 1)[-1] if hostport.startswith("[") else hostport
        if ":" in tail and tail.rsplit(":", 1)[1].isdigit():
            return int(tail.rsplit(":", 1)[1])
    return 5060


# -- answers ----------------------------------------------------------------------------


def describe(data: bytes) -> Info:
    """What came back: status, reason, Call-ID, CSeq, Unsupported (and how to ACK it)."""
    try:
        msg = parse_message(data)
    except ParseError as exc:
        status = _STATUS_LINE.match(data)
        call_id = _CALL_ID_LINE.search(data)
        return {
            "status": int(status.group(1)) if status else None,
            "reason": status.group(2).decode("utf-8", "replace") if status else None,
            "call_id": call_id.group(1).decode("utf-8", "replace") if call_id else None,
            "unparsable": exc.reason,
            "raw": data[:300].decode("utf-8", "replace"),
        }
    if not isinstance(msg, Response):
        return {"status": None, "request": msg.start_line(), "call_id": msg.get("call-id")}
    return {
        "status": msg.status,
        "reason": msg.reason,
        "call_id": msg.get("call-id"),
        "cseq": msg.get("cseq"),
        "unsupported": msg.get("unsupported"),
        "ack": _ack_parts(msg),
    }


def _ack_parts(response: Response) -> dict[str, str] | None:
    """What the ACK of a non-2xx final answer to an INVITE needs (RFC 3261 §17.1.1.3)."""
    try:
        cseq = response.cseq
        if cseq.method != "INVITE" or response.status < 300:
            return None
        return {
            "via": response.get_all("via")[0].split(",", 1)[0],
            "from": response.get("from") or "",
            "to": response.get("to") or "",
            "call_id": response.call_id,
            "cseq": str(cseq.number),
        }
    except (ParseError, IndexError):
        return None


def ack_for(parts: dict[str, str], uri: str) -> bytes:
    return (
        f"ACK {uri} SIP/2.0\r\n"
        f"Via: {parts['via']}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: {parts['from']}\r\n"
        f"To: {parts['to']}\r\n"
        f"Call-ID: {parts['call_id']}\r\n"
        f"CSeq: {parts['cseq']} ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode("utf-8", "surrogateescape")


def is_final_for(info: Info, call_id: str | None) -> bool:
    if (info.get("status") or 0) < 200 or str(info.get("call_id")).startswith("barrier-"):
        return False
    return call_id is None or info.get("call_id") == call_id


# -- sending ----------------------------------------------------------------------------


class Flow:
    """One way to reach a server: send bytes, receive whole messages."""

    local_port: int

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def receive(self, timeout: float) -> bytes | None:
        raise NotImplementedError


class UdpFlow(Flow):
    def __init__(self, sock: socket.socket, server: tuple[str, int]) -> None:
        self.sock = sock
        self.server = server
        self.local_port = sock.getsockname()[1]

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def receive(self, timeout: float) -> bytes | None:
        if not select.select([self.sock], [], [], max(timeout, 0))[0]:
            return None
        return self.sock.recv(65535)

    def drain(self) -> list[bytes]:
        """What is queued already: a late answer to an earlier message."""
        out = []
        while select.select([self.sock], [], [], 0)[0]:
            out.append(self.sock.recv(65535))
        return out


class TcpFlow(Flow):
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.local_port = sock.getsockname()[1]
        self.buf = bytearray()
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame()
            if frame is not None:
                return frame
            left = deadline - time.monotonic()
            if self.closed or left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            chunk = self.sock.recv(65535)
            if not chunk:
                self.closed = True
            self.buf += chunk

    def _frame(self) -> bytes | None:
        """A whole message off the front of the buffer (Content-Length framing)."""
        buf = self.buf
        while buf[:2] == b"\r\n":
            del buf[:2]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        match = _CONTENT_LENGTH.search(bytes(buf[: end + 4]))
        size = end + 4 + (int(match.group(1)) if match else 0)
        if len(buf) < size:
            return None
        frame = bytes(buf[:size])
        del buf[:size]
        return frame


class Client:
    def __init__(self, host: str, servers: list[tuple[int, int | None]], timeout: float) -> None:
        self.host = host
        self.servers = servers
        self.timeout = timeout
        self.barriers = 0
        self.sockets: dict[int, socket.socket] = {}
        self.uris: dict[str, str] = {}  # Call-ID -> Request-URI, for ACKs

    def udp_socket(self, port: int) -> socket.socket:
        sock = self.sockets.get(port)
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, port))
            self.sockets[port] = sock
        return sock

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()

    def barrier_request(self, transport: str, flow: Flow, server_port: int) -> tuple[str, bytes]:
        self.barriers += 1
        n, host = self.barriers, self.host
        call_id = f"barrier-{n}@conformance.invalid"
        data = (
            f"OPTIONS sip:{host}:{server_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {host}:{flow.local_port};branch=z9hG4bKbarrier{n};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:conformance@{host}>;tag=barrier{n}\r\n"
            f"To: <sip:{host}:{server_port}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        return call_id, data

    def receive_until(self, flow: Flow, done: Callable[[Info], bool], got: list[Info]) -> bool:
        """Record what arrives (ACKing INVITE failures) until ``done`` or the timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            data = flow.receive(deadline - time.monotonic())
            if data is None:
                return False
            info = describe(data)
            ack = info.pop("ack", None)
            if ack is not None:
                flow.send(ack_for(ack, self.uris.get(ack["call_id"], "sip:invalid")))
                info["acked"] = True
            got.append(info)
            if done(info):
                return True

    def barrier(self, flow: Flow, transport: str, server_port: int, got: list[Info]) -> bool:
        call_id, data = self.barrier_request(transport, flow, server_port)
        flow.send(data)
        return self.receive_until(
            flow, lambda i: i.get("call_id") == call_id and (i.get("status") or 0) >= 200, got
        )

    def run(self, data: bytes, transport: str, index: int) -> Info:
        call_id, key, uri = inspect(data)
        if call_id is not None and uri is not None:
            self.uris[call_id] = uri
        udp_port, tcp_port = self.servers[index]
        server_port = udp_port if transport == "udp" else tcp_port
        assert server_port is not None, "no TCP port for this server"
        stray: list[Info] = []
        if transport == "udp":
            flow: Flow = UdpFlow(self.udp_socket(reply_port(data)), (self.host, server_port))
            stray = [describe(d) for d in flow.drain()]  # type: ignore[attr-defined]
            conn = None
        else:
            conn = socket.create_connection((self.host, server_port), timeout=self.timeout)
            flow = TcpFlow(conn)
        got: list[Info] = []
        try:
            flow.send(data)
            barrier_ok = self.barrier(flow, transport.upper(), server_port, got)
            waited = None
            asynchronous = key is not None
            if barrier_ok and asynchronous and not any(is_final_for(i, call_id) for i in got):
                waited = self.receive_until(flow, lambda i: is_final_for(i, call_id), got)
            final_ok = barrier_ok and self.barrier(flow, transport.upper(), server_port, got)
        finally:
            if conn is not None:
                conn.close()
        return {
            "server": index,
            "local_port": flow.local_port,
            "call_id": call_id,
            "asynchronous": asynchronous,
            "barrier_ok": barrier_ok,
            "waited_for_answer": waited,
            "final_barrier_ok": final_ok,
            "received": got,
            "stray_before": stray,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--corpus", type=Path, required=True, help="the conformance folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--server", action="append", required=True, help="UDP_PORT[,TCP_PORT] of one server"
    )
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--only", action="append", help="only these message names")
    args = parser.parse_args(argv)

    servers: list[tuple[int, int | None]] = []
    for spec in args.server:
        udp, _, tcp = spec.partition(",")
        servers.append((int(udp), int(tcp) if tcp else None))
    client = Client(args.host, servers, args.timeout)
    results = []
    try:
        for row, transport, index in plan(load_manifest(args.corpus)):
            if args.only and row["name"] not in args.only:
                continue
            base = {"corpus": row["corpus"], "name": row["name"], "transport": transport}
            base.update(check=row["check"], valid=row["valid"])
            if index >= len(servers):
                results.append({**base, "error": f"needs server #{index}; {len(servers)} given"})
                continue
            try:
                data = Path(row["path"]).read_bytes()
                results.append({**base, **client.run(data, transport, index)})
            except (OSError, AssertionError) as exc:
                results.append({**base, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        client.close()
    json.dump(results, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
