"""The cyclic collector, kept away from routr's long-lived state and timed.

One per process (the collector is), installed by the server at start. Two jobs in one
``gc`` callback: freeze what survives young collections (see :class:`GcWatch`), and time
every collection by generation, for ``routr_gc_pause_seconds`` in ``/metrics`` and the
latency benchmark.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

#: Upper bounds of the pause histogram, in seconds.
PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class GcWatch:
    """A ``gc`` callback that freezes what survives the young collections and times them.

    Finished transactions and dialogs wait up to 32 s, so at 300 calls/s the heap holds
    half a million tracked objects and every full collection walked them all, finding
    nothing (they are freed by reference counting): pauses of 0.4-1.4 s every few
    seconds. Frozen, they are still freed when their last reference goes; only cyclic
    garbage among them would stay, so when the heap doubles it is thawed for the next
    full collection to look at once, then frozen again. The heap is measured in allocated
    blocks: ``gc.get_freeze_count()`` walks every frozen object, and called after each
    young collection it took 40 % of the CPU.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.base = sys.getallocatedblocks()
        self.freezing = True
        self._started = 0.0
        #: Per generation: collections in each bucket of PAUSE_BUCKETS (+ one over all).
        self.counts = [[0] * (len(PAUSE_BUCKETS) + 1) for _ in range(3)]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        generation = info["generation"]
        self._freeze(generation)
        # Timed after the freeze: it belongs to the pause the loop sees.
        pause = self._clock() - self._started
        self.seconds[generation] += pause
        if pause > self.longest[generation]:
            self.longest[generation] = pause
        counts = self.counts[generation]
        for i, bound in enumerate(PAUSE_BUCKETS):
            if pause <= bound:
                counts[i] += 1
                return
        counts[-1] += 1

    def _freeze(self, generation: int) -> None:
        if generation == 2 and not self.freezing:
            gc.freeze()
            self.base, self.freezing = sys.getallocatedblocks(), True
        elif generation == 1 and self.freezing:
            gc.freeze()
            if sys.getallocatedblocks() > 2 * self.base:
                gc.unfreeze()
                self.freezing = False


def installed() -> GcWatch | None:
    """The process' watch, if a server installed it."""
    for callback in gc.callbacks:
        if isinstance(callback, GcWatch):
            return callback
    return None


def install() -> GcWatch:
    """Freeze what start-up made, and watch from now on (one watch per process)."""
    gc.collect()
    gc.freeze()
    watch = installed()
    if watch is None:
        watch = GcWatch()
        gc.callbacks.append(watch)
    return watch
