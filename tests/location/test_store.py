"""The location store contract, run against the memory and the Redis store."""

from __future__ import annotations

import asyncio

import pytest
from location_helpers import RedisSpace, make_binding

from routr.location import LocationEvent, LocationStore

NOW = 1_000.0
AOR = "sip:1001@sip.local"


async def test_add_then_lookup(store: LocationStore) -> None:
    b = make_binding(user_agent="phone/1.0", path=["<sip:edge.local;lr>"], conn_id=None)
    assert await store.add(b, NOW) == "ADDED"
    [found] = await store.lookup(AOR, NOW)
    assert found == b
    assert found.user_agent == "phone/1.0" and found.path == ["<sip:edge.local;lr>"]
    assert await store.lookup("sip:nobody@sip.local", NOW) == []


async def test_upsert_is_per_aor_and_contact(store: LocationStore) -> None:
    assert await store.add(make_binding(cseq=1, call_id="c1"), NOW) == "ADDED"
    assert await store.add(make_binding(cseq=2, call_id="c1", q=0.5), NOW) == "MODIFIED"
    assert await store.add(make_binding(contact="sip:1001@127.0.0.1:5071"), NOW) == "ADDED"
    assert await store.add(make_binding(aor="sip:1001@other.local"), NOW) == "ADDED"
    bindings = await store.lookup(AOR, NOW)
    assert len(bindings) == 2
    assert {b.contact: b.q for b in bindings}["sip:1001@127.0.0.1:5070"] == 0.5


async def test_out_of_order_refresh_is_refused(store: LocationStore) -> None:
    await store.add(make_binding(call_id="c1", cseq=5, expires_at=NOW + 60), NOW)
    assert await store.add(make_binding(call_id="c1", cseq=5), NOW) == "REFUSED"
    assert await store.add(make_binding(call_id="c1", cseq=4), NOW) == "REFUSED"
    [kept] = await store.lookup(AOR, NOW)
    assert kept.cseq == 5 and kept.expires_at == NOW + 60
    # Another Call-ID (the phone rebooted) may go lower: it is a new registration.
    assert await store.add(make_binding(call_id="c2", cseq=1), NOW) == "MODIFIED"


async def test_lookup_orders_by_q_then_recency(store: LocationStore) -> None:
    await store.add(make_binding(contact="sip:a@127.0.0.1:1", q=0.5, registered_on=NOW), NOW)
    await store.add(make_binding(contact="sip:b@127.0.0.1:2", q=1.0, registered_on=NOW), NOW)
    await store.add(make_binding(contact="sip:c@127.0.0.1:3", q=1.0, registered_on=NOW + 1), NOW)
    contacts = [b.contact for b in await store.lookup(AOR, NOW)]
    assert contacts == ["sip:c@127.0.0.1:3", "sip:b@127.0.0.1:2", "sip:a@127.0.0.1:1"]


async def test_remove_and_remove_all(store: LocationStore) -> None:
    await store.add(make_binding(contact="sip:a@127.0.0.1:1"), NOW)
    await store.add(make_binding(contact="sip:b@127.0.0.1:2"), NOW)
    await store.add(make_binding(aor="sip:1002@sip.local"), NOW)
    removed = await store.remove(AOR, "sip:a@127.0.0.1:1")
    assert removed is not None and removed.contact == "sip:a@127.0.0.1:1"
    assert await store.remove(AOR, "sip:a@127.0.0.1:1") is None
    assert [b.contact for b in await store.remove_all(AOR)] == ["sip:b@127.0.0.1:2"]
    assert await store.lookup(AOR, NOW) == []
    assert await store.remove_all(AOR) == []
    assert [b.aor for b in await store.list(NOW)] == ["sip:1002@sip.local"]


async def test_list_and_evict_all(store: LocationStore) -> None:
    for i in range(5):
        await store.add(make_binding(aor=f"sip:10{i}@sip.local"), NOW)
    await store.add(make_binding(aor="sip:gone@sip.local", expires_at=NOW - 1), NOW)
    listed = await store.list(NOW)
    assert [b.aor for b in listed] == [f"sip:10{i}@sip.local" for i in range(5)]
    assert await store.evict_all() == 6
    assert await store.list(NOW) == []


async def test_expired_bindings_are_hidden_then_swept(store: LocationStore) -> None:
    await store.add(make_binding(contact="sip:a@127.0.0.1:1", expires_at=NOW + 60), NOW)
    await store.add(make_binding(contact="sip:b@127.0.0.1:2", expires_at=NOW + 120), NOW)
    # Refreshed before it expires: the old deadline must not sweep it.
    await store.add(make_binding(contact="sip:a@127.0.0.1:1", expires_at=NOW + 600), NOW + 30)
    assert len(await store.lookup(AOR, NOW + 130)) == 1  # lazily hidden, not swept yet
    assert await store.sweep(NOW + 59) == []
    swept = await store.sweep(NOW + 130)
    assert [b.contact for b in swept] == ["sip:b@127.0.0.1:2"]
    assert await store.sweep(NOW + 130) == []
    [left] = await store.lookup(AOR, NOW + 130)
    assert left.contact == "sip:a@127.0.0.1:1"
    assert [b.contact for b in await store.sweep(NOW + 600)] == ["sip:a@127.0.0.1:1"]
    assert await store.list(NOW) == []


