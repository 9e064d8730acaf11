"""What the API serves from: the running server's parts, read-only except the data source."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from routr.core.service import SipService
from routr.data.live import LiveIndex
from routr.data.provider import DataProvider
from routr.events import Bus
from routr.location import LocationStore
from routr.models.config import Config

from .logring import LogRing

#: How long a write waits for the router's index to include it before answering.
SETTLE_SECONDS = 5.0


@dataclass
class ApiContext:
    config: Config
    provider: DataProvider
    live: LiveIndex
    store: LocationStore
    sip: SipService
    bus: Bus
    token_key: bytes
    logs: LogRing
    started: float  # wall clock, for uptime
    data_description: str
    listeners: Callable[[], list[dict[str, Any]]]
    reload: Callable[[], Awaitable[dict[str, Any]]]
    #: lift a ban here and where bans are kept for every node; False if there was none
    lift_ban: Callable[[str], Awaitable[bool]]
    #: lines about refused or dropped messages held back so far (SIP core and transports)
    suppressed: Callable[[], int]
    #: set when the server stops: open watch and follow streams end
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def settled(self, version: int) -> None:
        """Wait until the index the router reads is newer than ``version``, so a REGISTER
        right after a write sees it."""
        live = self.live
        try:
            await live.wait_for(lambda _: live.version > version, timeout=SETTLE_SECONDS)
        except TimeoutError:
            pass  # the write is stored; the rebuild is late or failed and logs why
