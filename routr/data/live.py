"""An ``Index`` that follows a provider: rebuilt in the background after every change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from .index import Index, Resolver
from .provider import DataProvider
from .snapshot import Change, Snapshot

log = logging.getLogger(__name__)


class LiveIndex:
    """``live.index`` is always a complete index; lookups never wait for a rebuild.

    Bursts of changes (a whole file edited) cost one rebuild, not one per resource.
    """

    def __init__(self, provider: DataProvider, resolver: Resolver | None = None) -> None:
        self.provider = provider
        self.resolver = resolver
        self.index = Index(provider.current(), {})
        self.version = 0
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._rebuilt = asyncio.Condition()
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        self._unsubscribe = self.provider.subscribe(self._on_change)
        await self._rebuild(await self.provider.snapshot())

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_for(self, predicate: Callable[[Index], bool], timeout: float = 5.0) -> Index:
        """The first index for which ``predicate`` holds (TimeoutError after ``timeout``)."""
        async with asyncio.timeout(timeout), self._rebuilt:
            await self._rebuilt.wait_for(lambda: predicate(self.index))
            return self.index

    def _on_change(self, _change: Change) -> None:
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="routr index rebuild")

    async def _run(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self._rebuild(self.provider.current())
            except Exception:
                log.exception("index rebuild failed; the previous index stays in force")

    async def _rebuild(self, snapshot: Snapshot) -> None:
        index = await Index.build(snapshot, self.resolver)
        async with self._rebuilt:
            self.index = index
            self.version += 1
            self._rebuilt.notify_all()
