"""Outbound registration (sans-IO) and answering a gateway's challenge, without a network."""

from __future__ import annotations

from typing import Any

import pytest
from support.data import gateway
from support.fake_io import FakeIO

from routr.core.gateway_auth import CSeqShifts, authorize, credentials_at
from routr.core.gateways import GatewayRegistry, Registration
from routr.core.routing import Hop
from routr.data.index import Index
from routr.data.snapshot import Snapshot
from routr.events import Event
from routr.models.resources import Gateway
from routr.sip.digest import build_challenge, parse_credentials
from routr.sip.message import Request, Response, make_request

VIA = ("udp", "10.0.0.1", 5060)


def gw(**spec: Any) -> Gateway:
    spec.setdefault("credentials", {"username": "pbx-1", "secret": "s3cret"})
    spec.setdefault("sendRegister", True)
    return Gateway.model_validate(gateway("gw-1", "127.0.0.7", 5080, **spec))


def answer(request: Request, status: int, headers: list[tuple[str, str]] | None = None) -> Response:
    return request.response(status, headers=headers)


def challenge(request: Request, status: int = 401) -> Response:
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    return answer(request, status, [(name, build_challenge("provider", "n1"))])


def test_register_answer_challenge_and_refresh_at_ninety_percent() -> None:
    reg = Registration(gw(expires=100), ("127.0.0.7", 5080))
    first = reg.due(0.0, VIA)
    assert first is not None and first.method == "REGISTER"
    assert first.uri_text == "sip:127.0.0.7:5080"
    assert first.get("to") == "<sip:pbx-1@127.0.0.7>"
    assert first.get("contact") == "<sip:pbx-1@10.0.0.1:5060>"
    assert first.get("expires") == "100"
    assert reg.deadline() is None  # in flight
    second, event = reg.on_response(challenge(first), 0.1)
    assert event is None and second is not None
    assert second.cseq.number == first.cseq.number + 1
    creds = parse_credentials(second.get("authorization") or "")
    assert (creds.username, creds.realm, creds.uri) == ("pbx-1", "provider", first.uri_text)
    ok = answer(second, 200, [("Contact", "<sip:pbx-1@10.0.0.1:5060>;expires=60")])
    follow, event = reg.on_response(ok, 1.0)
    assert follow is None and event is not None and event.name == "gateway.registered"
    assert reg.expires == 60 and reg.state == "registered"
    assert reg.deadline() == 1.0 + 54.0
    assert reg.status(2.0)["nextAttemptIn"] == 53
    again = reg.due(55.0, VIA)
    assert again is not None and again.call_id == first.call_id
    assert again.cseq.number > second.cseq.number


def test_a_second_challenge_is_a_failure_with_backoff() -> None:
    reg = Registration(gw(), ("127.0.0.7", 5080), retry_base=2, retry_cap=10)
    request = reg.due(0.0, VIA)
    assert request is not None
    retry, _ = reg.on_response(challenge(request, 407), 0.0)
    assert retry is not None and retry.has("proxy-authorization")
    follow, event = reg.on_response(challenge(retry, 407), 0.0)
    assert follow is None and event is not None and event.name == "gateway.registration.failed"
    assert reg.state == "failed" and reg.deadline() == 2.0
    delays = []
    for now in (2.0, 6.0, 14.0, 24.0, 34.0):
        sent = reg.due(now, VIA)
        assert sent is not None
        reg.on_response(answer(sent, 403), now)
        delays.append(reg.deadline() - now)  # type: ignore[operator]
    assert delays == [4.0, 8.0, 10.0, 10.0, 10.0]  # doubled, capped
    ok = reg.due(44.0, VIA)
    assert ok is not None
    reg.on_response(answer(ok, 200, [("Expires", "30")]), 44.0)
    assert reg.failures == 0 and reg.expires == 30


