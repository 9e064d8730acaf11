"""A clock for the transports' deadlines that moves only when a test says so."""

from __future__ import annotations

from collections.abc import Callable

from routr.transport.scheduler import Timer


class Clock:
    """What the transports read of a Scheduler; time moves only in :meth:`advance`."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[Timer] = []

    def monotonic(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def pending(self, name: str) -> list[Timer]:
        """The timers armed and not cancelled whose callback is ``name``."""
        return [
            t
            for t in self.timers
            if not t.cancelled and getattr(t.callback, "__name__", "") == name
        ]

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = sorted((t for t in self.timers if t.when <= self.now), key=lambda t: t.when)
        for timer in due:
            self.timers.remove(timer)
            if not timer.cancelled:
                timer.callback()
