"""The location store interface and the watch machinery every store shares."""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Literal, NamedTuple

from routr.location.binding import Binding

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED", "EXPIRED"]
#: What :meth:`LocationStore.add` did: ``REFUSED`` for an out-of-order refresh (same
#: Call-ID, CSeq not higher than the stored one, RFC 3261 §10.3 step 7).
AddResult = Literal["ADDED", "MODIFIED", "REFUSED"]
Clock = Callable[[], float]


class LocationEvent(NamedTuple):
    """A change of one binding. DELETED and EXPIRED carry the binding as it was."""

    type: EventType
    binding: Binding


Callback = Callable[[LocationEvent], None]
#: Spelled once here: inside the store classes ``list`` names a method.
Bindings = list[Binding]


class Subscription:
    """An async iterator of :class:`LocationEvent`, from :meth:`LocationStore.subscribe`.

    A consumer that falls ``maxsize`` events behind is cut off (``overflowed`` is set and
    iteration ends) rather than silently missing events: it should re-list and re-watch.
    """

    __slots__ = ("_hub", "_queue", "closed", "overflowed")

    def __init__(self, hub: Watchers, maxsize: int) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[LocationEvent | None] = asyncio.Queue(maxsize + 1)
        self.closed = False
        self.overflowed = False

    def _put(self, event: LocationEvent) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= self._queue.maxsize - 1:
            self.overflowed = True
            self.close()
            return
        self._queue.put_nowait(event)

    def close(self) -> None:
        """Stop: pending events are still read, then iteration ends."""
        if self.closed:
            return
        self.closed = True
        self._hub._subscriptions.discard(self)
        self._queue.put_nowait(None)  # the spare slot: always room for the end marker

    def __aiter__(self) -> AsyncIterator[LocationEvent]:
        return self

    async def __anext__(self) -> LocationEvent:
        event = await self._queue.get()
        if event is None:
            self._queue.put_nowait(None)  # later calls end too
            raise StopAsyncIteration
        return event

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Watchers:
    """Fans events out to callbacks (called synchronously) and subscriptions (queued)."""

    __slots__ = ("_callbacks", "_subscriptions")

    def __init__(self) -> None:
        self._callbacks: list[Callback] = []
        self._subscriptions: set[Subscription] = set()

    def on_event(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback`` for every event; returns a function that unregisters it."""
        self._callbacks.append(callback)

        def cancel() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return cancel

    def subscribe(self, maxsize: int = 10_000) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subscriptions.add(sub)
        return sub

    def emit(self, type_: EventType, binding: Binding) -> None:
        event = LocationEvent(type_, binding)
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:  # one broken watcher must not break registration
                log.exception("location event callback failed")
        for sub in list(self._subscriptions):
            sub._put(event)

    def close(self) -> None:
        for sub in list(self._subscriptions):
            sub.close()
        self._callbacks.clear()


class LocationStore(abc.ABC):
    """Bindings by AOR, keyed by (aor, contact). Every method is a coroutine.

    ``now`` arguments default to the store's clock (``time.time`` unless given). Lookups
    never return expired bindings, even before a sweep removed them.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or time.time
        self.watchers = Watchers()

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    async def start(self) -> None:
        """Connect / start background work. Idempotent."""
        return None

    async def close(self) -> None:
        self.watchers.close()

    @abc.abstractmethod
    async def add(self, binding: Binding, now: float | None = None) -> AddResult:
        """Insert or replace the binding of (aor, contact); ADDED or MODIFIED is emitted.

        An out-of-order refresh (same Call-ID, CSeq not higher) changes nothing: REFUSED.
        """

    async def refresh(self, binding: Binding, now: float | None = None) -> AddResult:
        """Same as :meth:`add` (the upsert covers both)."""
        return await self.add(binding, now)

    @abc.abstractmethod
    async def remove(self, aor: str, contact: str) -> Binding | None:
        """Remove one binding (DELETED); the removed binding or None."""

    @abc.abstractmethod
    async def remove_all(self, aor: str) -> Bindings:
        """Remove every binding of ``aor`` (DELETED for each)."""

    @abc.abstractmethod
    async def lookup(self, aor: str, now: float | None = None) -> Bindings:
        """The live bindings of ``aor``, highest q first, then most recent first."""

    @abc.abstractmethod
    async def list(self, now: float | None = None) -> Bindings:
        """Every live binding (for the API), ordered by AOR then as :meth:`lookup`."""

    @abc.abstractmethod
    async def evict_all(self) -> int:
        """Remove every binding (DELETED for each); how many were removed."""

    @abc.abstractmethod
    async def sweep(self, now: float | None = None) -> Bindings:
        """Remove the bindings expired at ``now`` (EXPIRED for each) and return them."""

    def subscribe(self, maxsize: int = 10_000) -> Subscription:
        """An async iterator of every later event."""
        return self.watchers.subscribe(maxsize)

    def on_event(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback`` synchronously for every later event; returns an unsubscriber."""
        return self.watchers.on_event(callback)


def ordered(bindings: Bindings) -> Bindings:
    """Highest q first, then the most recently registered (RFC 3261 §16.6 preference)."""
    return sorted(bindings, key=lambda b: (-b.q, -b.registered_on, b.contact))


def out_of_order(old: Binding, new: Binding) -> bool:
    """RFC 3261 §10.3 step 7: same Call-ID and a CSeq that is not higher."""
    return bool(old.call_id) and old.call_id == new.call_id and new.cseq <= old.cseq
