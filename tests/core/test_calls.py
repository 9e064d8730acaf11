"""The call record: states, events, Peer binding counts and affinity, on a fake clock."""

from __future__ import annotations

import pytest

from routr.core.calls import Calls, hangup_cause
from routr.events import CallAnswered, CallEnded, CallStarted, Event

BINDING = ("sip:ast@pbx", "sip:ast@10.0.0.2:5060")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def calls(clock: Clock, events: list[Event]) -> Calls:
    return Calls(clock, events.append, pending_ttl=10, call_ttl=100, affinity_ttl=5)


def _start(calls: Calls, call_id: str = "c1", binding: tuple[str, str] | None = BINDING) -> None:
    calls.start(call_id, from_uri="sip:1001@sip.local", to_uri="sip:+15551234@sip.local",
                strategy="DOMAIN_EGRESS", caller_ref="ag-1001", gateway_ref="gw-1",
                binding=binding)  # fmt: skip


def test_answered_then_hung_up(calls: Calls, clock: Clock, events: list[Event]) -> None:
    _start(calls)
    assert calls.count(*BINDING) == 1
    clock.now += 2
    calls.on_final("c1", 200)
    clock.now += 30
    calls.on_bye_answered("c1", 100)  # not final yet
    assert len(calls) == 1
    calls.on_bye_answered("c1", 200)
    assert [type(e) for e in events] == [CallStarted, CallAnswered, CallEnded]
    started, ended = events[0], events[2]
    assert isinstance(started, CallStarted) and started.strategy == "DOMAIN_EGRESS"
    assert started.gateway_ref == "gw-1" and started.caller_ref == "ag-1001"
    assert isinstance(ended, CallEnded)
    assert (ended.cause, ended.status, ended.duration, ended.answered) == (
        "hangup",
        "BYE",
        30,
        True,
    )
    assert calls.count(*BINDING) == 0 and len(calls) == 0
    assert [c.call_id for c in calls.recent()] == ["c1"]
    assert calls.recent()[0].to_dict(clock.now)["duration"] == 30


@pytest.mark.parametrize(
    ("status", "cause", "word"),
    [(486, "busy", "486"), (487, "cancelled", "CANCEL"), (408, "no-answer", "408"),
     (503, "failed", "503"), (403, "rejected", "403")],
)  # fmt: skip
def test_unanswered_calls_end_with_their_cause(
    calls: Calls, events: list[Event], status: int, cause: str, word: str
) -> None:
    _start(calls)
    calls.on_final("c1", status)
    ended = events[-1]
    assert isinstance(ended, CallEnded)
    assert (ended.cause, ended.status, ended.duration, ended.answered) == (cause, word, 0, False)
    assert calls.count(*BINDING) == 0


def test_affinity_outlives_the_call_for_a_while(calls: Calls, clock: Clock) -> None:
    _start(calls)
    assert calls.affinity("c1", BINDING[0]) == BINDING[1]
    assert calls.affinity("c1", "sip:other@pbx") is None
    calls.on_final("c1", 486)
    assert calls.affinity("c1", BINDING[0]) == BINDING[1]
    clock.now += 6
    assert calls.affinity("c1", BINDING[0]) is None
    calls.remember("m1", BINDING)  # a MESSAGE: affinity, no call
    assert calls.affinity("m1", BINDING[0]) == BINDING[1] and len(calls) == 0


def test_lost_answers_expire(calls: Calls, clock: Clock, events: list[Event]) -> None:
    _start(calls, "ringing")
    _start(calls, "up", binding=None)
    calls.on_final("up", 200)
    clock.now += 11  # past pending_ttl: the ringing one lost its final
    assert [c.call_id for c in calls.in_progress()] == ["up"]
    clock.now += 100  # past call_ttl: its BYE never passed here
    assert calls.in_progress() == []
    assert [e.cause for e in events if isinstance(e, CallEnded)] == ["expired", "expired"]
    assert calls.count(*BINDING) == 0


def test_a_repeated_invite_is_the_same_call(calls: Calls, events: list[Event]) -> None:
    _start(calls)
    _start(calls)
    assert len(calls) == 1 and calls.count(*BINDING) == 1
    assert sum(isinstance(e, CallStarted) for e in events) == 1


def test_causes() -> None:
    assert hangup_cause(600) == "busy" and hangup_cause(599) == "failed"
    assert hangup_cause(415) == "rejected"


def test_a_bye_answered_481_ends_the_call_too(calls: Calls, events: list[Event]) -> None:
    _start(calls)
    calls.on_final("c1", 200)
    calls.on_bye_answered("c1", 481)  # the dialog is forgotten: so is the call
    ended = events[-1]
    assert isinstance(ended, CallEnded) and (ended.cause, ended.status) == ("bye-failed", "481")
    assert calls.count(*BINDING) == 0
