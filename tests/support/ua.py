"""A small scripted SIP user agent for end-to-end proxy tests, over UDP or TCP.

It does what SIPp cannot easily be asked to: record every message it receives (with the
flow it came on) so that a test can count copies, read Record-Route, and answer or stay
silent message by message. Blocking, one reader thread, waits always bounded.
"""

from __future__ import annotations

import itertools
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from routr.sip.address import parse_address
from routr.sip.framing import KeepAlive, StreamFramer
from routr.sip.message import Message, Request, Response, make_request, parse_message
from routr.sip.uri import SipURI

_seq = itertools.count(1)
Addr = tuple[str, int]


def branch() -> str:
    return f"z9hG4bK-ua-{uuid.uuid4().hex[:16]}"


@dataclass
class Received:
    """A message and where it came from (``conn`` is the TCP socket, else None)."""

    message: Message
    source: Addr
    conn: socket.socket | None = None

    @property
    def request(self) -> Request:
        assert isinstance(self.message, Request), self.message
        return self.message

    @property
    def response(self) -> Response:
        assert isinstance(self.message, Response), self.message
        return self.message


Match = Callable[[Message], bool]


def is_request(method: str) -> Match:
    return lambda m: isinstance(m, Request) and m.method == method


def is_response(status: int | None = None, method: str | None = None) -> Match:
    def match(m: Message) -> bool:
        if not isinstance(m, Response):
            return False
        if status is not None and m.status != status:
            return False
        return method is None or m.cseq.method == method

    return match


def final_response(method: str) -> Match:
    return lambda m: isinstance(m, Response) and m.status >= 200 and m.cseq.method == method


