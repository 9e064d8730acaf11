"""The collector watch: freezing survivors, timing pauses, and their metrics."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support.server import RoutrProcess

from routr import gcwatch


def test_a_pause_is_counted_in_its_bucket_and_remembered_as_the_longest() -> None:
    times = iter([10.0, 10.003, 20.0, 22.0])
    watch = gcwatch.GcWatch(clock=lambda: next(times))
    watch.freezing = False  # leave this process' collector alone
    watch("start", {"generation": 0})
    watch("stop", {"generation": 0, "collected": 0, "uncollectable": 0})
    watch("start", {"generation": 0})
    watch("stop", {"generation": 0, "collected": 0, "uncollectable": 0})
    counts = watch.counts[0]
    assert counts[gcwatch.PAUSE_BUCKETS.index(0.005)] == 1  # 3 ms
    assert counts[-1] == 1  # 2 s: over every bound
    assert sum(counts) == 2 and watch.counts[1] == [0] * len(counts)
    assert abs(watch.longest[0] - 2.0) < 1e-9
    assert abs(watch.seconds[0] - 2.003) < 1e-9


def test_install_adds_one_watch_however_often_it_is_called() -> None:
    before = [c for c in gc.callbacks if isinstance(c, gcwatch.GcWatch)]
    try:
        first = gcwatch.install()
        assert gcwatch.install() is first
        assert [c for c in gc.callbacks if isinstance(c, gcwatch.GcWatch)] == [first]
        gc.collect()
        assert sum(first.counts[2]) >= 1
    finally:
        for callback in [c for c in gc.callbacks if isinstance(c, gcwatch.GcWatch)]:
            if callback not in before:
                gc.callbacks.remove(callback)
        gc.unfreeze()


def test_the_server_reports_its_collector_pauses(tmp_path: Path) -> None:
    proc = RoutrProcess(tmp_path, ("udp",)).start()
    try:
        text = httpx.get(f"{proc.api}/metrics", timeout=10).text
    finally:
        assert proc.stop() == 0
    families = {f.name: f for f in text_string_to_metric_families(text)}
    pauses = families["routr_gc_pause_seconds"]
    # Young collections run all the time: answering the API request alone allocates more
    # containers than generation 0 holds.
    counts = {s.labels["generation"]: s.value for s in pauses.samples
              if s.name == "routr_gc_pause_seconds_count"}  # fmt: skip
    assert set(counts) == {"0", "1", "2"} and counts["0"] >= 1
    longest = {s.labels["generation"]: s.value
               for s in families["routr_gc_longest_pause_seconds"].samples}  # fmt: skip
    assert longest["0"] > 0
