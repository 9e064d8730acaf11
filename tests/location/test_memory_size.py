"""MemoryStore keeps its size as a counter: ``len()`` is on the add path (heap compaction),
so it must be O(1) and stay right through adds, refreshes, removals, sweeps and evictions."""

from __future__ import annotations

import time

from routr.location import Binding, MemoryStore

NOW = 1_000_000.0


def _binding(aor: str, contact: str, expires_at: float, cseq: int = 1) -> Binding:
    return Binding(aor, contact, source_ip="127.0.0.1", source_port=5060, transport="udp",
                   expires_at=expires_at, registered_on=NOW, call_id="c", cseq=cseq)  # fmt: skip


async def test_len_follows_every_change():
    store = MemoryStore()
    for n in range(5):
        await store.add(_binding(f"sip:{n}@d", f"sip:{n}@h", NOW + 10 + n), NOW)
    await store.add(_binding("sip:0@d", "sip:0b@h", NOW + 100), NOW)
    await store.add(_binding("sip:0@d", "sip:0b@h", NOW + 200, cseq=2), NOW)  # refresh
    assert len(store) == 6
    await store.remove("sip:1@d", "sip:1@h")
    await store.remove("sip:1@d", "sip:1@h")  # already gone
    assert len(store) == 5
    assert len(await store.remove_all("sip:0@d")) == 2
    assert len(store) == 3
    assert len(await store.sweep(NOW + 13)) == 2  # 2 and 3 expired
    assert len(store) == 1
    assert await store.evict_all() == 1
    assert len(store) == 0


async def test_adding_many_bindings_stays_linear():
    store = MemoryStore()
    start = time.perf_counter()
    for n in range(20_000):
        await store.add(_binding(f"sip:{n}@d", f"sip:{n}@h", NOW + 60), NOW)
    # Quadratic (len() summing every AOR on each add) took tens of seconds here.
    assert time.perf_counter() - start < 5
    assert len(store) == 20_000
