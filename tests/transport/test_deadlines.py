"""The slow-loris deadlines of ``spec.security.limits`` on a clock the test moves: what
starts, keeps and stops them on TCP/TLS (no sockets) and on WebSocket (loopback sockets,
the deadlines on the same fake clock), and the lines a cut connection writes."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from support.clock import Clock

from routr.transport.base import Source
from routr.transport.manager import ListenerSpec, TransportManager
from routr.transport.stream import StreamConnection

TIMEOUT = 20.0


class FakeTransport:
    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.written: list[bytes] = []
        self.aborted = False

    def get_extra_info(self, name: str) -> Any:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 5060)}[name]

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True


def manager(clock: Clock) -> TransportManager:
    return TransportManager(clock, message_timeout=TIMEOUT, handshake_timeout=10.0)  # type: ignore[arg-type]


def connect(
    transports: TransportManager, accepted: bool = True, port: int = 5070
) -> tuple[StreamConnection, FakeTransport, list[bytes]]:
    got: list[bytes] = []
    conn = StreamConnection("tcp", transports, lambda data, _src: got.append(data), accepted)
    transport = FakeTransport(("192.0.2.7", port))
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport, got


OPTIONS = (
    b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.7:5070;branch=z9hG4bK-1\r\n"
    b"Call-ID: d1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize("keepalive", [b"\r\n", b"\r\n\r\n"])
def test_keep_alives_do_not_stop_the_first_message_clock(keepalive):
    clock = Clock()
    transports = manager(clock)
    conn, transport, _ = connect(transports)
    while not transport.aborted:
        assert clock.now < TIMEOUT, "a client sending only keep-alives was not cut off"
        clock.advance(1.0)
        conn.data_received(keepalive)
    assert clock.now == TIMEOUT
    assert transports.limit_hits.counts["message_timeout"] == 1


def test_a_ping_before_a_begun_first_message_does_not_restart_its_clock():
    clock = Clock()
    transports = manager(clock)
    conn, transport, _ = connect(transports)
    clock.advance(TIMEOUT - 1)
    conn.data_received(b"\r\n\r\nOPT")  # a ping comes out, a message begins
    clock.advance(1.0)
    assert transport.aborted


def test_after_a_message_keep_alives_leave_the_connection_idle():
    clock = Clock()
    transports = manager(clock)
    conn, transport, got = connect(transports)
    conn.data_received(OPTIONS)
    assert got == [OPTIONS]
    for _ in range(3 * int(TIMEOUT)):
        clock.advance(1.0)
        conn.data_received(b"\r\n\r\n")
    assert not transport.aborted
    assert not clock.pending("_too_slow")


def test_pipelined_messages_each_have_their_own_clock():
    clock = Clock()
    transports = manager(clock)
    conn, transport, got = connect(transports)
    half = len(OPTIONS) // 2
    conn.data_received(OPTIONS[:half])
    for _ in range(5):
        clock.advance(TIMEOUT * 0.6)
        conn.data_received(OPTIONS[half:] + OPTIONS[:half])  # one ends, the next begins
    assert not transport.aborted and len(got) == 5


def test_connections_routr_opened_have_no_deadline():
    clock = Clock()
    transports = manager(clock)
    conn, transport, _ = connect(transports, accepted=False)
    conn.data_received(OPTIONS[:10])
    assert not clock.pending("_too_slow")
    clock.advance(10 * TIMEOUT)
    assert not transport.aborted


def test_cut_off_connections_of_one_source_write_one_line(caplog):
    clock = Clock()
    transports = manager(clock)
    conns = [connect(transports, port=6000 + i) for i in range(5)]
    with caplog.at_level(logging.INFO, "routr.transport"):
        clock.advance(TIMEOUT)
    assert all(transport.aborted for _, transport, _ in conns)
    assert transports.limit_hits.counts["message_timeout"] == 5
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    first = conns[0][0].id
    assert [r.getMessage() for r in infos] == [
        f"closing <tcp connection {first} 192.0.2.7:6000>: no whole message within 20s "
        "(0 bytes of it so far)"
    ]
    assert transports.drops.suppressed == 4


def test_tls_handshakes_not_done_are_counted_in_one_line_a_while(caplog):
    """The listener's connection cannot tell a failed handshake from a slow one (neither
    reaches it): both are counted, and logged once a while whatever their sources."""
    clock = Clock()
    transports = manager(clock)
    for _ in range(50):  # a scan of the TLS port: connects that never finish a handshake
        StreamConnection("tls", transports, lambda data, src: None, accepted=True)
    with caplog.at_level(logging.INFO, "routr.transport"):
        clock.advance(10.0)
    assert transports.limit_hits.counts["handshake"] == 50
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "TLS handshake" in infos[0].getMessage()


def test_the_first_message_clock_of_tls_starts_after_the_handshake():
    clock = Clock()
    transports = manager(clock)
    conn = StreamConnection("tls", transports, lambda data, src: None, accepted=True)
    clock.advance(9.0)
    transport = FakeTransport(("192.0.2.7", 5071))
    conn.connection_made(transport)  # type: ignore[arg-type]
    clock.advance(TIMEOUT - 1)
    assert not transport.aborted
    clock.advance(1.0)
    assert transport.aborted
    assert transports.limit_hits.counts == {
        **transports.limit_hits.counts,
        "handshake": 0,
        "message_timeout": 1,
    }


# -- WebSocket: loopback sockets, the deadlines on the fake clock --------------------------


@pytest.fixture
async def ws() -> AsyncIterator[tuple[TransportManager, Clock, int]]:
    clock = Clock()
    transports = manager(clock)

    def echo(data: bytes, source: Source) -> None:
        assert source.conn is not None
        source.conn.send(b"got " + data[:12])

    await transports.start([ListenerSpec("ws", "127.0.0.1", 0)], echo)
    yield transports, clock, transports.listeners[0].port
    await transports.stop()


async def upgraded(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: sip\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked frame (text unless told), as a client sends."""
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def answer(reader: asyncio.StreamReader, opcode: int = 0x1) -> bytes:
    head = await asyncio.wait_for(reader.readexactly(2), 10)
    assert head[0] == 0x80 | opcode and head[1] < 126, head
    return await reader.readexactly(head[1])


