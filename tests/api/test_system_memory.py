"""``GET /system/memory``: what an operator hunting a leak reads from a running server."""

from __future__ import annotations

from pathlib import Path

import httpx
from support.api import ADMIN_SECRET, BASE, Api, token
from support.server import RoutrProcess


def _start(tmp_path: Path, env: dict[str, str] | None = None) -> RoutrProcess:
    data = tmp_path / "data"
    data.mkdir()
    env = {"INITIAL_API_SECRET": ADMIN_SECRET, **(env or {})}
    return RoutrProcess(tmp_path, ("udp",), env=env, data=data).start()


def test_memory_needs_a_token_and_shows_rss_and_the_collector(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    try:
        assert httpx.get(f"{proc.api}{BASE}/system/memory", timeout=10).status_code == 401
        api = Api(proc.api, token(proc.api))
        body = api.get("/system/memory").json()["data"]
        assert body["rssBytes"] > 10 * 1024 * 1024
        assert len(body["gc"]["counts"]) == 3 and body["gc"]["frozen"] > 0
        assert "objects" not in body and "tracemalloc" not in body  # not traced by default
        typed = api.get("/system/memory", params={"objects": "true", "top": 5}).json()["data"]
        assert len(typed["objects"]) == 5
        counts = {o["type"]: o["count"] for o in typed["objects"]}
        # start-up's objects are frozen (out of the collector's generations): counted too
        assert counts.get("function", 0) > 10_000, counts
        bad = api.get("/system/memory", params={"top": 0})
        assert bad.status_code in (400, 422), bad.text
        api.close()
    finally:
        assert proc.stop() == 0
    proc.assert_no_tracebacks()


def test_allocation_sites_when_python_traces_allocations(tmp_path: Path) -> None:
    # PYTHONTRACEMALLOC is Python's own switch (python -X tracemalloc), not routr's.
    proc = _start(tmp_path, {"PYTHONTRACEMALLOC": "1"})
    try:
        api = Api(proc.api, token(proc.api))
        traced = api.get("/system/memory", params={"top": 3}).json()["data"]["tracemalloc"]
        size = api.get("/system/memory", params={"sites": "false"}).json()["data"]["tracemalloc"]
        api.close()
    finally:
        assert proc.stop() == 0
    assert traced["tracedBytes"] > 0 and traced["peakBytes"] >= traced["tracedBytes"]
    assert len(traced["sites"]) == 3
    assert all(":" in s["site"] and s["sizeBytes"] > 0 for s in traced["sites"])
    assert size["tracedBytes"] > 0 and "sites" not in size
