"""Fixtures of the data tests: the stub HTTP service, Redis dbs, the three providers.

Network traffic stays on 127.0.0.1: Redis at 127.0.0.1:6379 (db 9..15, flushed before and
after), the stub service on an ephemeral port.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from routr_data_testkit import (
    HTTP_SECRET,
    HTTP_USER,
    REDIS_HOST,
    REDIS_PORT,
    Opener,
    StubService,
)

from routr.data import DataProvider
from routr.data.files_provider import FilesProvider
from routr.data.http_provider import HttpProvider
from routr.data.redis_provider import RedisProvider


@pytest.fixture
def stub_service() -> Iterator[StubService]:
    with StubService() as service:
        yield service


# --- Redis ------------------------------------------------------------------------------

_redis_dbs = itertools.cycle(range(9, 16))


def _redis_reachable() -> str | None:
    import redis

    try:
        redis.Redis(REDIS_HOST, REDIS_PORT, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_HOST}:{REDIS_PORT} is not reachable: {exc}"
    return None


@pytest.fixture
def redis_db() -> Iterator[int]:
    """A flushed Redis db index (9..15), flushed again afterwards."""
    import redis

    problem = _redis_reachable()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem + " (CI=true: Redis is required)")
        pytest.skip(problem)
    db = next(_redis_dbs)
    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=db)
    client.flushdb()
    yield db
    client.flushdb()
    client.close()


# --- the three providers, for the shared contract -----------------------------------------


@pytest.fixture(params=["files", "redis", "http"])
def open_same_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens providers of one kind that all see the same stored data."""
    if request.param == "files":
        yield lambda: FilesProvider(tmp_path / "config", poll_interval=0.05)
    elif request.param == "redis":
        db = request.getfixturevalue("redis_db")
        yield lambda: RedisProvider(REDIS_HOST, REDIS_PORT, db=db)
    else:
        service = request.getfixturevalue("stub_service")
        yield lambda: HttpProvider(service.base_url, HTTP_USER, HTTP_SECRET, ttl=0.1)


@pytest.fixture
async def provider(open_same_store: Opener) -> AsyncIterator[DataProvider]:
    p = open_same_store()
    await p.start()
    yield p
    await p.close()
