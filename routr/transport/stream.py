"""TCP and TLS: a byte stream cut into messages by :class:`routr.sip.framing.StreamFramer`.

Slow clients are cut off (``spec.security.limits``): an accepted TLS connection must
finish its handshake within ``handshakeTimeout`` (the loop closes it; the timer here
counts it), an accepted connection must deliver its first whole message within
``messageTimeout`` of its start (TCP: the accept, TLS: the end of the handshake), and
every later message within ``messageTimeout`` of its first byte. Keep-alives do not
count as a message: a client trickling a byte a second, or sending CRLFs, never goes idle
(``idleTimeout``), so these deadlines are what end it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from routr.sip.errors import LimitExceeded, ParseError
from routr.sip.framing import PONG, KeepAlive, StreamFramer
from routr.transport.base import Connection, MessageHandler, Source, tls_not_done, too_slow
from routr.transport.scheduler import Timer

if TYPE_CHECKING:
    from routr.transport.manager import TransportManager

_log = logging.getLogger("routr.transport")
#: Bytes queued for a peer before we give up on it.
WRITE_LIMIT = 1 << 20


class StreamConnection(Connection, asyncio.Protocol):
    """One accepted (or opened) TCP/TLS connection."""

    __slots__ = (
        "_accepted", "_deadline", "_framer", "_greeted", "_handler", "_manager", "_transport",
    )  # fmt: skip

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
        #: a whole message (not a keep-alive) has come: from now on only a begun one is due
        self._greeted = False
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
        # The loop's ssl_handshake_timeout (the same value) closes a slow handshake. A
        # failed one was closed earlier, and asyncio and uvloop tell the app protocol of
        # neither (no connection_lost): both end here, without a peer address to name.
        self._deadline = None
        self._manager.deadline_passed(
            "handshake", "", tls_not_done(self._manager.handshake_timeout)
        )

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
        line = too_slow(repr(self), self._manager.message_timeout, self._framer.pending)
        self._manager.deadline_passed("message_timeout", self.remote[0], line)
        self.abort()

    def data_received(self, data: bytes) -> None:
        self.last_seen = self._manager.scheduler.monotonic()
        try:
            items = self._framer.feed(data)
        except ParseError as exc:
            if isinstance(exc, LimitExceeded):
                self._manager.limit_hits.hit(exc.limit)
            # rate-limited: a connect and a line of junk cost a client nothing
            self._manager.drops.note(self.remote[0], "framing", f"closing {self!r}: {exc.reason}")
            self.close()
            return
        if self._accepted:
            self._keep_time(any(not isinstance(item, KeepAlive) for item in items))
        for item in items:
            if isinstance(item, KeepAlive):
                self.send(PONG)
                continue
            try:
                self._handler(item, Source(self.protocol, self.remote[0], self.remote[1],
                                           self.local, self))  # fmt: skip
            except Exception:
                _log.exception("dropped a message on %r: handler failed", self)

    def _keep_time(self, got: bool) -> None:
        """Move the deadline after a read that made ``got`` whole messages or none."""
        if got:
            self._greeted = True
        if self._framer.partial:
            # A message has begun: its clock starts now, unless it was already running
            # for this same message (nothing whole came out of this read) or for the
            # first one.
            if self._deadline is None or got:
                self._arm()
        elif self._greeted and self._deadline is not None:
            # Nothing is due. Before the first message the clock runs on: keep-alives
            # (a lone CRLF) must not buy a connection its idleTimeout.
            self._deadline.cancel()
            self._deadline = None

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
