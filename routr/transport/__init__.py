"""Sockets, TLS and WebSockets around the sans-IO SIP core: the only asyncio code of SIP."""

from routr.transport.base import Connection, Source
from routr.transport.manager import TransportManager

__all__ = ["Connection", "Source", "TransportManager"]
