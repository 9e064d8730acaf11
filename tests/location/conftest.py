"""Location store fixtures: one parametrized store (memory, redis) and a Redis opener.

Redis is 127.0.0.1:6379, db 10..15. Each test writes under its own key prefix and deletes
those keys afterwards, so a concurrent test run on the same db is not disturbed. Without
Redis the redis cases are skipped, unless CI=true, where they fail.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from routr.location import Binding, LocationStore, MemoryStore
from routr.location.redis_store import RedisStore

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
_dbs = itertools.cycle(range(10, 16))


def make_binding(
    aor: str = "sip:1001@sip.local",
    contact: str = "sip:1001@127.0.0.1:5070",
    *,
    expires_at: float = 1_000.0 + 3600,
    registered_on: float = 1_000.0,
    **kw: Any,
) -> Binding:
    kw.setdefault("source_ip", "127.0.0.1")
    kw.setdefault("source_port", 5070)
    kw.setdefault("transport", "udp")
    return Binding(aor, contact, expires_at=expires_at, registered_on=registered_on, **kw)


def _redis_problem() -> str | None:
    import redis

    try:
        redis.Redis(REDIS_HOST, REDIS_PORT, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_HOST}:{REDIS_PORT} is not reachable: {exc}"
    return None


class RedisSpace:
    """A db index and a key prefix of one test."""

    def __init__(self) -> None:
        self.db = next(_dbs)
        self.prefix = f"routr-test:{uuid.uuid4().hex[:10]}"

    def open(self, **kw: Any) -> RedisStore:
        return RedisStore(REDIS_HOST, REDIS_PORT, db=self.db, prefix=self.prefix, **kw)

    def flush(self) -> None:
        import redis

        client = redis.Redis(REDIS_HOST, REDIS_PORT, db=self.db)
        keys = list(client.scan_iter(match=self.prefix + ":*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def redis_space() -> Iterator[RedisSpace]:
    problem = _redis_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem + " (CI=true: Redis is required)")
        pytest.skip(problem)
    space = RedisSpace()
    yield space
    space.flush()


Opener = Callable[..., LocationStore]


@pytest.fixture(params=["memory", "redis"])
async def open_store(request: pytest.FixtureRequest) -> AsyncIterator[Opener]:
    """Opens (and starts) stores of one kind; every store opened in a test shares data
    (for memory: the same instance)."""
    opened: list[LocationStore] = []
    shared: list[MemoryStore] = []
    space: RedisSpace | None = (
        request.getfixturevalue("redis_space") if request.param == "redis" else None
    )

    def opener(**kw: Any) -> LocationStore:
        if space is None:
            if not shared:
                shared.append(MemoryStore(**kw))
            return shared[0]
        store = space.open(**kw)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: Opener) -> LocationStore:
    s = open_store()
    await s.start()
    return s
