"""The last log records in memory, for ``GET /system/logs`` and its ``?follow=true``."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

_FOLLOW_QUEUE = 1000  # records a slow follower may lag behind before it misses some


def record_dict(record: logging.LogRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    if record.exc_info and record.exc_info[0] is not None:
        entry["exc"] = logging.Formatter().formatException(record.exc_info)
    return entry


class LogRing(logging.Handler):
    """A handler keeping the last ``size`` records as dicts and feeding live followers."""

    def __init__(self, size: int = 1000) -> None:
        super().__init__(logging.DEBUG)
        self.records: deque[dict[str, Any]] = deque(maxlen=size)
        # replaced whole, never changed in place: records come from worker threads too,
        # which read it while the loop adds or removes a follower
        self._followers: tuple[
            tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]], ...
        ] = ()
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = record_dict(record)
        except Exception:
            self.handleError(record)
            return
        self.records.append(entry)
        for loop, queue in self._followers:
            if threading.get_ident() == self._thread:
                _offer(queue, entry)
            else:  # a record from a worker thread (asyncio.to_thread)
                loop.call_soon_threadsafe(_offer, queue, entry)

    def recent(self, level: int = logging.DEBUG, limit: int | None = None) -> list[dict[str, Any]]:
        out = [r for r in self.records if logging.getLevelName(r["level"].upper()) >= level]
        return out[-limit:] if limit else out

    async def follow(
        self, stopping: asyncio.Event, level: int = logging.DEBUG, backlog: int = 0
    ) -> AsyncIterator[dict[str, Any] | None]:
        """The last ``backlog`` records of ``level`` or above, then every record from now
        on; ``None`` now and then while nothing happens (so a stream can tell a gone
        client), until ``stopping`` is set."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_FOLLOW_QUEUE)
        follower = (asyncio.get_running_loop(), queue)
        self._thread = threading.get_ident()
        self._followers = (*self._followers, follower)  # first: nothing falls in between
        try:
            for record in self.recent(level, backlog) if backlog else ():
                yield record
            while not stopping.is_set():
                try:
                    yield await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    yield None
        finally:
            self._followers = tuple(f for f in self._followers if f is not follower)


def _offer(queue: asyncio.Queue[dict[str, Any]], entry: dict[str, Any]) -> None:
    if not queue.full():
        queue.put_nowait(entry)
