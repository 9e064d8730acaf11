"""Location store fixtures: one parametrized store (memory, redis) and a Redis space.

Redis is 127.0.0.1:6379, db 10..15. Each test writes under its own key prefix and deletes
those keys afterwards, so a concurrent test run on the same db is not disturbed. Without
Redis the redis cases are skipped, unless CI=true, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from location_helpers import RedisSpace, redis_problem

from routr.location import LocationStore, MemoryStore


@pytest.fixture
def redis_space() -> Iterator[RedisSpace]:
    problem = redis_problem()
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