def test_timeout_is_a_failure() -> None:
    reg = Registration(gw(), ("127.0.0.7", 5080), retry_base=1)
    assert reg.due(0.0, VIA) is not None
    event = reg.on_timeout(32.0)
    assert event.name == "gateway.registration.failed" and event.reason == "timeout"
    assert event.to_dict()["registrar"] == "127.0.0.7:5080"
    assert reg.deadline() == 33.0


def test_behind_nat_the_contact_becomes_received_rport() -> None:
    reg = Registration(gw(), ("127.0.0.7", 5080))
    request = reg.due(0.0, VIA)
    assert request is not None
    request.set("via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=40000;received=1.2.3.4")
    follow, event = reg.on_response(answer(request, 200, [("Expires", "600")]), 1.0)
    assert (follow, event) == (None, None)  # not registered yet: again, at once
    assert reg.deadline() == 1.0
    again = reg.due(1.0, VIA)
    assert again is not None and again.get("contact") == "<sip:pbx-1@1.2.3.4:40000>"
    _, event = reg.on_response(answer(again, 200, [("Expires", "600")]), 1.5)
    assert event is not None and event.name == "gateway.registered"


def test_423_raises_expires() -> None:
    reg = Registration(gw(expires=30), ("127.0.0.7", 5080))
    request = reg.due(0.0, VIA)
    assert request is not None
    reg.on_response(answer(request, 423, [("Min-Expires", "120")]), 0.0)
    again = reg.due(0.0, VIA)
    assert again is not None and again.get("expires") == "120"


def test_authorize_raises_cseq_and_drops_our_via() -> None:
    sent = make_request(
        "INVITE",
        "sip:+17065551234@127.0.0.7:5080",
        [
            ("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKours"),
            ("Via", "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKcaller"),
            ("From", "<sip:1001@sip.local>;tag=a"),
            ("To", "<sip:+17065551234@sip.local>"),
            ("Call-ID", "c1"),
            ("CSeq", "7 INVITE"),
        ],
    )
    out = authorize(sent, challenge(sent, 407), ("pbx-1", "s3cret"))
    assert out is not None
    assert out.cseq.number == 8 and len(out.vias) == 1
    assert out.vias[0].branch == "z9hG4bKcaller"
    assert parse_credentials(out.get("proxy-authorization") or "").username == "pbx-1"
    assert authorize(sent, answer(sent, 407), ("pbx-1", "s3cret")) is None  # no challenge


def test_cseq_shifts_by_call_and_caller_tag() -> None:
    shifts = CSeqShifts(max_size=2)
    shifts.note("c1", "a", 1)
    request = make_request("BYE", "sip:x@y", [("From", "<sip:a@b>;tag=a"), ("Call-ID", "c1")])
    assert shifts.of(request) == 1
    other = make_request("BYE", "sip:x@y", [("From", "<sip:g@b>;tag=g"), ("Call-ID", "c1")])
    assert shifts.of(other) == 0  # the gateway's own requests have their own CSeq space
    shifts.note("c2", "a", 1)
    shifts.note("c3", "a", 1)
    assert len(shifts) == 2 and shifts.of(request) == 0  # oldest forgotten


# -- un-REGISTER --------------------------------------------------------------------------


def registered(reg: Registration, now: float = 0.0, expires: int = 600) -> Request:
    """Drive ``reg`` to registered; the REGISTER that did it."""
    request = reg.due(now, VIA)
    assert request is not None
    reg.on_response(answer(request, 200, [("Expires", str(expires))]), now)
    assert reg.state == "registered"
    return request


