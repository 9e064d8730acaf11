"""What every transport shares: where a message came from and a connection to answer on."""

from __future__ import annotations

import itertools
from collections.abc import Callable

STREAM_PROTOCOLS = frozenset({"tcp", "tls", "ws", "wss"})
_ids = itertools.count(1)


def next_connection_id() -> int:
    return next(_ids)


class Connection:
    """A stream flow (TCP, TLS, WebSocket) that messages can be sent back over."""

    __slots__ = ("closed", "id", "last_seen", "local", "protocol", "remote")

    def __init__(
        self, protocol: str, remote: tuple[str, int], local: tuple[str, int], now: float
    ) -> None:
        self.id = next_connection_id()
        self.protocol = protocol
        self.remote = remote
        self.local = local
        self.last_seen = now
        self.closed = False

    def send(self, data: bytes) -> None:  # pragma: no cover - subclasses override
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - subclasses override
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.protocol} connection {self.id} {self.remote[0]}:{self.remote[1]}>"


class Source:
    """Where a message came from: the flow a reply must use (RFC 3261 §18.2.2)."""

    __slots__ = ("conn", "ip", "local", "port", "protocol")

    def __init__(
        self,
        protocol: str,
        ip: str,
        port: int,
        local: tuple[str, int],
        conn: Connection | None = None,
    ) -> None:
        self.protocol = protocol
        self.ip = ip
        self.port = port
        self.local = local
        self.conn = conn

    @property
    def reliable(self) -> bool:
        return self.protocol in STREAM_PROTOCOLS

    def __repr__(self) -> str:
        return f"<Source {self.protocol} {self.ip}:{self.port}>"


def tls_not_done(timeout: float) -> str:
    """The line for an accepted connection without a TLS handshake in time (a slow one,
    or one that failed before: the listener cannot tell them apart)."""
    return (f"closed a connection without a TLS handshake within {timeout:g}s of its "
            "accept (a slow or failed handshake)")  # fmt: skip


def too_slow(who: str, timeout: float, pending: int) -> str:
    """The line for a connection closed by ``messageTimeout``."""
    return f"closing {who}: no whole message within {timeout:g}s ({pending} bytes of it so far)"


#: What a listener calls for every complete message it receives.
MessageHandler = Callable[[bytes, Source], None]
