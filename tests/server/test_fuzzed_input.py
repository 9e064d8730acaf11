"""The server survives fuzzed input: the RFC 4475/5118 torture corpora and 10,000 mutated
messages over UDP and TCP, then OPTIONS is still answered, the process is alive and its log
holds no traceback.

The mutations are made here, deterministically from ``SEED``, out of valid messages (OPTIONS,
REGISTER with and without credentials, INVITE with a body, MESSAGE, BYE, ACK, a response)
and the corpus: bytes flipped, cut short, lines repeated, huge values, junk inserted, lines
swapped, line ends lost. They come from 127.0.0.9, an untrusted source, so every check of
the way in applies; the test config raises ``spec.security.floodBan.requests`` and
``spec.security.authFailureBan.failures`` far above what is sent, so that no ban hides what
the parser and the core do with the junk.

The corpus names outside hosts, so, as in ``test_conformance.py``, the server and the
sender (this file run as a script) live in a loopback-only network namespace (root and
iproute2, else skipped; on CI it fails instead).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SEED = 4475
COUNT = 10_000
PROBES = 20  # OPTIONS before and after, each must be answered
PROBE_TIMEOUT = 5.0  # the generous bound: OPTIONS is answered in about a millisecond
BARRIER_EVERY = 250  # an OPTIONS after so many junk messages, so the server keeps up
JUNK_IP = "127.0.0.9"
DOMAIN = "sip.local"
AGENT_SECRET = "fuzzed-input-secret"  # in support.server.TEST_SECRETS: no log may show it


def corpus_dir() -> Path:
    env = os.environ.get("ROUTR_SHARED")
    return (Path(env) if env else REPO.parent / "shared") / "conformance"


def corpus() -> list[bytes]:
    folders = [corpus_dir() / name for name in ("rfc4475", "rfc5118")]
    return [path.read_bytes() for folder in folders for path in sorted(folder.glob("*.sip"))]


# -- the messages --------------------------------------------------------------------------


def _message(start: str, headers: list[str], body: str = "") -> bytes:
    lines = [start, *headers, f"Content-Length: {len(body.encode())}", "", body]
    return "\r\n".join(lines).encode()


def templates(port: int, local: tuple[str, int]) -> list[bytes]:
    """Valid messages to this server from ``local``."""
    host, lport = local
    via = f"Via: SIP/2.0/UDP {host}:{lport};branch=z9hG4bK-fuzz-{{n}};rport"
    common = [via, "Max-Forwards: 70", "Call-ID: fuzz-{n}@" + host]
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\n"
    auth = (f'Authorization: Digest username="1001", realm="{DOMAIN}", nonce="n0nce", '
            f'uri="sip:{DOMAIN}", response="0123456789abcdef0123456789abcdef", '
            'algorithm=MD5, qop=auth, nc=00000001, cnonce="c"')  # fmt: skip
    user = f"<sip:1001@{DOMAIN}>;tag=t{{n}}"
    return [
        _message(f"OPTIONS sip:127.0.0.1:{port} SIP/2.0", [*common, f"From: {user}",
                 f"To: <sip:127.0.0.1:{port}>", "CSeq: 1 OPTIONS", "User-Agent: fuzz"]),
        _message(f"REGISTER sip:{DOMAIN} SIP/2.0", [*common, f"From: {user}",
                 f"To: <sip:1001@{DOMAIN}>", "CSeq: 2 REGISTER", "Expires: 60",
                 f"Contact: <sip:1001@{host}:{lport}>;expires=60;q=0.5"]),
        _message(f"REGISTER sip:{DOMAIN} SIP/2.0", [*common, f"From: {user}",
                 f"To: <sip:1001@{DOMAIN}>", "CSeq: 3 REGISTER", auth,
                 f"Contact: <sip:1001@{host}:{lport}>, <sip:1001@[::1]:5062;transport=tcp>"]),
        _message(f"INVITE sip:1002@{DOMAIN} SIP/2.0", [*common, f"From: {user}",
                 f"To: <sip:1002@{DOMAIN}>", "CSeq: 4 INVITE", f"Contact: <sip:1001@{host}>",
                 f"Route: <sip:127.0.0.1:{port};lr>", "Content-Type: application/sdp",
                 "Supported: replaces, timer", "Require: 100rel"], sdp),
        _message(f"MESSAGE sip:1002@{DOMAIN} SIP/2.0", [*common, f"From: {user}",
                 f"To: <sip:1002@{DOMAIN}>", "CSeq: 5 MESSAGE", "Content-Type: text/plain"],
                 "hello"),
        _message(f"BYE sip:1002@{DOMAIN} SIP/2.0", [*common, f"From: {user}",
                 f"To: <sip:1002@{DOMAIN}>;tag=x", "CSeq: 6 BYE"]),
        _message(f"ACK sip:1002@{DOMAIN} SIP/2.0", [*common, f"From: {user}",
                 f"To: <sip:1002@{DOMAIN}>;tag=x", "CSeq: 4 ACK"]),
        _message("SIP/2.0 200 OK", [f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKx",
                 *common[1:], f"From: {user}", f"To: <sip:1002@{DOMAIN}>;tag=y",
                 "CSeq: 4 INVITE", f"Contact: <sip:1002@{host}:{lport}>"]),
    ]  # fmt: skip


_JUNK = [b"\x00", b"\xff", b"\r\n", b"\n", b"\r", b":", b";", b",", b"<", b">", b'"', b"\\",
         b"%", b"@", b"[", b"]", b" ", b"\t", b"=", b"SIP/2.0", b"\r\n\r\n", b"\x80"]  # fmt: skip


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four edits of ``data``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(("flip", "cut", "insert", "repeat", "huge", "delete", "swap", "bare"))
        pos = rng.randrange(len(out) + 1)
        lines = bytes(out).split(b"\r\n")
        if kind == "flip" and out:
            out[min(pos, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif kind == "cut":
            del out[pos:]
        elif kind == "insert":
            out[pos:pos] = rng.choice(_JUNK) * rng.randint(1, 3)
        elif kind == "delete":
            del out[pos : pos + rng.randint(1, 40)]
        elif kind == "repeat" and len(lines) > 2:
            i = rng.randrange(1, len(lines))
            lines[i:i] = [lines[i]] * rng.choice((1, 2, 10, 100, 1000))
            out = bytearray(b"\r\n".join(lines))
        elif kind == "huge" and len(lines) > 2:
            i = rng.randrange(len(lines))
            filler = rng.choice((b"a", b"9", b";p", b",", b"%41", b"<sip:x@y>,", b" "))
            lines[i] += filler * (rng.choice((100, 1000, 10_000, 70_000)) // len(filler))
            out = bytearray(b"\r\n".join(lines))
        elif kind == "swap" and len(lines) > 3:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            out = bytearray(b"\r\n".join(lines))
        elif kind == "bare":
            out = bytearray(bytes(out).replace(b"\r\n", rng.choice((b"\n", b"\r", b""))))
    return bytes(out)


def mutations(bases: list[bytes], count: int, seed: int = SEED) -> Iterator[bytes]:
    """``count`` mutated messages, the same ones for the same seed; each numbered into its
    Call-ID and branch (``{n}``) so they are different transactions."""
    rng = random.Random(seed)
    for n in range(count):
        base = rng.choice(bases).replace(b"{n}", str(n).encode())
        yield mutate(rng, base)[:65_507]  # the largest UDP payload


# -- the sender (run inside the namespace) ---------------------------------------------------


class Probe:
    """OPTIONS from its own untrusted socket; the time to the answer, or None."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((JUNK_IP, 0))
        self.n = 0

    def __call__(self) -> float | None:
        self.n += 1
        host, lport = self.sock.getsockname()
        call_id = f"probe-{self.n}@{host}"
        data = _message(f"OPTIONS sip:127.0.0.1:{self.port} SIP/2.0", [
            f"Via: SIP/2.0/UDP {host}:{lport};branch=z9hG4bK-probe-{self.n};rport",
            "Max-Forwards: 70", f"From: <sip:probe@{host}>;tag=p{self.n}",
            f"To: <sip:127.0.0.1:{self.port}>", f"Call-ID: {call_id}", "CSeq: 1 OPTIONS",
        ])  # fmt: skip
        started = time.monotonic()
        deadline = started + PROBE_TIMEOUT
        resend, interval = started, 0.5  # retransmitted like any UDP client (T1 doubling):
        while (now := time.monotonic()) < deadline:  # a full socket buffer may drop one
            if now >= resend:
                self.sock.sendto(data, ("127.0.0.1", self.port))
                resend, interval = now + interval, interval * 2
            if select.select([self.sock], [], [], min(resend, deadline) - now)[0]:
                answer = self.sock.recv(65535)
                if answer.startswith(b"SIP/2.0 200") and call_id.encode() in answer:
                    return time.monotonic() - started
        return None


