"""TCP and TLS: a byte stream cut into messages by :class:`routr.sip.framing.StreamFramer`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from routr.sip.errors import ParseError
from routr.sip.framing import PONG, KeepAlive, StreamFramer
from routr.transport.base import Connection, MessageHandler, Source

if TYPE_CHECKING:
    from routr.transport.manager import TransportManager

_log = logging.getLogger("routr.transport")
#: Bytes queued for a peer before we give up on it.
WRITE_LIMIT = 1 << 20


class StreamConnection(Connection, asyncio.Protocol):
    """One accepted (or opened) TCP/TLS connection."""

    __slots__ = ("_framer", "_handler", "_manager", "_transport")

    def __init__(self, protocol: str, manager: TransportManager, handler: MessageHandler) -> None:
        Connection.__init__(self, protocol, ("", 0), ("", 0), manager.scheduler.monotonic())
        self._manager = manager
        self._handler = handler
        self._framer = StreamFramer(manager.max_message_size)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.remote = (str(peer[0]), int(peer[1]))
        self.local = (str(sock[0]), int(sock[1]))
        if not self._manager.register(self):
            self.abort()

    def data_received(self, data: bytes) -> None:
        self.last_seen = self._manager.scheduler.monotonic()
        try:
            items = self._framer.feed(data)
        except ParseError as exc:
            _log.info("closing %r: %s", self, exc.reason)
            self.close()
            return
        for item in items:
            if isinstance(item, KeepAlive):
                self.send(PONG)
                continue
            try:
                self._handler(item, Source(self.protocol, self.remote[0], self.remote[1],
                                           self.local, self))  # fmt: skip
            except Exception:
                _log.exception("dropped a message on %r: handler failed", self)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._manager.unregister(self)

    def send(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or self.closed:
            return
        if transport.get_write_buffer_size() > WRITE_LIMIT:
            # A peer that does not read must not make us buffer without end.
            _log.info("closing %r: it reads nothing (%d bytes waiting)", self,
                      transport.get_write_buffer_size())  # fmt: skip
            self.abort()
            return
        transport.write(data)

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self.closed = True
            self._transport.abort()


def stream_factory(
    protocol: str, manager: TransportManager, handler: MessageHandler
) -> Callable[[], StreamConnection]:
    return lambda: StreamConnection(protocol, manager, handler)
