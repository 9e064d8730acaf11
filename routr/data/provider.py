"""The one interface every data source implements, and what they share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import ClassVar, Self

from routr.models import Resource, kind_of, public_dict

from . import integrity
from .errors import NotFound
from .filters import compile_filter
from .passwords import with_hashed_secret
from .snapshot import Change, Snapshot, diff

log = logging.getLogger(__name__)

ChangeCallback = Callable[[Change], None]
Plan = Callable[[Snapshot], Change]


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Resource]
    total: int
    page: int
    items_per_page: int


def _now() -> datetime:
    return datetime.now(UTC)


class DataProvider(ABC):
    """Resources of the six kinds behind one async API.

    Reads come from a cached ``Snapshot`` that each provider keeps fresh its own way; every
    write goes through ``integrity`` inside the provider's lock or transaction. Subscribers
    hear of every change, made here, by a hand edit, or by another node.
    """

    name: ClassVar[str]

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._generation = 0  # bumped by every cache replacement
        self._subscribers: list[ChangeCallback] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.clock: Callable[[], datetime] = _now

    # --- what each provider supplies ----------------------------------------------------

    @abstractmethod
    async def _load(self) -> Snapshot:
        """A fresh snapshot from the store (or the last good one, where that is the policy)."""

    @abstractmethod
    async def _mutate(self, plan: Plan) -> Change:
        """Run ``plan`` on a fresh snapshot and store its change atomically."""

    def _cache_is_fresh(self) -> bool:
        return self._snapshot is not None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Load once (errors surface here) and start background refresh, if any."""
        await self.snapshot()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _every(self, seconds: float, job: Callable[[], Awaitable[None]], what: str) -> None:
        """Run ``job`` every ``seconds`` until ``close``; a failing run is logged, not fatal."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s: %s failed", self.name, what)

        self._tasks.append(asyncio.create_task(loop(), name=f"{self.name}: {what}"))

    # --- reads --------------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """Every resource; what ``routr.data.Index`` is built from."""
        if self._snapshot is None or not self._cache_is_fresh():
            await self._reload()
        assert self._snapshot is not None
        return self._snapshot

    async def _reload(self) -> None:
        """Replace the cache with a fresh load, unless a write replaced it meanwhile: then
        the load may predate that write and would undo it."""
        generation = self._generation
        loaded = await self._load()
        if generation == self._generation or self._snapshot is None:
            self._set_snapshot(loaded)

    async def refresh(self) -> None:
        """Read the store again now (an operator's reload), whatever the cache policy."""
        await self._reload()

    def current(self) -> Snapshot:
        """The last snapshot without I/O (empty before the first load)."""
        return self._snapshot if self._snapshot is not None else Snapshot()

    async def list(
        self,
        kind: str,
        filter: str | None = None,
        page: int = 1,
        items_per_page: int = 30,
    ) -> Page:
        """One page of ``kind`` matching ``filter``, and how many match in all."""
        kind = kind_of(kind)
        matches = compile_filter(filter)
        items = [r for r in (await self.snapshot()).items(kind) if matches(public_dict(r))]
        page, items_per_page = max(page, 1), max(items_per_page, 1)
        start = (page - 1) * items_per_page
        return Page(items[start : start + items_per_page], len(items), page, items_per_page)

    async def get(self, kind: str, ref: str) -> Resource:
        kind = kind_of(kind)
        found = (await self.snapshot()).get(kind, ref)
        if found is None:
            raise NotFound(f"{kind} {ref} not found")
        return found

    async def find_by_key(self, kind: str, key: str) -> Resource | None:
        """By natural key: domainUri, ``user@domain`` for agents, username, telUrl, host:port."""
        return (await self.snapshot()).find_by_key(kind_of(kind), key)

    # --- writes -------------------------------------------------------------------------

    async def create(self, resource: Resource) -> Resource:
        resource = await asyncio.to_thread(with_hashed_secret, resource)
        now = self.clock()
        change = await self._mutate(lambda s: integrity.plan_create(s, resource, now))
        return change.resource

    async def update(self, resource: Resource) -> Resource:
        resource = await asyncio.to_thread(with_hashed_secret, resource)
        now = self.clock()
        change = await self._mutate(lambda s: integrity.plan_update(s, resource, now))
        return change.resource

    async def delete(self, kind: str, ref: str) -> Resource:
        """Remove and return the resource; refused while others still point at it."""
        kind = kind_of(kind)
        change = await self._mutate(lambda s: integrity.plan_delete(s, kind, ref))
        return change.resource

    # --- bans (state, not resources: kept where every node can read them) -----------------

    async def load_bans(self, now: float) -> dict[str, float]:
        """Bans in force: address -> wall-clock time it ends. None kept by this source (a
        files or HTTP source): bans then live in the process's memory only."""
        return {}

    async def save_ban(self, ip: str, until: float) -> None:
        """Keep a ban so other nodes and the next start see it (no-op where not kept)."""
        return None

    async def remove_ban(self, ip: str) -> None:
        """An operator lifted the ban (no-op where not kept)."""
        return None

    async def shared_secret(self) -> bytes | None:
        """The deployment's master secret, created on first use; None when this source
        cannot keep one (see ``routr.data.secrets``)."""
        return None

    # --- change notifications -----------------------------------------------------------

    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback`` on every change (in the event loop); returns the unsubscribe."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    async def changes(self) -> AsyncIterator[Change]:
        """Every change from now on, as an async iterator."""
        queue: asyncio.Queue[Change] = asyncio.Queue()
        unsubscribe = self.subscribe(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()

    def _set_snapshot(self, new: Snapshot) -> None:
        old, self._snapshot = self._snapshot, new
        self._generation += 1
        if old is None:
            return
        for change in diff(old, new):
            for callback in list(self._subscribers):
                try:
                    callback(change)
                except Exception:
                    log.exception("%s: change subscriber failed", self.name)