def test_unregister_sends_expires_zero_for_the_registered_contact() -> None:
    reg = Registration(gw(), ("127.0.0.7", 5080))
    first = registered(reg)
    bye = reg.unregister(10.0, ("udp", "10.0.0.2", 5070))  # the Via may have moved
    assert bye is not None and bye.get("expires") == "0"
    assert bye.get("contact") == first.get("contact") == "<sip:pbx-1@10.0.0.1:5060>"
    assert bye.call_id == first.call_id and bye.cseq.number == first.cseq.number + 1
    assert reg.state == "unregistering" and reg.deadline() is None
    again, event = reg.on_response(challenge(bye), 10.1)
    assert event is None and again is not None and again.get("expires") == "0"
    assert again.has("authorization") and again.cseq.number == bye.cseq.number + 1
    follow, event = reg.on_response(answer(again, 200), 10.2)
    assert follow is None and event is not None and event.name == "gateway.unregistered"
    assert reg.done and reg.state == "unregistered"
    assert reg.due(1000.0, VIA) is None  # never again


def test_unregister_a_nat_contact_and_failures() -> None:
    reg = Registration(gw(), ("127.0.0.7", 5080))
    request = reg.due(0.0, VIA)
    assert request is not None
    request.set("via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=40000;received=1.2.3.4")
    reg.on_response(answer(request, 200, [("Expires", "600")]), 0.0)
    registered(reg)
    bye = reg.unregister(1.0, VIA)
    assert bye is not None and bye.get("contact") == "<sip:pbx-1@1.2.3.4:40000>"
    _, event = reg.on_response(answer(bye, 403), 1.0)
    assert event is not None and event.name == "gateway.unregistration.failed" and reg.done
    other = Registration(gw(), ("127.0.0.7", 5080))
    registered(other)
    assert other.unregister(2.0, VIA) is not None
    event = other.on_timeout(34.0)
    assert event.name == "gateway.unregistration.failed" and event.reason == "timeout"
    assert other.done


def test_nothing_to_unregister_when_not_bound() -> None:
    never = Registration(gw(), ("127.0.0.7", 5080))
    assert never.due(0.0, VIA) is not None  # in flight, no answer yet
    assert never.unregister(1.0, VIA) is None and never.done
    expired = Registration(gw(), ("127.0.0.7", 5080))
    registered(expired, 0.0, expires=60)
    assert expired.unregister(61.0, VIA) is None and expired.done


def index_of(*gateways: Gateway) -> Index:
    return Index(Snapshot.of(list(gateways)))


def make_registry() -> tuple[GatewayRegistry, FakeIO, list[Event]]:
    """A registry over the fake I/O (our Via at ``VIA``), and the events it emits."""
    io = FakeIO(via=VIA)
    events: list[Event] = []
    registry = GatewayRegistry(io, Hop, emit=events.append)
    return registry, io, events


def reply(registry: GatewayRegistry, io: FakeIO, status: int, **kw: Any) -> Request:
    """Answer the last REGISTER sent; return it."""
    request = io.messages[-1]
    assert isinstance(request, Request)
    if status in (401, 407):
        response = challenge(request, status)
    else:
        response = answer(request, status, kw.get("headers"))
    assert registry.on_response(response)
    return request


def test_registry_unregisters_a_removed_gateway() -> None:
    registry, io, events = make_registry()
    registry.start(index_of(gw()))
    io.advance_to(0.0)
    assert len(io.messages) == 1
    reply(registry, io, 200, headers=[("Expires", "600")])
    assert [s["state"] for s in registry.status()] == ["registered"]
    io.advance_to(100.0)
    registry.sync(index_of())  # the gateway is gone from the data
    assert registry.status() == [] and registry.unregistering() == 1
    bye = io.messages[-1]
    assert bye.get("expires") == "0" and bye.get("contact") == io.messages[0].get("contact")
    reply(registry, io, 401)
    assert io.messages[-1].has("authorization") and io.messages[-1].get("expires") == "0"
    reply(registry, io, 200)
    assert registry.unregistering() == 0
    assert events[-1].name == "gateway.unregistered"
    sent = len(io.messages)
    io.advance_to(10_000.0)  # no refresh, no retry: nothing more to send
    assert len(io.messages) == sent


