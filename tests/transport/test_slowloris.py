"""Slow clients on TCP, TLS, WS and WSS (a byte a second) are cut off at their limit while
other clients are served: the deadlines of ``spec.security.limits`` over real sockets."""

from __future__ import annotations

import base64
import os
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import trustme
from support.server import RoutrProcess
from support.sip import StreamClient, WsClient, options

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


def hits(proc: RoutrProcess, limit: str) -> float:
    text = httpx.get(f"{proc.api}/metrics", timeout=5).text
    found = re.search(rf'^routr_limit_hits_total{{limit="{limit}"}} (\S+)$', text, re.M)
    assert found, f"no routr_limit_hits_total for {limit}"
    return float(found.group(1))


def trickle(sock: socket.socket, data: bytes, served: Callable[[], None], limit: float) -> float:
    """Send ``data`` a byte a second until the server closes ``sock``; between two bytes
    another client is ``served`` (once, after the second byte). Returns the seconds from
    the first byte to the close; fails if the close does not come by ``limit`` + SLACK."""
    started = time.monotonic()
    for i, byte in enumerate(data):
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return time.monotonic() - started  # reset by the server
        if i == 1:
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
    """A check that a fresh client of ``transport`` gets an OPTIONS answered promptly."""

    def check() -> None:
        port = proc.ports[transport]
        started = time.monotonic()
        secure = ctx if transport in ("tls", "wss") else None
        client = (
            WsClient(f"{transport}://127.0.0.1:{port}", secure)
            if transport in ("ws", "wss")
            else StreamClient(("127.0.0.1", port), secure)
        )
        with client:
            response = client.request(
                options(f"127.0.0.1:{port}", transport.upper(), tuple(client.local)), timeout=1.0
            )
        assert response.status == 200
        assert time.monotonic() - started < 1.0

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
        sock.sendall(_upgrade_request(port))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, "the upgrade was refused"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101")
        frame = _masked_text_frame(PARTIAL)
        took = trickle(sock, frame, served_over(server, "ws", client_ssl), MESSAGE_TIMEOUT)
    assert took >= MESSAGE_TIMEOUT - 0.5
    assert hits(server, "message_timeout") == before + 1


def test_a_whole_message_in_pieces_in_time_is_served(server):
    """A message split over several reads, finished within the deadline, is answered."""
    with StreamClient(("127.0.0.1", server.ports["tcp"])) as client:
        data = options(f"127.0.0.1:{server.ports['tcp']}", "TCP", tuple(client.local))
        for i in range(0, len(data), 64):
            client.send(data[i : i + 64])
        assert client.recv(timeout=2).status == 200  # type: ignore[attr-defined]


def wait_for_hits(proc: RoutrProcess, limit: str, count: float, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while hits(proc, limit) < count:
        assert time.monotonic() < deadline, f"{limit} never reached {count}"
        time.sleep(0.05)  # polling the metric, bounded by the deadline above
    assert hits(proc, limit) == count


def _upgrade_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: sip\r\n\r\n"
    ).encode()


def _masked_text_frame(payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked
