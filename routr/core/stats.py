"""Counters of the SIP hot path, read by ``GET /metrics`` at scrape time.

Plain ints in dicts and lists: a message costs a few increments, no prometheus object, no
lock (the SIP core runs on one loop) and no clock beyond one ``perf_counter`` pair.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from routr.sip.limits import LimitHits

#: Methods counted under their own name; any other goes to ``OTHER``, so that a peer
#: sending made-up methods cannot grow the metric's label set.
METHODS: Final = (
    "ACK", "BYE", "CANCEL", "INFO", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS", "PRACK",
    "PUBLISH", "REFER", "REGISTER", "SUBSCRIBE", "UPDATE",
)  # fmt: skip
OTHER: Final = "OTHER"

#: Upper bounds in seconds of the handling-time buckets (the synchronous part of a message
#: takes tens of microseconds; the upper ones catch pauses).
LATENCY_BOUNDS: Final = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)  # fmt: skip


class SipStats:
    """What became of the messages, by kind; every field only ever grows."""

    __slots__ = (
        "latency",
        "latency_sum",
        "limit_hits",
        "parse_errors",
        "requests",
        "responses_received",
        "responses_sent",
    )

    def __init__(self, limit_hits: LimitHits | None = None) -> None:
        #: Shared with the transports, which count the limits they enforce in it too.
        self.limit_hits = limit_hits if limit_hits is not None else LimitHits()
        self.requests: dict[str, int] = dict.fromkeys((*METHODS, OTHER), 0)
        # Indexed by status // 100; the parser admits 100-999, so ten slots, 0 unused.
        self.responses_received = [0] * 10
        self.responses_sent = [0] * 10
        self.parse_errors: dict[int, int] = {}  # by the status answered (400, 413, 513...)
        # One count per bucket of LATENCY_BOUNDS, the last one past them (+Inf).
        self.latency = [0] * (len(LATENCY_BOUNDS) + 1)
        self.latency_sum = 0.0

    def request(self, method: str) -> None:
        requests = self.requests
        if method in requests:
            requests[method] += 1
        else:
            requests[OTHER] += 1

    def parse_error(self, status: int) -> None:
        self.parse_errors[status] = self.parse_errors.get(status, 0) + 1

    def observe(self, seconds: float) -> None:
        """One message handled in ``seconds``."""
        # bisect_left: a value equal to a bound belongs to that bucket (Prometheus' ``le``).
        self.latency[bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self.latency_sum += seconds

    def classes(self, counts: list[int]) -> dict[str, int]:
        """``{"1xx": n, ...}``: 1xx to 6xx always, the classes past 6xx only once seen."""
        return {f"{i}xx": n for i, n in enumerate(counts) if 1 <= i <= 6 or n}

    def histogram(self) -> tuple[list[tuple[float, int]], int, float]:
        """Cumulative ``(bound, count)`` pairs (``inf`` last), the total and the sum."""
        buckets: list[tuple[float, int]] = []
        total = 0
        for bound, n in zip((*LATENCY_BOUNDS, float("inf")), self.latency, strict=True):
            total += n
            buckets.append((bound, total))
        return buckets, total, self.latency_sum
