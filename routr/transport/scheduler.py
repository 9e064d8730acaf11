"""One timer heap for the process, armed with a single ``loop.call_at``.

Transactions, registrations and idle connections all set deadlines here; thousands of
timers cost one pending loop callback, and cancelling is O(1) (lazy deletion).

Deadlines are given on the process's one clock, wall-clock seconds (``time.time``): binding
expiries and nonce stamps are shared with other processes and nodes, so the core keeps one
clock that means the same everywhere. Each deadline is turned into the loop's monotonic
time once, when it is set, and the heap runs on that: a step of the wall clock (NTP, a VM
resumed) neither stalls armed timers nor fires them all at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable

_log = logging.getLogger("routr.timers")


def _noop() -> None:
    return None


class Timer:
    """A handle on a scheduled call; :meth:`cancel` makes it a no-op."""

    __slots__ = ("_scheduler", "callback", "cancelled", "when")

    def __init__(
        self, when: float, callback: Callable[[], object], scheduler: Scheduler | None = None
    ) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        self._scheduler = scheduler  # while in its heap

    def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        # A cancelled timer stays in the heap until its time (lazy deletion): drop what the
        # callback holds (a transaction and its messages) at once.
        self.callback = _noop
        if self._scheduler is not None:
            self._scheduler._cancelled_one()


class Scheduler:
    """Deadlines in ``clock()`` seconds, kept and run in loop time by one armed callback."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, clock: Callable[[], float] = time.time
    ) -> None:
        self._loop = loop
        self.clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._armed: asyncio.TimerHandle | None = None
        self._armed_at = float("inf")
        self._cancelled = 0  # cancelled timers still in the heap

    def now(self) -> float:
        return self.clock()

    def monotonic(self) -> float:
        """The loop's clock: for durations that are this process's alone (idle flows)."""
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        return self.call_later(when - self.clock(), callback)

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        when = self._loop.time() + delay
        timer = Timer(when, callback, self)
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        if when < self._armed_at:
            self._arm(when)
        return timer

    def __len__(self) -> int:
        return len(self._heap)

    def _cancelled_one(self) -> None:
        # Transactions re-arm on every state change, leaving most timers cancelled with
        # deadlines up to 32 s away: a heap that was mostly dead entries made every push
        # slower and gave the garbage collector two objects per entry to walk. Dropped in
        # one pass when they are over half the heap (asyncio's rule for its own timers).
        self._cancelled += 1
        heap = self._heap
        if self._cancelled > 100 and 2 * self._cancelled > len(heap):
            for _, _, timer in heap:
                if timer.cancelled:
                    timer._scheduler = None
            heap[:] = [entry for entry in heap if not entry[2].cancelled]
            heapq.heapify(heap)
            self._cancelled = 0

    def _arm(self, when: float) -> None:
        if self._armed is not None:
            self._armed.cancel()
        self._armed_at = when
        self._armed = self._loop.call_at(when, self._run)

    def _run(self) -> None:
        self._armed = None
        self._armed_at = float("inf")
        heap = self._heap
        now = self._loop.time()
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            timer._scheduler = None
            if timer.cancelled:
                self._cancelled -= 1
            else:
                try:
                    timer.callback()
                except Exception:  # a failing timer must not stop the others
                    _log.exception("timer callback failed")
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)[2]._scheduler = None
            self._cancelled -= 1
        if heap:
            self._arm(heap[0][0])

    def close(self) -> None:
        if self._armed is not None:
            self._armed.cancel()
        for _, _, timer in self._heap:
            timer._scheduler = None
        self._heap.clear()
        self._cancelled = 0
