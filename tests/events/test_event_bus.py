from __future__ import annotations

import asyncio
import logging

import pytest
from event_samples import T, samples

from routr.events import (
    Bus,
    CallAnswered,
    CallEnded,
    Event,
    QueueClosed,
    SecurityBanned,
)


def ban(ip: str = "1.2.3.4") -> SecurityBanned:
    return SecurityBanned(timestamp=T, ip=ip, reason="flood", seconds=300)


def answered(call_id: str = "c1") -> CallAnswered:
    return CallAnswered(timestamp=T, call_id=call_id, status=200)


# -- callbacks ------------------------------------------------------------------------------


def test_callbacks_see_every_event_in_order() -> None:
    bus, seen = Bus(), list[Event]()
    bus.subscribe(seen.append)
    events = samples()
    for event in events:
        bus.emit(event)
    assert seen == events


@pytest.mark.parametrize(
    ("kinds", "names"),
    [
        ("call.", {"call.started", "call.answered", "call.ended"}),
        ("call.ended", {"call.ended"}),
        (["security.banned", "gateway.registration."], {"security.banned",
                                                         "gateway.registration.failed"}),
        ("gateway.", {"gateway.registered", "gateway.registration.failed",
                      "gateway.unregistered", "gateway.unregistration.failed"}),
    ],
)  # fmt: skip
def test_kinds_filter_by_name_or_prefix(kinds: str | list[str], names: set[str]) -> None:
    bus, seen = Bus(), list[Event]()
    bus.subscribe(seen.append, kinds)
    queue = bus.queue(kinds=kinds)
    for event in samples():
        bus.emit(event)
    assert {e.name for e in seen} == names
    assert len(queue) == len(seen)


@pytest.mark.parametrize("kinds", ["call", "call.start", "calls.", "endpoint.registred", []])
def test_kinds_with_a_typo_are_refused(kinds: str | list[str]) -> None:
    with pytest.raises(ValueError, match="kinds"):
        Bus().subscribe(print, kinds)


def test_a_failing_callback_is_logged_once_and_stops_nobody(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus, before, after = Bus(), list[Event](), list[Event]()

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(before.append)
    sub = bus.subscribe(broken, name="broken")
    bus.subscribe(after.append)
    with caplog.at_level(logging.ERROR, logger="routr.events"):
        for _ in range(3):
            bus.emit(ban())  # does not raise
    assert len(before) == len(after) == 3
    assert sub.errors == 3
    failures = [r for r in caplog.records if "broken" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None


def test_unsubscribe_by_handle_or_context() -> None:
    bus, seen = Bus(), list[Event]()
    sub = bus.subscribe(seen.append)
    bus.emit(ban())
    sub.close()
    sub.close()  # idempotent
    bus.emit(ban())
    with bus.subscribe(seen.append):
        bus.emit(ban())
    bus.emit(ban())
    assert len(seen) == 2 and bus.subscribers == 0


def test_a_callback_closing_another_during_emit_stops_it_at_once() -> None:
    bus, seen = Bus(), list[Event]()
    second = None

    def first(event: Event) -> None:
        assert second is not None
        second.close()

    bus.subscribe(first)
    second = bus.subscribe(seen.append)
    bus.emit(ban())
    assert seen == []


def test_a_new_subscriber_sees_names_already_routed() -> None:
    bus, seen = Bus(), list[Event]()
    bus.emit(ban())  # routes security.banned to nobody
    bus.subscribe(seen.append, "security.")
    bus.emit(ban())
    assert len(seen) == 1


# -- queues without a loop ------------------------------------------------------------------


def test_emit_needs_no_running_loop() -> None:
    bus = Bus(node="n1")
    queue = bus.queue()
    bus.emit(ban())
    assert queue.get_nowait() == ban()
    assert queue.node == "n1"
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


def test_a_full_queue_drops_the_newest_and_counts() -> None:
    bus = Bus()
    watch_a, watch_b = bus.queue(2, name="watch"), bus.queue(1, name="watch")
    nats, seen = bus.queue(10, name="nats"), list[Event]()
    bus.subscribe(seen.append)
    for n in range(5):
        bus.emit(ban(f"10.0.0.{n}"))
    assert [watch_a.get_nowait() for _ in range(2)] == [ban("10.0.0.0"), ban("10.0.0.1")]
    assert (watch_a.dropped, watch_b.dropped, nats.dropped) == (3, 4, 0)
    assert len(seen) == 5 and len(nats) == 5  # the others were not held up
    watch_a.close()
    bus.emit(ban())
    assert bus.dropped == {"watch": 8}  # totals outlive a closed queue


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Bus().queue(0)


def test_a_closed_queue_yields_what_is_pending_then_ends() -> None:
    bus = Bus()
    queue = bus.queue()
    bus.emit(ban())
    queue.close()
    bus.emit(answered())  # not delivered: unsubscribed
    assert queue.get_nowait() == ban()
    with pytest.raises(QueueClosed):
        queue.get_nowait()
    assert bus.subscribers == 0


def test_bus_close_ends_queues_and_keeps_callbacks() -> None:
    bus, seen = Bus(), list[Event]()
    bus.subscribe(seen.append)
    queue = bus.queue()
    bus.close()
    bus.emit(ban())
    assert queue.closed and len(queue) == 0 and seen == [ban()]


# -- queues in asyncio ----------------------------------------------------------------------


async def test_get_waits_for_the_next_event() -> None:
    bus = Bus()
    queue = bus.queue()
    reader = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not reader.done()
    bus.emit(answered())
    assert await asyncio.wait_for(reader, 1) == answered()


async def test_async_iteration_ends_on_close() -> None:
    bus = Bus()
    queue = bus.queue(kinds="call.")

    async def read() -> list[Event]:
        return [event async for event in queue]

    reader = asyncio.create_task(read())
    await asyncio.sleep(0)
    bus.emit(answered("c1"))
    bus.emit(ban())
    bus.emit(CallEnded(timestamp=T, call_id="c1", cause="normal", status="BYE", duration=1,
                       answered=True))  # fmt: skip
    await asyncio.sleep(0)
    queue.close()
    got = await asyncio.wait_for(reader, 1)
    assert [e.name for e in got] == ["call.answered", "call.ended"]
    with pytest.raises(QueueClosed):
        await queue.get()


async def test_async_with_closes() -> None:
    bus = Bus()
    async with bus.queue() as queue:
        bus.emit(ban())
        assert await queue.get() == ban()
    assert queue.closed and bus.subscribers == 0


async def test_a_cancelled_reader_does_not_strand_events() -> None:
    bus = Bus()
    queue = bus.queue()
    cancelled = asyncio.create_task(queue.get())
    survivor = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    bus.emit(ban())
    assert await asyncio.wait_for(survivor, 1) == ban()
    assert cancelled.cancelled()


async def test_emit_creates_no_task_and_never_waits() -> None:
    bus = Bus()
    queues = [bus.queue(maxsize=10) for _ in range(3)]
    readers = [asyncio.create_task(q.get()) for q in queues[:2]]
    await asyncio.sleep(0)
    tasks = asyncio.all_tasks()
    for _ in range(1000):  # most are dropped: the emitter goes on regardless
        bus.emit(ban())
    assert asyncio.all_tasks() == tasks
    assert all(q.dropped > 0 for q in queues)
    await asyncio.wait_for(asyncio.gather(*readers), 1)
