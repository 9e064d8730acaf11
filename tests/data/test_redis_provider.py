"""Redis specifics: Routr v1's key layout, entries written by v1, a server that is down."""

from __future__ import annotations

import json

import pytest
import redis
from routr_data_testkit import REDIS_HOST, REDIS_PORT, agent, domain, wait_until

from routr.data import Change, ProviderUnavailable
from routr.data.redis_provider import RedisProvider


async def test_v1_key_layout(redis_db: int) -> None:
    raw = redis.Redis(REDIS_HOST, REDIS_PORT, db=redis_db, decode_responses=True)
    async with RedisProvider(REDIS_HOST, REDIS_PORT, db=redis_db) as p:
        await p.create(domain(ref="dm-local"))
        await p.create(agent(ref="ag-1001"))
        assert raw.smembers("domains") == {"dm-local"}
        assert raw.smembers("agents") == {"ag-1001"}
        stored = json.loads(raw.get("ag-1001") or "")
        assert stored["kind"] == "Agent" and stored["spec"]["credentials"]["secret"] == "1234"
        await p.delete("Agent", "ag-1001")
        assert raw.smembers("agents") == set() and raw.get("ag-1001") is None


async def test_reads_what_v1_wrote_and_skips_garbage(redis_db: int) -> None:
    raw = redis.Redis(REDIS_HOST, REDIS_PORT, db=redis_db)
    v1_domain = {
        "apiVersion": "v1beta1",
        "kind": "Domain",
        "metadata": {"name": "Local", "ref": "5f1a"},
        "spec": {"context": {"domainUri": "sip.local"}},
    }
    raw.set("5f1a", json.dumps(v1_domain))
    raw.sadd("domains", "5f1a", "missing-ref")
    raw.set("junk", "{not json")
    raw.sadd("domains", "junk")
    async with RedisProvider(REDIS_HOST, REDIS_PORT, db=redis_db) as p:
        page = await p.list("Domain")
        assert [d.ref for d in page.items] == ["5f1a"]


async def test_sees_writes_made_outside_by_the_channel(redis_db: int) -> None:
    async with (
        RedisProvider(REDIS_HOST, REDIS_PORT, db=redis_db) as a,
        RedisProvider(REDIS_HOST, REDIS_PORT, db=redis_db) as b,
    ):
        heard: list[Change] = []
        b.subscribe(heard.append)
        await a.create(domain())
        await wait_until(lambda: [c.type for c in heard] == ["ADDED"], what="b to hear it")


async def test_unreachable_server_is_a_clear_error() -> None:
    p = RedisProvider("127.0.0.1", 1)  # nothing listens on port 1
    with pytest.raises(ProviderUnavailable, match=r"redis://127.0.0.1:1/0 is unreachable"):
        await p.start()
    with pytest.raises(ProviderUnavailable):
        await p.create(domain())
    await p.close()


async def test_bans_are_kept_for_every_node_and_expire(redis_db: int) -> None:
    first = RedisProvider(REDIS_HOST, REDIS_PORT, db=redis_db)
    second = RedisProvider(REDIS_HOST, REDIS_PORT, db=redis_db)
    async with first, second:
        await first.save_ban("192.0.2.7", 1_000.0)
        await first.save_ban("192.0.2.8", 50.0)
        assert await second.load_bans(now=100.0) == {"192.0.2.7": 1_000.0}
        await second.remove_ban("192.0.2.7")
        assert await first.load_bans(now=100.0) == {}
