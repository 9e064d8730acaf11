"""A small blocking SIP client over UDP, TCP, TLS, WS and WSS, for tests."""

from __future__ import annotations

import itertools
import socket
import ssl
import time
import uuid

from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from routr.sip.framing import KeepAlive, StreamFramer
from routr.sip.message import Message, Response, parse_message

_counter = itertools.count(1)


def options(
    target: str,
    transport: str = "UDP",
    local: tuple[str, int] = ("127.0.0.1", 5999),
    *,
    extra: str = "",
    call_id: str | None = None,
) -> bytes:
    """An OPTIONS request for ``target`` (``host:port``), with rport."""
    n = next(_counter)
    host, port = local
    branch = _branch()
    return (
        f"OPTIONS sip:{target} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {host}:{port};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:tester@{host}>;tag=t{n}\r\n"
        f"To: <sip:{target}>\r\n"
        f"Call-ID: {call_id or uuid.uuid4().hex}@test\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _branch() -> str:
    return f"z9hG4bK-test-{uuid.uuid4().hex[:12]}"


class Client:
    """Send bytes, receive parsed messages, with timeouts (never a bare sleep)."""

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def recv(self, timeout: float = 5.0) -> Message:
        raise NotImplementedError

    def request(self, data: bytes, timeout: float = 5.0) -> Response:
        """Send a request; return its final response (provisional ones skipped)."""
        self.send(data)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if isinstance(msg, Response) and msg.status >= 200:
                return msg

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class UdpClient(Client):
    def __init__(self, server: tuple[str, int], bind: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.local = self.sock.getsockname()[:2]
        self.server = server

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def recv_raw(self, timeout: float = 5.0) -> bytes:
        self.sock.settimeout(timeout)
        return self.sock.recvfrom(70000)[0]

    def recv(self, timeout: float = 5.0) -> Message:
        return parse_message(self.recv_raw(timeout))

    def close(self) -> None:
        self.sock.close()


class StreamClient(Client):
    """TCP, or TLS when ``ssl_context`` is given."""

    def __init__(self, server: tuple[str, int], ssl_context: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection(server, timeout=5)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.local = sock.getsockname()[:2]
        self.framer = StreamFramer(1 << 20)
        self.pending: list[bytes | KeepAlive] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_item(self, timeout: float = 5.0) -> bytes | KeepAlive:
        deadline = time.monotonic() + timeout
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by server")
            self.pending.extend(self.framer.feed(chunk))
        return self.pending.pop(0)

    def recv(self, timeout: float = 5.0) -> Message:
        item = self.recv_item(timeout)
        assert not isinstance(item, KeepAlive), "unexpected keep-alive"
        return parse_message(item, datagram=False)

    def raw_recv(self, timeout: float = 5.0) -> bytes:
        self.sock.settimeout(timeout)
        return self.sock.recv(65536)

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """Wait until the server closes the connection; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except TimeoutError:
                return False
            except (ConnectionResetError, ssl.SSLError):
                return True
        return False

    def close(self) -> None:
        self.sock.close()


class WsClient(Client):
    def __init__(
        self, url: str, ssl_context: ssl.SSLContext | None = None, subprotocol: str | None = "sip"
    ) -> None:
        self.ws: ClientConnection = ws_connect(
            url,
            subprotocols=[subprotocol] if subprotocol else None,  # type: ignore[list-item]
            ssl=ssl_context,
            open_timeout=5,
        ).__enter__()  # the connection is its own context manager; close() ends it
        self.local = self.ws.local_address[:2]

    def send(self, data: bytes) -> None:
        self.ws.send(data.decode())

    def recv(self, timeout: float = 5.0) -> Message:
        data = self.ws.recv(timeout)
        raw = data.encode() if isinstance(data, str) else data
        return parse_message(raw, datagram=False)

    def close(self) -> None:
        self.ws.close()


def register(
    client: Client,
    user: str,
    domain: str,
    password: str,
    contact: str,
    *,
    expires: int | None = 3600,
    transport: str = "UDP",
    call_id: str | None = None,
    extra: str = "",
) -> Response:
    """REGISTER ``contact`` for ``user@domain`` and answer the digest challenge once."""
    from routr.sip.digest import make_credentials, pick_challenge

    call_id = call_id or f"{uuid.uuid4().hex}@test"
    local = client.local
    uri = f"sip:{domain}"
    cseq = next(_counter)

    def build(auth: str) -> bytes:
        exp = f"Expires: {expires}\r\n" if expires is not None else ""
        return (
            f"REGISTER {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {local[0]}:{local[1]};branch={_branch()};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{domain}>;tag=r{cseq}\r\n"
            f"To: <sip:{user}@{domain}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} REGISTER\r\n"
            f"Contact: {contact}\r\n"
            f"{exp}{auth}{extra}"
            "Content-Length: 0\r\n\r\n"
        ).encode()

    first = client.request(build(""))
    if first.status != 401:
        return first
    challenge = pick_challenge(first.get_all("www-authenticate"))
    assert challenge is not None, first.to_bytes()
    creds = make_credentials(challenge, "REGISTER", uri, user, password, uuid.uuid4().hex[:8])
    cseq = next(_counter)
    return client.request(build(f"Authorization: {creds}\r\n"))