async def test_events_reach_callbacks_and_subscriptions(store: LocationStore) -> None:
    seen: list[LocationEvent] = []
    cancel = store.on_event(seen.append)
    sub = store.subscribe()
    await store.add(make_binding(call_id="c", cseq=1, expires_at=NOW + 10), NOW)
    await store.add(make_binding(call_id="c", cseq=2, expires_at=NOW + 10), NOW)
    await store.add(make_binding(call_id="c", cseq=2), NOW)  # refused: no event
    await store.add(make_binding(contact="sip:x@127.0.0.1:9"), NOW)
    await store.remove(AOR, "sip:x@127.0.0.1:9")
    await store.sweep(NOW + 11)
    await store.add(make_binding(aor="sip:z@sip.local"), NOW)
    cancel()
    await store.evict_all()
    expected = ["ADDED", "MODIFIED", "ADDED", "DELETED", "EXPIRED", "ADDED"]
    assert [e.type for e in seen] == expected
    got = [(await asyncio.wait_for(anext(sub), 2)).type for _ in range(len(expected) + 1)]
    assert got == [*expected, "DELETED"]
    assert seen[4].binding.contact == "sip:1001@127.0.0.1:5070"
    sub.close()
    assert [e async for e in sub] == []


async def test_slow_subscription_is_cut_off(store: LocationStore) -> None:
    sub = store.subscribe(maxsize=2)
    for i in range(4):
        await store.add(make_binding(contact=f"sip:{i}@127.0.0.1:{i + 1}"), NOW)
    got = [e.type async for e in sub]
    assert got == ["ADDED", "ADDED"] and sub.overflowed


async def test_every_field_survives_the_store(store: LocationStore) -> None:
    b = make_binding(
        transport="wss", conn_id=42, local=("127.0.0.1", 5063), user_agent="ua", call_id="cid",
        cseq=7, q=0.3, path=["<sip:p1;lr>", "<sip:p2;lr>"], nat=True, kind="Agent",
        ref="ag-1", node="n1",
    )  # fmt: skip
    await store.add(b, NOW)
    [found] = await store.lookup(AOR, NOW)
    assert found.to_dict() == b.to_dict()
    assert found.next_hop() == ("wss", "127.0.0.1", 5070, 42)


# --- Redis only ---------------------------------------------------------------------------


async def test_two_redis_stores_share_bindings(redis_space: RedisSpace) -> None:
    a, b = redis_space.open(node="a"), redis_space.open(node="b")
    await a.start()
    await b.start()
    try:
        seen_by_b = b.subscribe()
        await a.add(make_binding(), NOW)
        [found] = await b.lookup(AOR, NOW)
        assert found.node == "a"
        event = await asyncio.wait_for(anext(seen_by_b), 5)
        assert (event.type, event.binding.aor) == ("ADDED", AOR)
        # One expiry, swept by both: reported once, by whoever took it.
        await b.add(make_binding(contact="sip:e@127.0.0.1:1", expires_at=NOW + 5), NOW)
        results = await asyncio.gather(a.sweep(NOW + 10), b.sweep(NOW + 10))
        assert sorted(len(r) for r in results) == [0, 1]
        await b.remove_all(AOR)
        assert await a.lookup(AOR, NOW) == []
    finally:
        await a.close()
        await b.close()


async def test_redis_key_ttl_outlives_the_binding(redis_space: RedisSpace) -> None:
    store = redis_space.open(grace=30, remote_events=False)
    await store.start()
    try:
        await store.add(make_binding(expires_at=NOW + 100), NOW)
        ttl = await store.redis.ttl(f"{redis_space.prefix}:aor:{AOR}")
        assert 100 < ttl <= 130
    finally:
        await store.close()


@pytest.mark.parametrize("bad", ["not json", '{"aor": 1}'])
async def test_redis_skips_malformed_values(redis_space: RedisSpace, bad: str) -> None:
    store = redis_space.open(remote_events=False)
    await store.start()
    try:
        await store.add(make_binding(), NOW)
        await store.redis.hset(f"{redis_space.prefix}:aor:{AOR}", "sip:bad@x", bad)  # type: ignore[misc]
        assert len(await store.lookup(AOR, NOW)) == 1
    finally:
        await store.close()


def test_open_store_factory() -> None:
    from routr.location import MemoryStore, open_store, parse_parameters
    from routr.location.redis_store import RedisStore

    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store("redis", "host=127.0.0.1,port=6379,db=11"), RedisStore)
    assert parse_parameters("host=h, port=1") == {"host": "h", "port": "1"}
    with pytest.raises(ValueError):
        open_store("etcd")
