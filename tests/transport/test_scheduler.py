"""The one timer heap: deadlines on the process clock, run from the loop's own clock."""

from __future__ import annotations

import asyncio
import time

from routr.transport.scheduler import Scheduler


async def test_deadlines_on_a_clock_other_than_the_loops_run_in_order() -> None:
    loop = asyncio.get_running_loop()
    skew = 1_000_000.0  # a wall clock far from the loop's monotonic one
    scheduler = Scheduler(loop, clock=lambda: time.time() + skew)
    fired: list[str] = []
    done = asyncio.Event()
    now = scheduler.now()
    scheduler.call_at(now + 0.06, lambda: (fired.append("late"), done.set()))
    scheduler.call_at(now + 0.02, lambda: fired.append("early"))
    scheduler.call_later(0.04, lambda: fired.append("middle"))
    scheduler.call_at(now + 0.03, lambda: fired.append("cancelled")).cancel()
    await asyncio.wait_for(done.wait(), timeout=5)
    assert fired == ["early", "middle", "late"]
    assert scheduler.now() >= now + 0.06 - 0.001
    scheduler.close()


async def test_a_deadline_in_the_past_runs_at_once_and_a_failing_one_spares_the_rest() -> None:
    scheduler = Scheduler(asyncio.get_running_loop())
    done = asyncio.Event()

    def boom() -> None:
        raise RuntimeError("timer failed on purpose")

    scheduler.call_at(scheduler.now() - 10, boom)
    scheduler.call_at(scheduler.now() - 5, done.set)
    await asyncio.wait_for(done.wait(), timeout=5)
    assert len(scheduler) == 0
    scheduler.close()


async def test_a_step_of_the_wall_clock_neither_stalls_nor_fires_armed_timers() -> None:
    loop = asyncio.get_running_loop()
    offset = [0.0]
    scheduler = Scheduler(loop, clock=lambda: time.time() + offset[0])
    fired: list[str] = []
    soon, later = asyncio.Event(), asyncio.Event()
    scheduler.call_later(0.05, lambda: (fired.append("soon"), soon.set()))
    scheduler.call_later(3600, lambda: (fired.append("later"), later.set()))
    offset[0] = -30.0  # the clock steps back: the 50 ms timer still fires in 50 ms
    await asyncio.wait_for(soon.wait(), timeout=2)
    offset[0] = 7200.0  # and forward: the one-hour timer does not fire now
    after = asyncio.Event()
    scheduler.call_later(0.02, lambda: (fired.append("after the step"), after.set()))
    await asyncio.wait_for(after.wait(), timeout=2)
    assert fired == ["soon", "after the step"] and not later.is_set()
    scheduler.close()