def test_registry_unregisters_when_sendregister_is_turned_off() -> None:
    registry, io, _ = make_registry()
    registry.start(index_of(gw()))
    io.advance_to(0.0)
    reply(registry, io, 200, headers=[("Expires", "600")])
    registry.sync(index_of(gw(sendRegister=False)))
    assert registry.status() == [] and io.messages[-1].get("expires") == "0"


def test_registry_stop_unregisters_and_close_gives_up() -> None:
    registry, io, _ = make_registry()
    second = Gateway.model_validate(
        gateway("gw-2", "127.0.0.8", 5080, sendRegister=True,
                credentials={"username": "pbx-2", "secret": "x"})
    )  # fmt: skip
    registry.start(index_of(gw(), second))
    io.advance_to(0.0)
    assert len(io.messages) == 2
    reply(registry, io, 200, headers=[("Expires", "600")])  # gw-2 registered; gw-1 pending
    registry.stop()
    assert registry.status() == []
    assert registry.unregistering() == 1  # gw-1 was still in flight: nothing bound yet
    bye = io.messages[-1]
    assert bye.get("expires") == "0" and bye.get("to") == "<sip:pbx-2@127.0.0.8>"
    io.advance_to(1.0)  # Timer E: the un-REGISTER is sent again over UDP
    assert io.messages[-1] is bye and io.messages.count(bye) > 1
    registry.close()
    assert registry.unregistering() == 0 and io.live() == 0


def test_registry_unregister_without_answer_ends_with_timer_f() -> None:
    registry, io, events = make_registry()
    registry.start(index_of(gw()))
    io.advance_to(0.0)
    reply(registry, io, 200, headers=[("Expires", "600")])
    registry.stop()
    io.advance_to(40.0)
    assert registry.unregistering() == 0
    assert events[-1].name == "gateway.unregistration.failed"


@pytest.mark.parametrize(
    ("change", "unregistered"),
    [({"expires": 120}, False), ({"credentials": {"username": "pbx-9", "secret": "s"}}, True)],
)
def test_registry_replaced_spec(change: dict[str, Any], unregistered: bool) -> None:
    registry, io, _ = make_registry()
    registry.start(index_of(gw()))
    io.advance_to(0.0)
    reply(registry, io, 200, headers=[("Expires", "600")])
    before = len(io.messages)
    registry.sync(index_of(gw(**change)))
    io.advance_to(io.t)
    fresh = [m for m in io.messages[before:] if m.get("expires") != "0"]
    gone = [m for m in io.messages[before:] if m.get("expires") == "0"]
    assert len(fresh) == 1 and len(gone) == int(unregistered)
    if unregistered:
        assert gone[0].get("to") == "<sip:pbx-1@127.0.0.7>"
        assert fresh[0].get("to") == "<sip:pbx-9@127.0.0.7>"
    assert [s["state"] for s in registry.status()] == ["registering"]


# -- in-dialog challenges: which gateway is at a hop --------------------------------------


def test_credentials_at() -> None:
    named = Gateway.model_validate(
        gateway("gw-n", "gw.example.test", None, credentials={"username": "pbx-n", "secret": "ns"})
    )
    bare = Gateway.model_validate(gateway("gw-b", "127.0.0.9", 5060))
    index = Index(Snapshot.of([gw(), named, bare]), {"gw.example.test": ["127.0.0.5"]})
    assert credentials_at(index, "127.0.0.7", 5080) == ("pbx-1", "s3cret")
    assert credentials_at(index, "127.0.0.7", 5090) is None  # its port is set: not there
    assert credentials_at(index, "127.0.0.5", 5099) == ("pbx-n", "ns")  # no port: any
    assert credentials_at(index, "GW.example.test", 5060) == ("pbx-n", "ns")
    assert credentials_at(index, "127.0.0.9", 5060) is None  # no credentials
    assert credentials_at(index, "127.0.0.1", 5060) is None
