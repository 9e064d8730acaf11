"""Bans kept in Redis: every node on it enforces them, and they outlive a restart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support.api import ADMIN_SECRET, Api, token, wait_until
from support.server import RoutrProcess
from support.sip import UdpClient, options

DB = 8  # the data tests use 9..15


@pytest.fixture
def redis_db() -> Iterator[int]:
    client = redis.Redis("127.0.0.1", 6379, db=DB)
    try:
        client.ping()
    except redis.RedisError as exc:
        problem = f"Redis at 127.0.0.1:6379 is not reachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(problem + " (CI=true: Redis is required)")
        pytest.skip(problem)
    client.flushdb()
    yield DB
    client.flushdb()


def _spec() -> dict[str, object]:
    return {
        "restService": {"port": 0},
        "dataSource": {"provider": "redis_data_provider",
                       "parameters": f"host=127.0.0.1,port=6379,db={DB}"},
        "security": {"floodBan": {"requests": 5, "seconds": 10, "banSeconds": 600}},
    }  # fmt: skip


def _start(workdir: Path) -> RoutrProcess:
    """A node on the shared Redis (no --data: that would choose a files source)."""
    workdir.mkdir(exist_ok=True)
    env = {"INITIAL_API_SECRET": ADMIN_SECRET}
    return RoutrProcess(workdir, ("udp",), _spec(), env=env).start()


def _flood(port: int) -> None:
    with UdpClient(("127.0.0.1", port), bind="127.0.0.9") as client:
        for _ in range(10):
            client.send(options(f"127.0.0.1:{port}", local=client.local))


def test_a_ban_reaches_the_other_node_outlives_a_restart_and_is_lifted(
    tmp_path: Path, redis_db: int
) -> None:
    first, second = _start(tmp_path / "a"), _start(tmp_path / "b")
    try:
        a, b = Api(first.api, token(first.api)), Api(second.api, token(second.api))
        _flood(first.ports["udp"])
        assert wait_until(lambda: a.data("/bans"))[0]["ip"] == "127.0.0.9"
        # the other node enforces it too, once its sweep has read the shared bans
        assert wait_until(lambda: b.data("/bans"), timeout=15)[0]["ip"] == "127.0.0.9"
        first.stop()
        first = _start(tmp_path / "a")
        a = Api(first.api, token(first.api))
        assert a.data("/bans")[0]["ip"] == "127.0.0.9"  # loaded at start
        assert a.delete("/bans/127.0.0.9").status_code == 200
        assert redis.Redis("127.0.0.1", 6379, db=DB).hgetall("routr:bans") == {}
        # lifted on one node, lifted on the other at its next sweep
        wait_until(lambda: b.data("/bans") == [], timeout=15)
    finally:
        first.stop()
        second.stop()
    first.assert_no_tracebacks()
    second.assert_no_tracebacks()


def test_the_data_source_is_described_without_its_credentials() -> None:
    from routr.models.config import Config
    from routr.server.app import Server

    params = "host=10.0.0.5,port=6380,secret=hunter2hunter2,username=routr"
    config = Config.model_validate(
        {"spec": {"dataSource": {"provider": "redis_data_provider", "parameters": params}}}
    )
    shown = Server(config).data_description()
    assert shown == "redis_data_provider (host=10.0.0.5,port=6380,username=routr)"
    http = "baseUrl=https://u:pw@api.example/v1,username=u,secret=pw"
    config = Config.model_validate(
        {"spec": {"dataSource": {"provider": "http_data_provider", "parameters": http}}}
    )
    assert "pw" not in Server(config).data_description()
