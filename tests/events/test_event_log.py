from __future__ import annotations

import logging

import pytest
from event_samples import T, endpoint, samples

from routr.events import (
    Bus,
    CallEnded,
    EndpointRegistered,
    EndpointUnregistered,
    Event,
    describe,
    level_of,
    log_event,
    log_events,
)

LINES = {
    "endpoint.registered": "endpoint.registered sip:1001@sip.local -> sip:1001@10.0.0.5:5060 "
    "(registered)",
    "endpoint.unregistered": "endpoint.unregistered sip:1001@sip.local -> "
    "sip:1001@10.0.0.5:5060 (replaced)",
    "endpoint.expired": "endpoint.expired sip:1001@sip.local -> sip:1001@10.0.0.5:5060",
    "call.started": "call.started c1 sip:1001@sip.local -> tel:+17853178070 (DOMAIN_EGRESS) "
    "via gateway gw-1",
    "call.answered": "call.answered c1 200",
    "call.ended": "call.ended c1 normal (BYE) after 62 s",
    "gateway.registered": "gateway.registered gw-1 at sip.provider.net:5060 for 3600 s",
    "gateway.registration.failed": "gateway.registration.failed gw-1 at sip.provider.net:5060: "
    "403 Forbidden",
    "gateway.unregistered": "gateway.unregistered gw-1 at sip.provider.net:5060",
    "gateway.unregistration.failed": "gateway.unregistration.failed gw-1 at "
    "sip.provider.net:5060: timeout",
    "security.banned": "security.banned 1.2.3.4 for 300 s: flood",
    "resource.created": "resource.created Agent ag-1 (John Doe)",
    "resource.updated": "resource.updated Agent ag-1 (John Doe)",
    "resource.deleted": "resource.deleted Agent ag-1",
    "config.reloaded": "config.reloaded from files:config: 2 Agent, 1 Domain",
}


def test_every_event_has_its_line(event: Event) -> None:
    assert describe(event) == LINES[event.name]


def test_a_call_never_answered() -> None:
    ended = CallEnded(timestamp=T, call_id="c2", cause="busy", status="486", duration=0,
                      answered=False)  # fmt: skip
    assert describe(ended) == "call.ended c2 busy (486), not answered"


def test_levels() -> None:
    levels = {e.name: level_of(e.name) for e in samples()}
    assert {n for n, lv in levels.items() if lv == logging.DEBUG} == {
        "endpoint.registered", "endpoint.unregistered", "endpoint.expired",
        "call.started", "call.answered", "call.ended",
    }  # fmt: skip
    assert {n for n, lv in levels.items() if lv == logging.WARNING} == {"security.banned"}
    assert all(lv == logging.INFO for n, lv in levels.items() if n.split(".")[0] in
               {"gateway", "resource", "config"})  # fmt: skip


def test_the_log_subscriber_logs_one_line_per_event(caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()
    log_events(bus)
    with caplog.at_level(logging.DEBUG, logger="routr.events"):
        for event in samples():
            bus.emit(event)
    assert [r.getMessage() for r in caplog.records] == [LINES[e.name] for e in samples()]
    assert {r.levelno for r in caplog.records if r.getMessage().startswith("security.")} == {
        logging.WARNING
    }


def test_a_disabled_level_builds_no_text(monkeypatch: pytest.MonkeyPatch) -> None:
    logger = logging.getLogger("test.events.quiet")
    logger.setLevel(logging.INFO)
    called: list[Event] = []

    def spy(event: Event) -> str:
        called.append(event)
        return ""

    monkeypatch.setattr("routr.events.log.describe", spy)
    log_event(endpoint(EndpointRegistered), logger)
    assert called == []


def test_a_given_logger_and_kinds(caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()
    log_events(bus, "endpoint.", logging.getLogger("test.events.mine"))
    with caplog.at_level(logging.DEBUG, logger="test.events.mine"):
        bus.emit(endpoint(EndpointUnregistered, "unregistered"))
        for event in samples():
            if not event.name.startswith("endpoint."):
                bus.emit(event)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("test.events.mine", "endpoint.unregistered sip:1001@sip.local -> "
         "sip:1001@10.0.0.5:5060 (unregistered)")
    ]  # fmt: skip