class Junk:
    """Sends junk over UDP and TCP from 127.0.0.9 and counts what comes back."""

    def __init__(self, udp_port: int, tcp_port: int) -> None:
        self.udp_port, self.tcp_port = udp_port, tcp_port
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((JUNK_IP, 0))
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.tcp: socket.socket | None = None
        self.tcp_sent = 0
        self.sent = {"udp": 0, "tcp": 0}
        self.answers: dict[str, int] = {}
        self.connections = 0
        self.closed_by_server = 0

    def _count(self, data: bytes) -> None:
        for line in data.split(b"\r\n"):
            if line.startswith(b"SIP/2.0 ") and line[8:11].isdigit():
                key = line[8:11].decode()
                self.answers[key] = self.answers.get(key, 0) + 1

    def drain(self) -> None:
        while select.select([self.udp], [], [], 0)[0]:
            self._count(self.udp.recv(65535))
        if self.tcp is not None:
            while select.select([self.tcp], [], [], 0)[0]:
                try:
                    data = self.tcp.recv(65535)
                except ConnectionError:
                    data = b""
                if not data:
                    self.closed_by_server += 1
                    self._close()
                    return
                self._count(data)

    def _close(self) -> None:
        if self.tcp is not None:
            self.tcp.close()
            self.tcp = None

    def send_udp(self, data: bytes) -> None:
        self.udp.sendto(data, ("127.0.0.1", self.udp_port))
        self.sent["udp"] += 1

    def send_tcp(self, data: bytes) -> None:
        """On a connection kept for 25 messages (a framing error ends it sooner)."""
        if self.tcp is None or self.tcp_sent >= 25:
            self._close()
            self.tcp = socket.create_connection(("127.0.0.1", self.tcp_port), timeout=5)
            self.connections += 1
            self.tcp_sent = 0
        try:
            self.tcp.sendall(data)
        except OSError:  # the server closed it after a framing error: on a new one
            self.closed_by_server += 1
            self._close()
            return self.send_tcp(data)
        self.tcp_sent += 1
        self.sent["tcp"] += 1


