"""SIP over WebSocket (RFC 7118): one WebSocket message, one SIP message.

Limits (``spec.security.limits``): a frame or message over ``maxWsFrameSize`` closes the
connection with 1009; the TLS handshake (WSS) and the HTTP upgrade must be done within
``handshakeTimeout`` of accept, the first message within ``messageTimeout`` of the
upgrade, and a frame or fragmented message that has begun must be whole within
``messageTimeout``, or the connection is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, Any, cast

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import DATA_OPCODES, CloseCode, Frame
from websockets.http11 import Request, Response
from websockets.protocol import State

from routr.transport.base import Connection, MessageHandler, Source, tls_not_done, too_slow
from routr.transport.scheduler import Timer

if TYPE_CHECKING:
    from routr.transport.manager import TransportManager

_log = logging.getLogger("routr.transport")
#: websockets' own log: at debug it writes every frame, and a traceback for each upgrade a
#: client abandons or routr cuts off (handshakeTimeout): too much, even for --log-level debug.
_ws_log = logging.getLogger("routr.transport.websocket")
_ws_log.setLevel(logging.INFO)
#: Messages queued for a WebSocket peer before we give up on it.
QUEUE_LIMIT = 1000


class WsConnection(Connection):
    """A WebSocket client; sends are queued so they leave in order."""

    __slots__ = ("_queue", "_ws")

    def __init__(self, protocol: str, ws: ServerConnection, now: float) -> None:
        peer = ws.remote_address
        sock = ws.local_address
        super().__init__(protocol, (str(peer[0]), int(peer[1])), (str(sock[0]), int(sock[1])), now)
        self._ws = ws
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if self._queue.qsize() > QUEUE_LIMIT:
            # A browser that does not read must not make us queue without end.
            _log.info("closing %r: it reads nothing (%d messages waiting)", self,
                      self._queue.qsize())  # fmt: skip
            self.close()
            return
        self._queue.put_nowait(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)

    async def writer(self) -> None:
        while True:
            data = await self._queue.get()
            if data is None:
                await self._ws.close()
                return
            try:
                # Text frames when the message is UTF-8 (what browsers' SIP stacks expect).
                await self._ws.send(data.decode("utf-8"))
            except UnicodeDecodeError:
                await self._ws.send(data)
            except ConnectionClosed:
                return


class SipServerConnection(ServerConnection):
    """websockets' connection with routr's deadlines: made at accept, so its first one
    covers the TLS handshake and the upgrade; once open, the first message's, then the
    current partial frame's."""

    def __init__(self, manager: TransportManager, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manager = manager
        #: whole SIP messages received (CRLF keep-alives aside): a change tells the
        #: deadline that a message was done, though another may have begun in the same read
        self.messages = 0
        self.upgraded = False
        self.deadline: Timer | None = manager.scheduler.call_later(
            manager.handshake_timeout, self._handshake_late
        )

    def opened(self) -> None:
        """The upgrade is done: the first message is due within messageTimeout."""
        if self.upgraded:
            return
        self.upgraded = True
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if not self.messages:
            self._arm()

    def _arm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = self.manager.scheduler.call_later(
            self.manager.message_timeout, self._too_slow
        )

    def _handshake_late(self) -> None:
        self.deadline = None
        if self.protocol.state is not State.CONNECTING:
            return
        transport = getattr(self, "transport", None)
        if transport is None:
            # TLS is not done (slow, or failed and never reported): ssl_handshake_timeout
            # closes it, if it is not closed already
            self.manager.deadline_passed(
                "handshake", "", tls_not_done(self.manager.handshake_timeout)
            )
            return
        ip = str(self.remote_address[0])
        timeout = self.manager.handshake_timeout
        line = f"closed a WebSocket connection from {ip}: no upgrade within {timeout:g}s"
        self.manager.deadline_passed("handshake", ip, line)
        transport.abort()

    def process_event(self, event: Any) -> None:
        super().process_event(event)
        if isinstance(event, Frame) and event.fin and event.opcode in DATA_OPCODES:
            data = event.data
            # a message of line ends only is a keep-alive (copied only to tell)
            if data and (data[0] not in (10, 13) or bytes(data).strip(b"\r\n")):
                self.messages += 1

    def data_received(self, data: bytes) -> None:
        before = self.messages
        super().data_received(data)
        if self.protocol.state is not State.OPEN:
            return
        self.opened()  # frames may come before the handler does
        got = self.messages != before
        # websockets keeps an incomplete frame in its reader and counts a fragmented
        # message in current_size: either means a message has begun.
        protocol = self.protocol
        if protocol.reader.buffer or protocol.current_size is not None:
            # its clock starts now, unless already running for it or for the first message
            if self.deadline is None or got:
                self._arm()
        elif self.messages and self.deadline is not None:
            # nothing due; before the first message pings and CRLFs do not stop the clock
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        if self.protocol.state is not State.OPEN:
            return
        protocol = self.protocol
        pending = len(protocol.reader.buffer) + (protocol.current_size or 0)
        ip, port = self.remote_address[:2]
        line = too_slow(f"WebSocket {ip}:{port}", self.manager.message_timeout, pending)
        self.manager.deadline_passed("message_timeout", str(ip), line)
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        super().connection_lost(exc)


def _require_sip(conn: ServerConnection, request: Request) -> Response | None:
    offered = request.headers.get_all("Sec-WebSocket-Protocol")
    names = {p.strip().lower() for value in offered for p in value.split(",")}
    if "sip" not in names:
        return conn.respond(400, "The 'sip' WebSocket subprotocol is required (RFC 7118)\n")
    return None


async def serve_ws(
    protocol: str,
    host: str,
    port: int,
    manager: TransportManager,
    handler: MessageHandler,
    ssl_context: ssl.SSLContext | None,
) -> Server:
    """Start a WS/WSS listener that feeds every received message to ``handler``."""

    async def session(ws: ServerConnection) -> None:
        assert isinstance(ws, SipServerConnection)
        ws.opened()
        conn = WsConnection(protocol, ws, manager.scheduler.monotonic())
        if not manager.register(conn):
            await ws.close(1008, "too many connections")
            return
        writer = asyncio.create_task(conn.writer())
        try:
            async for data in ws:
                conn.last_seen = manager.scheduler.monotonic()
                raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
                if not raw.strip(b"\r\n"):
                    continue
                try:
                    handler(raw, Source(protocol, conn.remote[0], conn.remote[1], conn.local, conn))
                except Exception:
                    _log.exception("dropped a message on %r: handler failed", conn)
        except ConnectionClosed:
            pass
        finally:
            sent = ws.protocol.close_sent
            if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
                manager.limit_hits.hit("ws_frame")
            conn.closed = True
            manager.unregister(conn)
            writer.cancel()

    def connection(*args: Any, **kwargs: Any) -> SipServerConnection:
        return SipServerConnection(manager, *args, **kwargs)

    timeout = manager.handshake_timeout
    return await serve(
        session,
        host,
        port,
        ssl=ssl_context,
        subprotocols=["sip"],  # type: ignore[list-item]
        process_request=_require_sip,
        max_size=manager.max_ws_frame_size,
        ping_interval=None,
        server_header=None,
        logger=_ws_log,
        # websockets' own timeouts (upgrade from connect, TLS) back up the deadline above
        open_timeout=timeout,
        create_connection=cast(type[ServerConnection], connection),
    )
