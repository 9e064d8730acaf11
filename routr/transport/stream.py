"""TCP and TLS: a byte stream cut into messages by :class:`routr.sip.framing.StreamFramer`.

Slow clients are cut off (``spec.security.limits``): an accepted TLS connection must
finish its handshake within ``handshakeTimeout`` (the loop closes it; the timer here
counts it), and on an accepted connection the first message must begin, and every
message that has begun must be whole, within ``messageTimeout`` of its first byte. A
client trickling a byte a second never goes idle (``idleTimeout``), so this deadline is
what ends it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from routr.sip.errors import LimitExceeded, ParseError
from routr.sip.framing import PONG, KeepAlive, StreamFramer
from routr.transport.base import Connection, MessageHandler, Source
from routr.transport.scheduler import Timer

if TYPE_CHECKING:
    from routr.transport.manager import TransportManager

_log = logging.getLogger("routr.transport")
#: Bytes queued for a peer before we give up on it.
WRITE_LIMIT = 1 << 20


class StreamConnection(Connection, asyncio.Protocol):
    """One accepted (or opened) TCP/TLS connection."""

    __slots__ = ("_accepted", "_deadline", "_framer", "_handler", "_manager", "_transport")

    def __init__(
        self,
        protocol: str,
        manager: TransportManager,
        handler: MessageHandler,
        accepted: bool = False,
    ) -> None:
        Connection.__init__(self, protocol, ("", 0), ("", 0), manager.scheduler.monotonic())
        self._manager = manager
        self._handler = handler
        self._framer = StreamFramer(manager.max_message_size)
        self._transport: asyncio.Transport | None = None
        self._accepted = accepted
        #: the handshake's deadline until connected, then the current message's
        self._deadline: Timer | None = None
        if accepted and protocol == "tls":
            # Made at accept, before the handshake: connection_made comes after it.
            self._deadline = manager.scheduler.call_later(
                manager.handshake_timeout, self._handshake_late
            )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.remote = (str(peer[0]), int(peer[1]))
        self.local = (str(sock[0]), int(sock[1]))
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if not self._manager.register(self):
            self.abort()
            return
        if self._accepted:
            self._arm()  # the first message must begin in time too

    def _handshake_late(self) -> None:
        # The loop's ssl_handshake_timeout (the same value) closes the connection.
        self._deadline = None
        self._manager.limit_hits.hit("handshake")
        _log.info("a %s handshake took over %ss: closed", self.protocol,
                  self._manager.handshake_timeout)  # fmt: skip

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self._manager.scheduler.call_later(
            self._manager.message_timeout, self._too_slow
        )

    def _too_slow(self) -> None:
        self._deadline = None
        if self.closed:
            return
        self._manager.limit_hits.hit("message_timeout")
        _log.info("closing %r: no whole message within %ss (%d bytes of it so far)", self,
                  self._manager.message_timeout, self._framer.pending)  # fmt: skip
        self.abort()

    def data_received(self, data: bytes) -> None:
        self.last_seen = self._manager.scheduler.monotonic()
        try:
            items = self._framer.feed(data)
        except ParseError as exc:
            if isinstance(exc, LimitExceeded):
                self._manager.limit_hits.hit(exc.limit)
            _log.info("closing %r: %s", self, exc.reason)
            self.close()
            return
        if self._framer.partial:
            # A message has begun: its clock starts now, unless it was already running
            # for this same message (nothing whole came out of this read).
            if self._deadline is None or items:
                self._arm()
        elif self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
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
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
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
    protocol: str, manager: TransportManager, handler: MessageHandler, accepted: bool = False
) -> Callable[[], StreamConnection]:
    """Connections of a listener (``accepted``) or opened by us (deadlines do not apply:
    the peer is one we chose to reach)."""
    return lambda: StreamConnection(protocol, manager, handler, accepted)