def send_all(udp_port: int, tcp_port: int, count: int) -> dict[str, Any]:
    probe = Probe(udp_port)
    before = [probe() for _ in range(PROBES)]
    junk = Junk(udp_port, tcp_port)
    torture = corpus()
    for data in torture:
        junk.send_udp(data)
        junk.send_tcp(data)
        junk.drain()
    barriers_missed = 0
    bases = templates(udp_port, junk.udp.getsockname()) + torture
    for n, data in enumerate(mutations(bases, count), 1):
        if n % 2:
            junk.send_udp(data)
        else:
            junk.send_tcp(data)
        if n % BARRIER_EVERY == 0:
            junk.drain()
            barriers_missed += probe() is None
    junk._close()
    junk.drain()
    after = [probe() for _ in range(PROBES)]
    return {
        "before": before, "after": after, "sent": junk.sent, "corpus": len(torture),
        "answers": junk.answers, "tcp_connections": junk.connections,
        "tcp_closed_by_server": junk.closed_by_server, "barriers_missed": barriers_missed,
        "tcp_options": _tcp_options(tcp_port),  # and over TCP, on a fresh connection
    }  # fmt: skip


def _tcp_options(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as conn:
        host, lport = conn.getsockname()
        conn.sendall(_message(f"OPTIONS sip:127.0.0.1:{port} SIP/2.0", [
            f"Via: SIP/2.0/TCP {host}:{lport};branch=z9hG4bK-probe-tcp", "Max-Forwards: 70",
            f"From: <sip:probe@{host}>;tag=pt", f"To: <sip:127.0.0.1:{port}>",
            f"Call-ID: probe-tcp@{host}", "CSeq: 1 OPTIONS",
        ]))  # fmt: skip
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = conn.recv(65535)
            if not chunk:
                break
            got += chunk
        return got.startswith(b"SIP/2.0 200")


def main() -> None:
    parser = argparse.ArgumentParser(description="send the corpus and mutated messages")
    parser.add_argument("udp_port", type=int)
    parser.add_argument("tcp_port", type=int)
    parser.add_argument("--count", type=int, default=COUNT)
    args = parser.parse_args()
    print(json.dumps(send_all(args.udp_port, args.tcp_port, args.count)))


# -- the test ------------------------------------------------------------------------------


def test_mutations_are_deterministic_and_varied() -> None:
    bases = templates(5060, (JUNK_IP, 5070))
    first = list(mutations(bases, 200))
    assert first == list(mutations(bases, 200))
    assert len(set(first)) > 190  # a few cut to nothing
    assert any(len(m) > 60_000 for m in mutations(bases, 2000))


def test_server_survives_corpus_and_mutations(tmp_path: Path) -> None:
    # Imported here: run as a script (the sender), this file has no tests/ on its path.
    from support.data import agent, domain, write_resources
    from support.server import NamespacedRoutr, network_namespace

    if not corpus_dir().is_dir():
        pytest.skip(f"conformance corpus not found under {corpus_dir()} (set ROUTR_SHARED)")
    spec = {"security": {"floodBan": {"requests": 10 * COUNT, "seconds": 1},
                         "authFailureBan": {"failures": 10 * COUNT}}}  # fmt: skip
    data = write_resources(tmp_path / "data", domain(DOMAIN),
                           agent("1001", AGENT_SECRET, [DOMAIN]),
                           agent("1002", AGENT_SECRET, [DOMAIN]))  # fmt: skip
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}
    with network_namespace("routr-fuzz") as netns:
        server = NamespacedRoutr(tmp_path, netns, spec=spec, env=env, data=data).start()
        try:
            cmd = ["ip", "netns", "exec", netns, sys.executable, __file__,
                   str(server.ports["udp"]), str(server.ports["tcp"])]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
            assert done.returncode == 0, f"the sender failed:\n{done.stderr}"
            report = json.loads(done.stdout)
            alive = server.proc is not None and server.proc.poll() is None
        finally:
            code = server.stop()
    before = [t for t in report["before"] if t is not None]
    after = [t for t in report["after"] if t is not None]
    print(
        f"\nfuzzed input: sent {report['sent']} ({report['corpus']} corpus messages each way), "
        f"answers by status {dict(sorted(report['answers'].items()))}, "
        f"{report['tcp_connections']} TCP connections ({report['tcp_closed_by_server']} closed "
        f"by the server); OPTIONS median {statistics.median(before) * 1000:.2f} ms before, "
        f"{statistics.median(after) * 1000 if after else float('nan'):.2f} ms after "
        f"(max {max(after, default=float('nan')) * 1000:.2f} ms)"
    )
    assert len(before) == PROBES, "OPTIONS unanswered before any junk was sent"
    assert len(after) == PROBES, f"OPTIONS unanswered after the junk: {report['after']}"
    assert report["tcp_options"], "OPTIONS over a new TCP connection unanswered after the junk"
    assert report["barriers_missed"] == 0, report
    assert report["sent"]["udp"] + report["sent"]["tcp"] == COUNT + 2 * report["corpus"]
    assert alive, "routr-server died:\n" + "\n".join(server.raw[-50:])
    assert code == 0, "\n".join(server.raw[-50:])
    problems = server.problems()
    assert not problems, "\n".join(problems[:20])


if __name__ == "__main__":
    main()
