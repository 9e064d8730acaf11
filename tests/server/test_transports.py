"""The server process over real loopback sockets: every transport, bad input, limits, stop."""

from __future__ import annotations

import signal
import socket
import ssl
import time
from pathlib import Path

import pytest
from support.server import RoutrProcess
from support.sip import StreamClient, UdpClient, WsClient, options
from websockets.exceptions import InvalidStatus

from routr.sip.message import Response

ALL = ("udp", "tcp", "tls", "ws", "wss")


@pytest.fixture
def all_transports(tmp_path: Path, cert_files: dict[str, str]):
    proc = RoutrProcess(tmp_path, ALL, {"securityContext": cert_files}).start()
    yield proc
    assert proc.stop() == 0
    proc.assert_no_tracebacks()


def _assert_options_ok(resp: Response, transport: str) -> None:
    assert resp.status == 200, resp.to_bytes()
    for header in ("allow", "accept", "supported"):
        assert resp.get(header), f"{header} missing over {transport}"
    assert "OPTIONS" in (resp.get("allow") or "")
    assert resp.to.tag, "a final response carries a To tag"


@pytest.mark.parametrize("transport", ALL)
def test_options_to_self_over_every_transport(all_transports, client_ssl, transport):
    port = all_transports.ports[transport]
    target = f"127.0.0.1:{port}"
    if transport == "udp":
        client = UdpClient(("127.0.0.1", port))
    elif transport in ("tcp", "tls"):
        client = StreamClient(("127.0.0.1", port), client_ssl if transport == "tls" else None)
    else:
        scheme = "wss" if transport == "wss" else "ws"
        client = WsClient(
            f"{scheme}://127.0.0.1:{port}", client_ssl if transport == "wss" else None
        )
    with client:
        req = options(target, transport.upper(), tuple(client.local))
        resp = client.request(req)
    _assert_options_ok(resp, transport)
    via = resp.via
    assert via.rport == client.local[1]


def test_options_without_user_part_is_for_the_server(routr):
    with UdpClient(("127.0.0.1", routr.ports["udp"])) as c:
        resp = c.request(options("somewhere.invalid", "UDP", c.local))
    _assert_options_ok(resp, "udp")


def test_received_is_added_when_via_names_another_host(routr):
    with UdpClient(("127.0.0.1", routr.ports["udp"])) as c:
        # The Via names a loopback address nobody listens on; rport brings the answer back.
        req = options(f"127.0.0.1:{routr.ports['udp']}", "UDP", ("127.0.0.99", 5999))
        resp = c.request(req)
    assert resp.via.received == "127.0.0.1"
    assert resp.via.rport == c.local[1]


def test_websocket_without_sip_subprotocol_is_refused(all_transports):
    with pytest.raises(InvalidStatus) as info:
        WsClient(f"ws://127.0.0.1:{all_transports.ports['ws']}", subprotocol=None)
    assert info.value.response.status_code == 400


