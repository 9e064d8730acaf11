"""Where registered endpoints are: bindings by AOR, in memory or in Redis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routr.location.binding import STREAM_TRANSPORTS, Binding, NextHop
from routr.location.memory import MemoryStore
from routr.location.store import (
    AddResult,
    Callback,
    EventType,
    LocationEvent,
    LocationStore,
    Subscription,
)
from routr.models.config import parse_parameters

__all__ = [
    "STREAM_TRANSPORTS",
    "AddResult",
    "Binding",
    "Callback",
    "EventType",
    "LocationEvent",
    "LocationStore",
    "MemoryStore",
    "NextHop",
    "Subscription",
    "open_store",
    "parse_parameters",
]


def open_store(
    provider: str | None, parameters: str | Mapping[str, Any] | None = None
) -> LocationStore:
    """A store for ``location.provider`` (``memory`` or ``redis``); call ``start()`` next.

    Redis parameters: ``host``, ``port``, ``db``, ``secret`` (or ``password``), ``username``,
    ``prefix``.
    """
    if provider in (None, "memory"):
        return MemoryStore()
    if provider == "redis":
        from routr.location.redis_store import RedisStore  # redis is only needed here

        p = parse_parameters(parameters)
        return RedisStore(
            str(p.get("host", "127.0.0.1")),
            int(p.get("port", 6379)),
            db=int(p.get("db", 0)),
            password=p.get("secret") or p.get("password"),
            username=p.get("username"),
            prefix=str(p.get("prefix", "routr:location")),
        )
    raise ValueError(f"unknown location provider {provider!r}: memory or redis")