class UA:
    """One SIP endpoint on 127.0.0.1: a UDP socket, or a TCP listener plus connections."""

    def __init__(self, transport: str = "udp", host: str = "127.0.0.1") -> None:
        self.transport = transport
        self.host = host
        self._sel = selectors.DefaultSelector()
        self._lock = threading.Condition()
        self.received: list[Received] = []
        self._taken: set[int] = set()
        self._conns: dict[Addr, socket.socket] = {}
        self._framers: dict[socket.socket, StreamFramer] = {}
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((host, 0))
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, 0))
            self.sock.listen(16)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self._sel.register(self.sock, selectors.EVENT_READ)
        self._stop = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    # -- addresses ----------------------------------------------------------------------

    @property
    def addr(self) -> Addr:
        return self.host, self.port

    def contact(self, user: str) -> str:
        params = ";transport=tcp" if self.transport == "tcp" else ""
        return f"<sip:{user}@{self.host}:{self.port}{params}>"

    def via(self, branch_id: str | None = None) -> str:
        return (
            f"SIP/2.0/{self.transport.upper()} {self.host}:{self.port};"
            f"branch={branch_id or branch()};rport"
        )

    # -- the reader thread --------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop:
            for key, _ in self._sel.select(0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._wake_r:
                    return
                if sock is self.sock and self.transport == "udp":
                    try:
                        data, src = sock.recvfrom(70000)
                    except OSError:
                        continue
                    self._push(data, src[:2], None)
                elif sock is self.sock:
                    try:
                        conn, src = sock.accept()
                    except OSError:
                        continue
                    self._adopt(conn, src[:2])
                else:
                    self._read_stream(sock)

    def _adopt(self, conn: socket.socket, peer: Addr) -> None:
        conn.setblocking(False)
        with self._lock:
            self._conns[peer] = conn
            self._framers[conn] = StreamFramer(1 << 20)
        self._sel.register(conn, selectors.EVENT_READ)

    def _read_stream(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._sel.unregister(conn)
            conn.close()
            return
        peer = conn.getpeername()[:2]
        for item in self._framers[conn].feed(chunk):
            if not isinstance(item, KeepAlive):
                self._push(item, peer, conn)

    def _push(self, data: bytes, source: Addr, conn: socket.socket | None) -> None:
        try:
            message = parse_message(data, datagram=conn is None)
        except Exception:
            return
        with self._lock:
            self.received.append(Received(message, source, conn))
            self._lock.notify_all()

    # -- sending ------------------------------------------------------------------------

    def send(self, data: bytes | Message, dest: Addr, conn: socket.socket | None = None) -> None:
        raw = data if isinstance(data, bytes) else data.to_bytes()
        if self.transport == "udp":
            self.sock.sendto(raw, dest)
            return
        if conn is None:
            with self._lock:
                conn = self._conns.get(dest)
        if conn is None:
            conn = socket.create_connection(dest, timeout=5)
            self._adopt(conn, dest)
        conn.setblocking(True)
        try:
            conn.sendall(raw)
        finally:
            conn.setblocking(False)

    def reply(
        self,
        rx: Received,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        user: str = "ua",
    ) -> Response:
        """Answer a request on the flow it came over (UDP: to its source address)."""
        request = rx.request
        extra = list(headers or [])
        if status > 100 and request.method == "INVITE" and status < 300:
            extra += [("Record-Route", v) for v in _raw_all(request, "record-route")]
            extra.append(("Contact", self.contact(user)))
        response = request.response(status, reason, to_tag=to_tag, headers=extra)
        response.add("Content-Length", "0")
        self.send(response, rx.source, rx.conn)
        return response

    # -- waiting ------------------------------------------------------------------------

    def wait(self, match: Match, timeout: float = 5.0) -> Received:
        """The first message not taken yet that ``match`` accepts; mark it taken."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for i, rx in enumerate(self.received):
                    if i not in self._taken and match(rx.message):
                        self._taken.add(i)
                        return rx
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(_summary(r.message) for r in self.received)
                    raise TimeoutError(f"no matching message; received:\n{seen}")
                self._lock.wait(left)

    def count(self, match: Match) -> int:
        with self._lock:
            return sum(1 for rx in self.received if match(rx.message))

    def all(self, match: Match) -> list[Received]:
        with self._lock:
            return [rx for rx in self.received if match(rx.message)]

    def close(self) -> None:
        self._stop = True
        self._wake_w.send(b"x")
        self._thread.join(5)
        for conn in list(self._framers):
            conn.close()
        self.sock.close()
        self._wake_r.close()
        self._wake_w.close()
        self._sel.close()

    def __enter__(self) -> UA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Call:
    """The caller's side of one INVITE and the dialog it creates (RFC 3261 §12, §13)."""

    ua: UA
    proxy: Addr
    to_uri: str
    from_uri: str
    call_id: str = field(default_factory=lambda: f"{uuid.uuid4().hex}@ua")
    from_tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    cseq: int = field(default_factory=lambda: next(_seq))
    max_forwards: int = 70
    extra: list[tuple[str, str]] = field(default_factory=list)
    invite_request: Request | None = None
    to_tag: str | None = None
    route_set: list[str] = field(default_factory=list)
    remote_target: str | None = None

    def invite(self, headers: list[tuple[str, str]] | None = None) -> Request:
        """Send the INVITE to the proxy (a new transaction: new branch; CSeq as it is)."""
        request = make_request(
            "INVITE",
            self.to_uri,
            [
                ("Via", self.ua.via()),
                ("Max-Forwards", str(self.max_forwards)),
                ("From", f"<{self.from_uri}>;tag={self.from_tag}"),
                ("To", f"<{self.to_uri}>"),
                ("Call-ID", self.call_id),
                ("CSeq", f"{self.cseq} INVITE"),
                ("Contact", self.ua.contact(_user(self.from_uri))),
                *self.extra,
                *(headers or []),
                ("Content-Length", "0"),
            ],
        )
        self.invite_request = request
        self.ua.send(request, self.proxy)
        return request

    def retransmit(self) -> None:
        assert self.invite_request is not None
        self.ua.send(self.invite_request, self.proxy)

    def final(self, timeout: float = 5.0) -> Response:
        """The INVITE's final response; for a 2xx the dialog is set up from it."""
        response = self.ua.wait(self._mine(final_response("INVITE")), timeout).response
        if 200 <= response.status < 300:
            self.to_tag = response.to.tag
            self.route_set = list(reversed(_raw_all(response, "record-route")))
            contacts = response.contacts
            self.remote_target = str(contacts[0].uri) if contacts else self.to_uri
        return response

    def _mine(self, match: Match) -> Match:
        return lambda m: match(m) and m.call_id == self.call_id

    def wait(self, match: Match, timeout: float = 5.0) -> Received:
        return self.ua.wait(self._mine(match), timeout)

    def ack_non_2xx(self) -> None:
        """Not needed on the wire (the proxy absorbs it hop by hop), sent all the same."""
        assert self.invite_request is not None
        vias = [v for k, _, v in self.invite_request.headers if k == "via"]
        response = self.ua.all(self._mine(final_response("INVITE")))[-1].response
        request = make_request(
            "ACK",
            self.invite_request.uri_text,
            [
                ("Via", vias[0]),
                ("Max-Forwards", "70"),
                ("From", f"<{self.from_uri}>;tag={self.from_tag}"),
                ("To", response.get("to") or ""),
                ("Call-ID", self.call_id),
                ("CSeq", f"{self.cseq} ACK"),
                ("Content-Length", "0"),
            ],
        )
        self.ua.send(request, self.proxy)

    def cancel(self) -> None:
        assert self.invite_request is not None
        vias = [v for k, _, v in self.invite_request.headers if k == "via"]
        request = make_request(
            "CANCEL",
            self.invite_request.uri_text,
            [
                ("Via", vias[0]),
                ("Max-Forwards", "70"),
                ("From", f"<{self.from_uri}>;tag={self.from_tag}"),
                ("To", f"<{self.to_uri}>"),
                ("Call-ID", self.call_id),
                ("CSeq", f"{self.cseq} CANCEL"),
                ("Content-Length", "0"),
            ],
        )
        self.ua.send(request, self.proxy)

    def in_dialog(self, method: str) -> Request:
        """ACK (for the 2xx) or BYE, sent by the route set (to the proxy when it recorded
        the route, else straight to the callee's Contact)."""
        assert self.remote_target is not None
        if method != "ACK":
            self.cseq += 1
        headers = [
            ("Via", self.ua.via()),
            ("Max-Forwards", "70"),
            ("From", f"<{self.from_uri}>;tag={self.from_tag}"),
            ("To", f"<{self.to_uri}>;tag={self.to_tag}"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} {method}"),
            *[("Route", r) for r in self.route_set],
            ("Content-Length", "0"),
        ]
        request = make_request(method, self.remote_target, headers)
        first = parse_address(self.route_set[0]).uri if self.route_set else request.uri
        assert isinstance(first, SipURI)
        self.ua.send(request, (first.host_key, first.port or 5060))
        return request


def _user(uri: str) -> str:
    return uri.split(":", 1)[1].split("@", 1)[0]


def _raw_all(message: Message, key: str) -> list[str]:
    """Every value of a header, one per entry (comma lists split)."""
    return message.get_all(key)


def _summary(message: Message) -> str:
    if isinstance(message, Request):
        return f"  {message.method} {message.uri_text} ({message.call_id})"
    assert isinstance(message, Response)
    return f"  {message.status} {message.reason} {message.cseq.method} ({message.call_id})"
