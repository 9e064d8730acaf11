"""UDP: one datagram, one message (RFC 3261 §18.3)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from routr.transport.base import MessageHandler, Source

_log = logging.getLogger("routr.transport")


class UdpProtocol(asyncio.DatagramProtocol):
    """Hands every datagram to the handler; never lets an error reach the loop."""

    def __init__(self, handler: MessageHandler) -> None:
        self._handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        sockname = transport.get_extra_info("sockname")
        self.local = (sockname[0], sockname[1])

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if not data.strip(b"\r\n\x00 "):
            return  # keep-alive noise (CRLF, NUL) some NATed phones send over UDP
        ip, port = str(addr[0]), int(addr[1])
        try:
            self._handler(data, Source("udp", ip, port, self.local))
        except Exception:
            _log.exception("dropped a datagram from %s:%s: handler failed", ip, port)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable) surface here; the transaction layer times out.
        _log.debug("udp error: %s", exc)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(data, addr)
