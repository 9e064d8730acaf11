"""Sends that fail (a name that does not resolve, too many lookups, a connection gone)
write one line per name or source and reason a while, not one per message."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from support.clock import Clock

from routr.core.identity import Identity
from routr.core.routing import Hop
from routr.server.io import TransportIO
from routr.transport.manager import TransportManager


async def test_a_name_that_does_not_resolve_writes_one_line_a_while(monkeypatch, caplog):
    clock = Clock()
    transports = TransportManager(clock)  # type: ignore[arg-type]
    io = TransportIO(transports, clock, Identity.of(set(), set(), set()))  # type: ignore[arg-type]

    async def no_such_name(host: str, port: int) -> Any:
        raise OSError(f"[Errno -2] Name or service not known: {host}")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_name)
    failed: list[None] = []
    with caplog.at_level(logging.INFO, "routr"):
        for _ in range(5):  # every message to that name
            await io._send_slow(b"x", Hop("udp", "gw.invalid", 5060), lambda: failed.append(None))
    assert len(failed) == 5
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines == ["cannot resolve gw.invalid: [Errno -2] Name or service not known: gw.invalid"]
    assert transports.drops.suppressed == 4
