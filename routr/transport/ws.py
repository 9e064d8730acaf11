"""SIP over WebSocket (RFC 7118): one WebSocket message, one SIP message."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from routr.transport.base import Connection, MessageHandler, Source

if TYPE_CHECKING:
    from routr.transport.manager import TransportManager

_log = logging.getLogger("routr.transport")
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
            conn.closed = True
            manager.unregister(conn)
            writer.cancel()

    return await serve(
        session,
        host,
        port,
        ssl=ssl_context,
        subprotocols=["sip"],  # type: ignore[list-item]
        process_request=_require_sip,
        max_size=manager.max_message_size,
        ping_interval=None,
        server_header=None,
    )
