"""The in-process event bus: one ``emit`` on the hot path, fanned out to subscribers.

Decisions:
- Two kinds of subscriber. Callbacks (:meth:`Bus.subscribe`) run inline, for cheap work (the
  log line, metrics counters). Queues (:meth:`Bus.queue`) buffer events for slow asyncio
  consumers (the NATS publisher, API watch streams).
- ``emit`` never blocks and never raises: a failing callback is logged once and counted; a
  full queue drops the *newest* event and counts it, because the emitter is a SIP request
  that must not wait for a slow reader. Dropping the newest keeps what a reader already has
  contiguous.
- No task per event: a queue is a deque plus the futures of waiting readers, woken with
  ``set_result``. So ``emit`` also works with no running loop (sans-IO tests, start-up),
  provided it is called from the loop's thread: this is a single-threaded program.
- The subscribers an event name reaches are computed once per name and cached until the
  next (un)subscribe, so ``emit`` does one dict lookup and one call per interested subscriber.
- ``kinds`` filters by exact name (``"call.ended"``) or by prefix ending with a dot
  (``"call."``); an unknown name or a prefix matching nothing is refused at subscribe time,
  where a typo would otherwise silently mean "no events".
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from typing import Final, TypeVar

from routr.events.types import EVENT_TYPES, Event

__all__ = ["Bus", "EventQueue", "Kinds", "QueueClosed", "Subscription"]

_log = logging.getLogger(__name__)

#: What ``kinds=`` accepts: one name or prefix, several, or None for every event.
Kinds = str | Iterable[str] | None
Callback = Callable[[Event], None]

DEFAULT_MAXSIZE: Final = 1000

_S = TypeVar("_S", bound="_Subscriber")


class QueueClosed(Exception):
    """Raised by :meth:`EventQueue.get` once the queue is closed and drained."""


class _Filter:
    __slots__ = ("exact", "prefixes")

    def __init__(self, kinds: str | Iterable[str]) -> None:
        wanted = [kinds] if isinstance(kinds, str) else list(kinds)
        if not wanted:
            raise ValueError("kinds: give at least one event name or prefix, or None for all")
        exact: set[str] = set()
        prefixes: list[str] = []
        for kind in wanted:
            if kind.endswith("."):
                if not any(name.startswith(kind) for name in EVENT_TYPES):
                    raise ValueError(f"kinds: no event name starts with {kind!r}")
                prefixes.append(kind)
            elif kind in EVENT_TYPES:
                exact.add(kind)
            else:
                raise ValueError(
                    f"kinds: unknown event {kind!r} (a prefix ends with a dot: 'call.')"
                )
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def matches(self, name: str) -> bool:
        return name in self.exact or name.startswith(self.prefixes)


class _Subscriber:
    """What the bus holds of every subscriber; ``_deliver`` must never raise."""

    __slots__ = ("_bus", "_filter", "closed", "name")

    def __init__(self, bus: Bus, kinds: Kinds, name: str) -> None:
        self._bus = bus
        self._filter = None if kinds is None else _Filter(kinds)
        self.name = name
        self.closed = False

    def wants(self, name: str) -> bool:
        return self._filter is None or self._filter.matches(name)

    def _deliver(self, event: Event) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Unsubscribe. Idempotent."""
        if not self.closed:
            self.closed = True
            self._bus._remove(self)