def test_udp_garbage_and_truncated_messages_then_options(routr):
    port = routr.ports["udp"]
    with UdpClient(("127.0.0.1", port)) as c:
        c.send(b"\x00\xff garbage that is not SIP at all\r\n\r\n")
        c.send(b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1")  # truncated
        # Content-Length beyond the datagram: a 400 that names the problem.
        truncated = options(f"127.0.0.1:{port}", "UDP", c.local).replace(
            b"Content-Length: 0", b"Content-Length: 500"
        )
        resp = c.request(truncated)
        assert resp.status == 400
        assert "Content-Length" in resp.reason
        resp = c.request(options(f"127.0.0.1:{port}", "UDP", c.local))
        assert resp.status == 200
    routr.wait_for("dropped a message")


def test_bad_requests_get_400_with_a_reason(routr):
    port = routr.ports["udp"]
    with UdpClient(("127.0.0.1", port)) as c:
        req = options(f"127.0.0.1:{port}", "UDP", c.local).replace(b"CSeq: ", b"CSeq: x")
        resp = c.request(req)
        assert resp.status == 400
        assert "CSeq" in resp.reason
        req = options(f"127.0.0.1:{port}", "UDP", c.local).replace(
            b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1
        )
        assert c.request(req).status == 505


def test_proxy_require_gets_420(routr):
    port = routr.ports["udp"]
    with UdpClient(("127.0.0.1", port)) as c:
        req = options(f"127.0.0.1:{port}", "UDP", c.local, extra="Proxy-Require: foo\r\n")
        resp = c.request(req)
    assert resp.status == 420
    assert resp.get("unsupported") == "foo"


def test_oversize_datagram_gets_513(tmp_path):
    proc = RoutrProcess(tmp_path, ("udp",), {"security": {"maxMessageSize": 2048}}).start()
    try:
        port = proc.ports["udp"]
        with UdpClient(("127.0.0.1", port)) as c:
            big = options(f"127.0.0.1:{port}", "UDP", c.local, extra=f"X-Pad: {'a' * 4000}\r\n")
            resp = c.request(big)
            assert resp.status == 513
            assert c.request(options(f"127.0.0.1:{port}", "UDP", c.local)).status == 200
    finally:
        assert proc.stop() == 0


def test_tcp_framing_error_closes_only_that_connection(routr):
    port = routr.ports["tcp"]
    with StreamClient(("127.0.0.1", port)) as bad, StreamClient(("127.0.0.1", port)) as good:
        bad.send(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP x\r\n\r\n")  # no length
        assert bad.closed_by_peer()
        resp = good.request(options(f"127.0.0.1:{port}", "TCP", good.local))
        assert resp.status == 200
    with StreamClient(("127.0.0.1", port)) as again:
        assert again.request(options(f"127.0.0.1:{port}", "TCP", again.local)).status == 200


def test_tcp_garbage_then_options(routr):
    port = routr.ports["tcp"]
    with StreamClient(("127.0.0.1", port)) as c:
        c.send(b"\x16\x03\x01 this is a TLS hello on a TCP port\r\n\r\n")
        assert c.closed_by_peer()
    with StreamClient(("127.0.0.1", port)) as c:
        assert c.request(options(f"127.0.0.1:{port}", "TCP", c.local)).status == 200


def test_tcp_keepalive_ping_gets_pong(routr):
    with StreamClient(("127.0.0.1", routr.ports["tcp"])) as c:
        c.send(b"\r\n\r\n")
        assert c.raw_recv() == b"\r\n"
        # A ping glued to a request: the pong (a lone CRLF) then the answer.
        c.send(b"\r\n\r\n" + options(f"127.0.0.1:{routr.ports['tcp']}", "TCP", c.local))
        data = b""
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in data[2:] and time.monotonic() < deadline:
            data += c.raw_recv(timeout=max(0.01, deadline - time.monotonic()))
        assert data.startswith(b"\r\nSIP/2.0 200 OK\r\n"), data


def test_two_messages_in_one_tcp_segment(routr):
    port = routr.ports["tcp"]
    with StreamClient(("127.0.0.1", port)) as c:
        c.send(options(f"127.0.0.1:{port}", "TCP", c.local) * 2)
        first, second = c.recv(), c.recv()
        assert isinstance(first, Response) and first.status == 200
        assert isinstance(second, Response) and second.status == 200


def test_slow_client_is_closed_when_idle_and_others_are_served(tmp_path):
    proc = RoutrProcess(tmp_path, ("tcp",), {"security": {"idleTimeout": 1}}).start()
    try:
        port = proc.ports["tcp"]
        with StreamClient(("127.0.0.1", port)) as slow, StreamClient(("127.0.0.1", port)) as ok:
            slow.send(options(f"127.0.0.1:{port}", "TCP", slow.local)[:60])  # half, then stall
            assert ok.request(options(f"127.0.0.1:{port}", "TCP", ok.local)).status == 200
            assert slow.closed_by_peer(timeout=10)
        proc.wait_for("closing idle")
    finally:
        assert proc.stop() == 0


def test_a_thousand_tcp_connections_leak_nothing(routr):
    port = routr.ports["tcp"]
    with StreamClient(("127.0.0.1", port)) as c:
        assert c.request(options(f"127.0.0.1:{port}", "TCP", c.local)).status == 200
    baseline = routr.open_fds()
    for _ in range(1000):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.close()
    with StreamClient(("127.0.0.1", port)) as c:
        assert c.request(options(f"127.0.0.1:{port}", "TCP", c.local)).status == 200
    # Every closed connection released its descriptor (the last client is closed too).
    deadline = time.monotonic() + 10
    while routr.open_fds() > baseline + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert routr.open_fds() <= baseline + 2


def test_connections_per_source_are_limited(tmp_path):
    proc = RoutrProcess(tmp_path, ("tcp",), {"security": {"maxConnectionsPerSource": 3}}).start()
    try:
        port = proc.ports["tcp"]
        kept = [StreamClient(("127.0.0.1", port)) for _ in range(3)]
        for c in kept:  # each admitted connection is served
            assert c.request(options(f"127.0.0.1:{port}", "TCP", c.local)).status == 200
        with StreamClient(("127.0.0.1", port)) as extra:
            assert extra.closed_by_peer()
        proc.wait_for("limit of 3 reached")
        for c in kept:
            c.close()
    finally:
        assert proc.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully_with_exit_code_0(tmp_path, sig):
    proc = RoutrProcess(tmp_path, ("udp", "tcp")).start()
    assert proc.stop(sig) == 0
    proc.wait_for("stopped")


def test_tls_handshake_garbage_does_not_kill_the_listener(all_transports, client_ssl):
    port = all_transports.ports["tls"]
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.sendall(b"OPTIONS sip:x SIP/2.0\r\n\r\n")
    raw.settimeout(5)
    try:
        raw.recv(100)
    except (ConnectionResetError, TimeoutError):
        pass
    raw.close()
    with StreamClient(("127.0.0.1", port), client_ssl) as c:
        assert c.request(options(f"127.0.0.1:{port}", "TLS", c.local)).status == 200


def test_client_without_trust_fails_tls(all_transports):
    ctx = ssl.create_default_context()
    with pytest.raises(ssl.SSLError):
        StreamClient(("127.0.0.1", all_transports.ports["tls"]), ctx)


def test_junk_from_one_source_is_logged_once_not_per_datagram(routr):
    import json

    port = routr.ports["udp"]
    with UdpClient(("127.0.0.1", port)) as c:
        for _ in range(300):
            c.send(b"\x00junk that is no SIP\r\n\r\n")
        assert c.request(options(f"127.0.0.1:{port}", "UDP", c.local)).status == 200
    routr.wait_for("dropped a message")
    records = [json.loads(line) for line in list(routr.raw) if line.startswith("{")]
    info = [r for r in records if "dropped a message" in r["msg"] and r["level"] != "debug"]
    debug = [r for r in records if "dropped a message" in r["msg"] and r["level"] == "debug"]
    assert len(info) == 1  # the rest are counted into the next line for that source
    assert len(debug) == 300  # each one is still there at debug level