async def closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed the connection (it aborts: a reset, or an end)."""
    try:
        return await asyncio.wait_for(reader.read(), 10) == b""
    except ConnectionResetError:
        return True


async def until(condition: Callable[[], object]) -> None:
    """Let the loop run until ``condition`` holds (the server's side of a socket event)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def test_a_websocket_that_upgrades_and_never_sends_is_cut_off(ws):
    transports, clock, port = ws
    reader, writer = await upgraded(port)
    # A keep-alive is no message; the pong tells the server has read it.
    writer.write(frame(b"\r\n\r\n") + frame(b"p", opcode=0x9))
    assert await answer(reader, opcode=0xA) == b"p"
    clock.advance(TIMEOUT - 1)
    assert clock.pending("_too_slow"), "no first-message deadline after the upgrade"
    clock.advance(1.0)
    assert await closed(reader)
    assert transports.limit_hits.counts["message_timeout"] == 1
    writer.close()


async def test_a_websocket_pipelining_whole_messages_is_not_cut_off(ws):
    """Each read ends one message and begins the next: each one is due within the
    timeout of its own start, not of the first one's."""
    transports, clock, port = ws
    reader, writer = await upgraded(port)
    messages = [frame(b"OPTIONS sip:127.0.0.1 SIP/2.0 #%d" % i) for i in range(6)]
    half = len(messages[0]) // 2
    writer.write(messages[0][:half])
    for i in range(5):
        clock.advance(TIMEOUT * 0.6)
        writer.write(messages[i][half:] + messages[i + 1][:half])
        assert await answer(reader) == b"got OPTIONS sip:"
    writer.write(messages[5][half:])
    assert await answer(reader) == b"got OPTIONS sip:"
    assert clock.now > 2 * TIMEOUT
    assert transports.limit_hits.counts["message_timeout"] == 0
    writer.close()