class Subscription(_Subscriber):
    """A callback subscriber, from :meth:`Bus.subscribe`. ``errors``: exceptions it raised."""

    __slots__ = ("callback", "errors")

    def __init__(self, bus: Bus, callback: Callback, kinds: Kinds, name: str) -> None:
        super().__init__(bus, kinds, name)
        self.callback = callback
        self.errors = 0

    def _deliver(self, event: Event) -> None:
        if self.closed:  # closed by an earlier subscriber during this same emit
            return
        try:
            self.callback(event)
        except Exception:
            self.errors += 1
            if self.errors == 1:  # a broken subscriber would otherwise log on every REGISTER
                _log.exception(
                    "event subscriber %s failed on %s (later failures are counted, not logged)",
                    self.name,
                    event.name,
                )

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventQueue(_Subscriber):
    """A bounded buffer of events for one asyncio consumer, from :meth:`Bus.queue`.

    Read with ``await get()``, ``get_nowait()`` or ``async for event in queue``. After
    :meth:`close` the pending events are still read, then iteration ends. ``dropped``: events
    lost because the queue was full. ``node``: the bus's node id, for ``event.to_dict(node)``.
    """

    __slots__ = ("_items", "_overflowing", "_waiters", "dropped", "maxsize", "node")

    def __init__(self, bus: Bus, maxsize: int, kinds: Kinds, name: str) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        super().__init__(bus, kinds, name)
        self.maxsize = maxsize
        self.node = bus.node
        self.dropped = 0
        self._overflowing = False  # dropping since the queue was last read
        self._items: deque[Event] = deque()
        self._waiters: list[asyncio.Future[None]] = []

    def __len__(self) -> int:
        return len(self._items)

    def _deliver(self, event: Event) -> None:
        if self.closed:
            return
        if len(self._items) >= self.maxsize:
            self.dropped += 1
            self._bus._count_drop(self.name)
            if not self._overflowing:  # once per overflow, not per event
                self._overflowing = True
                _log.warning("event queue %s is full: dropping new events", self.name)
            return
        self._items.append(event)
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        # Wake every reader: each one re-checks the deque, so a reader cancelled after being
        # woken cannot strand an event that another reader is waiting for.
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            # RuntimeError: the waiter's loop is closed (a torn-down test loop); emit goes on.
            with suppress(RuntimeError):
                if not waiter.done():
                    waiter.set_result(None)

    def get_nowait(self) -> Event:
        """The oldest pending event; ``asyncio.QueueEmpty`` if none, :class:`QueueClosed`
        if none will come."""
        if self._items:
            self._overflowing = False
            return self._items.popleft()
        if self.closed:
            raise QueueClosed(self.name)
        raise asyncio.QueueEmpty

    async def get(self) -> Event:
        """The oldest pending event, waiting for one; :class:`QueueClosed` once drained."""
        while not self._items:
            if self.closed:
                raise QueueClosed(self.name)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                with suppress(ValueError):  # already taken by _wake
                    self._waiters.remove(waiter)
        self._overflowing = False
        return self._items.popleft()

    def close(self) -> None:
        """Unsubscribe; readers get what is pending, then the end. Idempotent."""
        if not self.closed:
            super().close()
            self._wake()

    def __aiter__(self) -> EventQueue:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except QueueClosed:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> EventQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Bus:
    """Fans events out to subscribers. ``node``: this node's id, put in every JSON body."""

    __slots__ = ("_dropped", "_routes", "_subscribers", "node")

    def __init__(self, node: str | None = None) -> None:
        self.node = node
        self._subscribers: list[_Subscriber] = []
        #: event name -> the subscribers it reaches; cleared on every (un)subscribe.
        self._routes: dict[str, tuple[_Subscriber, ...]] = {}
        self._dropped: dict[str, int] = {}

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every interested subscriber, now. Never blocks nor raises."""
        targets = self._routes.get(event.name)
        if targets is None:
            targets = self._routes[event.name] = tuple(
                s for s in self._subscribers if s.wants(event.name)
            )
        for subscriber in targets:
            subscriber._deliver(event)

    def subscribe(
        self, callback: Callback, kinds: Kinds = None, *, name: str | None = None
    ) -> Subscription:
        """Call ``callback(event)`` inline for every event ``kinds`` selects; it must be cheap.
        ``name`` (default: the callback's qualified name) appears in the log if it fails."""
        label = name or getattr(callback, "__qualname__", None) or repr(callback)
        return self._add(Subscription(self, callback, kinds, label))

    def queue(
        self, maxsize: int = DEFAULT_MAXSIZE, kinds: Kinds = None, *, name: str = "queue"
    ) -> EventQueue:
        """A new bounded queue of the events ``kinds`` selects. ``name`` groups drop counts:
        every watch stream can be ``"watch"``, the publisher ``"nats"``."""
        return self._add(EventQueue(self, maxsize, kinds, name))

    @property
    def dropped(self) -> Mapping[str, int]:
        """Events dropped by full queues since start, per queue name (closed ones included)."""
        return dict(self._dropped)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def close(self) -> None:
        """End every queue (at shutdown: watch streams and the publisher finish what is
        pending). Callbacks stay, so the log still sees the last events, such as gateway
        un-registrations."""
        for subscriber in list(self._subscribers):
            if isinstance(subscriber, EventQueue):
                subscriber.close()

    def _add(self, subscriber: _S) -> _S:
        self._subscribers.append(subscriber)
        self._routes.clear()
        return subscriber

    def _remove(self, subscriber: _Subscriber) -> None:
        with suppress(ValueError):
            self._subscribers.remove(subscriber)
        self._routes.clear()

    def _count_drop(self, name: str) -> None:
        self._dropped[name] = self._dropped.get(name, 0) + 1
