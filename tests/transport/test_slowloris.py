"""Slow clients on TCP, TLS, WS and WSS (a byte a second) are cut off at their limit while
other clients are served: the deadlines of ``spec.security.limits`` over real sockets."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator

import pytest
import trustme
from support.metrics import hits, wait_for_hits
from support.server import RoutrProcess
from support.sip import StreamClient, WsClient, options

from routr.sip.message import Response, parse_message

MESSAGE_TIMEOUT = 2.0
HANDSHAKE_TIMEOUT = 2.0
#: how long past its deadline a cut may come (timer heap, loop, a loaded 2-core box)
SLACK = 3.0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutrProcess]:
    tmp = tmp_path_factory.mktemp("slowloris")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp / "sip.pem"))
    cert.private_key_pem.write_to_path(str(tmp / "sip.key"))
    spec = {
        "securityContext": {"certFile": str(tmp / "sip.pem"), "keyFile": str(tmp / "sip.key")},
        "security": {
            "limits": {"messageTimeout": MESSAGE_TIMEOUT, "handshakeTimeout": HANDSHAKE_TIMEOUT}
        },
    }
    proc = RoutrProcess(tmp, ("udp", "tcp", "tls", "ws", "wss"), spec).start()
    yield proc
    assert proc.stop() == 0
    proc.assert_no_tracebacks()


@pytest.fixture(scope="module")
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def trickle(
    sock: socket.socket,
    data: bytes,
    served: Callable[[], None],
    limit: float,
    step: int = 1,
) -> float:
    """Send ``data`` ``step`` bytes a second until the server closes ``sock``; between two
    sends another client is ``served`` (once, after the second). Returns the seconds from
    the first send to the close; fails if the close does not come by ``limit`` + SLACK."""
    started = time.monotonic()
    for i in range(0, len(data), step):
        try:
            sock.sendall(data[i : i + step])
        except OSError:
            return time.monotonic() - started  # reset by the server
        if i == step:
            served()
        # The pace of the attack: wait a second for the server to give up on us.
        end = time.monotonic() + 1.0
        while (left := end - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                if not sock.recv(4096):
                    return time.monotonic() - started
            except TimeoutError:
                break
            except (ConnectionResetError, ssl.SSLError):
                return time.monotonic() - started
        assert time.monotonic() - started < limit + SLACK, "the slow client was not cut off"
    raise AssertionError("ran out of bytes before the server cut the client off")


def served_over(proc: RoutrProcess, transport: str, ctx: ssl.SSLContext) -> Callable[[], None]:
    """A check that a fresh client of ``transport`` gets an OPTIONS answered (no bound on
    how fast: the TLS handshake alone may take a while on a loaded machine)."""

    def check() -> None:
        port = proc.ports[transport]
        secure = ctx if transport in ("tls", "wss") else None
        client = (
            WsClient(f"{transport}://127.0.0.1:{port}", secure)
            if transport in ("ws", "wss")
            else StreamClient(("127.0.0.1", port), secure)
        )
        with client:
            response = client.request(
                options(f"127.0.0.1:{port}", transport.upper(), tuple(client.local)), timeout=10.0
            )
        assert response.status == 200

    return check


PARTIAL = b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-s\r\n"


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_a_message_trickled_over_a_stream_is_cut_off(server, client_ssl, transport):
    before = hits(server, "message_timeout")
    sock = socket.create_connection(("127.0.0.1", server.ports[transport]), timeout=5)
    if transport == "tls":
        sock = client_ssl.wrap_socket(sock, server_hostname="localhost")
    with sock:
        took = trickle(sock, PARTIAL, served_over(server, transport, client_ssl), MESSAGE_TIMEOUT)
    assert took >= MESSAGE_TIMEOUT - 0.5
    assert hits(server, "message_timeout") == before + 1
    served_over(server, transport, client_ssl)()


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_a_client_sending_only_keep_alives_is_cut_off(server, client_ssl, transport):
    """A CRLF a second (answered, every other one, by a pong) is no message: the first
    message is still due within messageTimeout, not the idleTimeout of an hour."""
    before = hits(server, "message_timeout")
    sock = socket.create_connection(("127.0.0.1", server.ports[transport]), timeout=5)
    if transport == "tls":
        sock = client_ssl.wrap_socket(sock, server_hostname="localhost")
    with sock:
        served = served_over(server, transport, client_ssl)
        took = trickle(sock, b"\r\n" * 60, served, MESSAGE_TIMEOUT, step=2)
    assert took >= MESSAGE_TIMEOUT - 0.5
    assert hits(server, "message_timeout") == before + 1


def test_a_connection_that_never_sends_is_cut_off(server, client_ssl):
    before = hits(server, "message_timeout")
    with StreamClient(("127.0.0.1", server.ports["tcp"])) as silent:
        assert silent.closed_by_peer(MESSAGE_TIMEOUT + SLACK)
    assert hits(server, "message_timeout") == before + 1


@pytest.mark.parametrize("transport", ["tls", "wss"])
def test_a_tls_handshake_trickled_is_cut_off(server, client_ssl, transport):
    before = hits(server, "handshake")
    # The start of a TLS record announcing 512 bytes of ClientHello that never come whole.
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(32)
    with socket.create_connection(("127.0.0.1", server.ports[transport]), timeout=5) as sock:
        took = trickle(sock, hello, served_over(server, transport, client_ssl), HANDSHAKE_TIMEOUT)
    assert took >= HANDSHAKE_TIMEOUT - 0.5
    # the count comes from the deadline's own timer, which may fire just after the close
    wait_for_hits(server, "handshake", before + 1)
    served_over(server, transport, client_ssl)()


def test_a_websocket_upgrade_trickled_is_cut_off(server, client_ssl):
    before = hits(server, "handshake")
    upgrade = _upgrade_request(server.ports["ws"])
    with socket.create_connection(("127.0.0.1", server.ports["ws"]), timeout=5) as sock:
        took = trickle(sock, upgrade, served_over(server, "ws", client_ssl), HANDSHAKE_TIMEOUT)
    assert took >= HANDSHAKE_TIMEOUT - 0.5
    wait_for_hits(server, "handshake", before + 1)


def test_a_websocket_frame_trickled_is_cut_off(server, client_ssl):
    before = hits(server, "message_timeout")
    port = server.ports["ws"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        _upgrade(sock, port)
        frame = _masked_text_frame(PARTIAL)
        took = trickle(sock, frame, served_over(server, "ws", client_ssl), MESSAGE_TIMEOUT)
    assert took >= MESSAGE_TIMEOUT - 0.5
    assert hits(server, "message_timeout") == before + 1


def test_a_websocket_that_upgrades_and_never_sends_is_cut_off(server):
    before = hits(server, "message_timeout")
    port = server.ports["ws"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        _upgrade(sock, port)
        sock.settimeout(MESSAGE_TIMEOUT + SLACK)
        try:
            assert sock.recv(4096) == b"", "the server sent something to a silent client"
        except ConnectionResetError:
            pass  # aborted
        except TimeoutError:
            raise AssertionError("a WebSocket that never sent was not cut off") from None
    assert hits(server, "message_timeout") == before + 1


def test_a_websocket_pipelining_whole_messages_is_not_cut_off(server):
    """Each send ends one message and begins the next, a second apart, for longer than
    messageTimeout (an SBC carrying many calls over one WebSocket): each message is whole
    well within its own deadline, so the connection stays and every one is answered."""
    before = hits(server, "message_timeout")
    port = server.ports["ws"]
    steps = int(MESSAGE_TIMEOUT + SLACK) + 1
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        _upgrade(sock, port)
        local = sock.getsockname()[:2]
        frames = [
            _masked_text_frame(options(f"127.0.0.1:{port}", "WS", local, call_id=f"pipe{i}"))
            for i in range(steps + 1)
        ]
        half = len(frames[0]) // 2
        started = time.monotonic()
        sock.sendall(frames[0][:half])
        for i in range(steps):
            # The client's pace: one message a second, each begun before the last is sent.
            time.sleep(max(0.0, started + i + 1 - time.monotonic()))
            sock.sendall(frames[i][half:] + frames[i + 1][:half])
            response = parse_message(_read_frame(sock))
            assert isinstance(response, Response) and response.status == 200
            assert response.call_id == f"pipe{i}@test"
        sock.sendall(frames[steps][half:])
        assert parse_message(_read_frame(sock)).call_id == f"pipe{steps}@test"
    assert hits(server, "message_timeout") == before


def test_a_whole_message_in_pieces_in_time_is_served(server):
    """A message split over several reads, finished within the deadline, is answered."""
    with StreamClient(("127.0.0.1", server.ports["tcp"])) as client:
        data = options(f"127.0.0.1:{server.ports['tcp']}", "TCP", tuple(client.local))
        for i in range(0, len(data), 64):
            client.send(data[i : i + 64])
        assert client.recv(timeout=2).status == 200  # type: ignore[attr-defined]


def _upgrade_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: sip\r\n\r\n"
    ).encode()


def _upgrade(sock: socket.socket, port: int) -> None:
    sock.sendall(_upgrade_request(port))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: what follows the upgrade is the test's to read
        assert chunk, "the upgrade was refused"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101")


def _masked_text_frame(payload: bytes) -> bytes:
    assert len(payload) < 1 << 16
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    size = (
        bytes([0x80 | len(payload)])
        if len(payload) < 126
        else bytes([0xFE]) + len(payload).to_bytes(2, "big")
    )
    return bytes([0x81]) + size + mask + masked


def _read_frame(sock: socket.socket) -> bytes:
    """The payload of the server's next (unmasked, unfragmented) frame."""
    sock.settimeout(10)
    head = _read_exactly(sock, 2)
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(_read_exactly(sock, 2), "big")
    return _read_exactly(sock, size)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the server closed the WebSocket"
        data += chunk
    return data
