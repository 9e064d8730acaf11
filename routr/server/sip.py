"""The SIP side of the server: bytes from the transports -> parsed requests -> the core."""

from __future__ import annotations

import logging
from typing import Any

from routr.core.dispatcher import Dispatcher
from routr.core.identity import Identity
from routr.core.nat import reply_address, stamp_via
from routr.sip.errors import MessageTooLarge, ParseError
from routr.sip.message import Request, Response, parse_message
from routr.transport.base import Source
from routr.transport.manager import TransportManager

_log = logging.getLogger("routr.sip")


class SipService:
    """Glue between :class:`TransportManager` and the sans-IO :class:`Dispatcher`."""

    def __init__(self, identity: Identity, user_agent: str, max_message_size: int) -> None:
        self.max_message_size = max_message_size
        self.user_agent = user_agent
        self.transports: TransportManager | None = None
        self.dispatcher = Dispatcher(identity, user_agent, self.reply)

    def on_data(self, data: bytes, source: Source) -> None:
        """Every complete message from any transport comes here."""
        try:
            if len(data) > self.max_message_size:
                raise MessageTooLarge("Message Too Large", message=_salvage(data))
            message = parse_message(data, datagram=source.protocol == "udp")
            if isinstance(message, Response):
                self.on_response(message, source)
                return
            assert isinstance(message, Request)
            message.check()
            stamp_via(message, source.ip, source.port)
        except ParseError as exc:
            self._reject(exc, source)
            return
        self.dispatcher.on_request(message, source)

    def on_response(self, response: Response, source: Source) -> None:
        # No client transactions yet: a response matches nothing and is dropped (§18.1.2).
        _log.debug("dropped a stray %d response from %s:%s", response.status, source.ip,
                   source.port)  # fmt: skip

    def _reject(self, exc: ParseError, source: Source) -> None:
        request = exc.message
        if not isinstance(request, Request) or request.method == "ACK":
            _log.info("dropped a message from %s %s:%s: %s", source.protocol, source.ip,
                      source.port, exc.reason)  # fmt: skip
            return
        try:
            request.via  # noqa: B018 - a reply needs a Via to travel back on
            stamp_via(request, source.ip, source.port)
            response = request.response(
                exc.status, exc.reason, headers=[("Server", self.user_agent)]
            )
        except ParseError:
            _log.info("dropped a message from %s %s:%s: %s (no route back)", source.protocol,
                      source.ip, source.port, exc.reason)  # fmt: skip
            return
        _log.info("answered %d %s to %s %s:%s", exc.status, exc.reason, source.protocol,
                  source.ip, source.port)  # fmt: skip
        self.reply(request, response, source)

    def reply(self, request: Request, response: Response, source: Any) -> None:
        """Send a response back along the request's flow (RFC 3261 §18.2.2)."""
        assert isinstance(source, Source) and self.transports is not None
        data = response.to_bytes()
        if source.conn is not None and not source.conn.closed:
            source.conn.send(data)
        elif source.protocol == "udp":
            self.transports.send_udp(source.local, reply_address(request, source.ip,
                                                                 source.port), data)  # fmt: skip
        else:
            _log.info("cannot answer %s:%s: its %s connection is gone", source.ip, source.port,
                      source.protocol)  # fmt: skip


def _salvage(data: bytes) -> Request | None:
    """The headers of an oversize request, when they parse, so a 513 can be routed back."""
    try:
        message = parse_message(data, datagram=False)
    except ParseError:
        return None
    return message if isinstance(message, Request) else None
