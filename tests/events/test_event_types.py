from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest
from event_samples import samples

from routr.events import (
    EVENT_TYPES,
    CallEnded,
    CallStarted,
    ConfigReloaded,
    EndpointRegistered,
    Event,
    ResourceCreated,
    SecurityBanned,
    iso_timestamp,
)

SPEC_SUBJECTS = {
    "endpoint.registered", "endpoint.unregistered", "endpoint.expired", "call.started",
    "call.answered", "call.ended", "gateway.registered", "gateway.registration.failed",
    "security.banned", "resource.created", "resource.updated", "resource.deleted",
    "config.reloaded",
}  # fmt: skip
CAMEL = re.compile(r"^[a-z]+([A-Z][a-z]*)*$")


def test_every_spec_subject_has_a_type_and_every_type_a_sample() -> None:
    assert set(EVENT_TYPES) >= SPEC_SUBJECTS
    assert {type(e) for e in samples()} == set(EVENT_TYPES.values())
    for name, cls in EVENT_TYPES.items():
        assert cls.name == name


def test_to_dict_has_event_node_iso_timestamp_and_camel_case_keys(event: Event) -> None:
    body = event.to_dict("node-a")
    assert body["event"] == event.name
    assert body["node"] == "node-a"
    assert body["timestamp"] == "2024-05-01T12:00:00.123Z"
    assert all(CAMEL.match(key) for key in body), body
    fields = {f.name for f in dataclasses.fields(event)} - {"timestamp"}
    assert len(body) == len(fields) + 3
    json.dumps(body)  # a JSON body as is


def test_node_defaults_to_none(event: Event) -> None:
    assert event.to_dict()["node"] is None


def test_field_names_become_routr_style_keys() -> None:
    started, ended = (e for e in samples() if isinstance(e, CallStarted | CallEnded))
    assert started.to_dict() == {
        "event": "call.started", "node": None, "timestamp": "2024-05-01T12:00:00.123Z",
        "callId": "c1", "fromUri": "sip:1001@sip.local", "toUri": "tel:+17853178070",
        "callerRef": "ag-1", "calleeRef": "dn-1", "strategy": "DOMAIN_EGRESS",
        "gatewayRef": "gw-1", "peerRef": None,
    }  # fmt: skip
    assert ended.to_dict()["duration"] == 61.5 and ended.to_dict()["answered"] is True
    endpoint = next(e for e in samples() if isinstance(e, EndpointRegistered))
    assert endpoint.to_dict()["userAgent"] == "baresip"


def test_a_resource_name_is_name_in_json() -> None:
    body = ResourceCreated(timestamp=0, kind="Agent", ref="a", name_="John").to_dict()
    assert body["name"] == "John" and body["event"] == "resource.created"


def test_counts_are_a_plain_dict_copy() -> None:
    from types import MappingProxyType

    counts: dict[str, int] = {"Agent": 1}
    body = ConfigReloaded(timestamp=0, counts=MappingProxyType(counts), source="x").to_dict()
    assert type(body["counts"]) is dict and body["counts"] == {"Agent": 1}


def test_events_are_frozen_slotted_keyword_only_records() -> None:
    ban = SecurityBanned(timestamp=1.0, ip="1.2.3.4", reason="flood", seconds=300)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ban.ip = "5.6.7.8"  # type: ignore[misc]
    assert not hasattr(ban, "__dict__")
    positional: Any = SecurityBanned
    with pytest.raises(TypeError):
        positional(1.0, "1.2.3.4", "flood", 300)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1714564800.5, "2024-05-01T12:00:00.500Z"),
        (1714564800.9999, "2024-05-01T12:00:00.999Z"),  # truncated, never rounded up
    ],
)
def test_iso_timestamp(seconds: float, text: str) -> None:
    assert iso_timestamp(seconds) == text
