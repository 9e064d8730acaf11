"""Outbound registration (sans-IO) and answering a gateway's challenge, without a network."""

from __future__ import annotations

from typing import Any

from support.data import gateway

from routr.core.gateways import CSeqShifts, Registration, authorize
from routr.models.resources import Gateway
from routr.sip.digest import build_challenge, parse_credentials
from routr.sip.message import Request, Response, make_request

VIA = ("udp", "10.0.0.1", 5060)


def gw(**spec: Any) -> Gateway:
    spec.setdefault("credentials", {"username": "pbx-1", "secret": "s3cret"})
    return Gateway.model_validate(gateway("gw-1", "127.0.0.7", 5080, sendRegister=True, **spec))


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
    assert follow is None and event is not None and event[0] == "gateway.registered"
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
    assert follow is None and event is not None and event[0] == "gateway.registration.failed"
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
    name, data = reg.on_timeout(32.0)
    assert name == "gateway.registration.failed" and data["reason"] == "timeout"
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
    assert event is not None and event[0] == "gateway.registered"


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
