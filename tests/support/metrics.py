"""Reading a test server's counters from ``GET /metrics``."""

from __future__ import annotations

import re
import time

import httpx

from support.server import RoutrProcess


def hits(proc: RoutrProcess, limit: str) -> float:
    """``routr_limit_hits_total{limit="..."}`` of ``proc``."""
    text = httpx.get(f"{proc.api}/metrics", timeout=5).text
    found = re.search(rf'^routr_limit_hits_total{{limit="{limit}"}} (\S+)$', text, re.M)
    assert found, f"no routr_limit_hits_total for {limit}"
    return float(found.group(1))


def wait_for_hits(proc: RoutrProcess, limit: str, count: float, timeout: float = 5.0) -> None:
    """Wait until ``limit`` has been hit ``count`` times in all (a count made by a timer
    may come just after what the test saw), and no more."""
    deadline = time.monotonic() + timeout
    while hits(proc, limit) < count:
        assert time.monotonic() < deadline, f"{limit} never reached {count}"
        time.sleep(0.05)  # polling the metric, bounded by the deadline above
    assert hits(proc, limit) == count
