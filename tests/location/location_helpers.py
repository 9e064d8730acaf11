"""Helpers of the location tests (not in conftest: other test folders have a conftest
module of their own, and ``from conftest import`` would pick whichever came first)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from routr.location import Binding
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


def redis_problem() -> str | None:
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
