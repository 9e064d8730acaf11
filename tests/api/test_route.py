"""``POST /route``, the dry run, against what a real call through the same server does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.test_routing import DOMAIN, NOAUTH, World, bind, udp
from support.api import ADMIN_SECRET, Api, token
from support.server import RoutrProcess
from support.ua import UA, Call, is_request


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("route")
    world = World(tmp)
    spec = {**NOAUTH, "restService": {"port": 0}}
    env = {"INITIAL_API_SECRET": ADMIN_SECRET}
    routr = RoutrProcess(tmp, ("udp",), spec, env=env, data=world.data).start()
    uas = {name: UA("udp") for name in ("phone1001", "phone1002", "phone2001", "caller", "pbx")}
    uas["stranger"] = UA("udp", "127.0.0.9")
    bind(routr, uas["phone1001"], "1001")
    bind(routr, uas["phone1002"], "1002")
    bind(routr, uas["phone2001"], "2001", "sip.other")
    bind(routr, uas["pbx"], "rrpeer", "peers.net")  # a Peer, known by the address it uses
    api = Api(routr.api, token(routr.api))
    yield {"routr": routr, "world": world, "uas": uas, "api": api}
    api.close()
    for ua in uas.values():
        ua.close()
    assert world.gw is not None
    world.gw.close()
    routr.stop()
    routr.assert_no_tracebacks()


def _ask(api: Api, frm: str, to: str, ua: UA) -> dict[str, Any]:
    r = api.post("/route", json={"from": frm, "to": to, "source": f"{ua.host}:{ua.port}"})
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()["data"]
    return answer


# (case, caller UA, From, Request-URI, strategy, the UA that receives it or the status)
ROWS = [
    ("intra-domain", "caller", f"sip:1001@{DOMAIN}", f"sip:1002@{DOMAIN}", "INTRA_DOMAIN",
     "phone1002"),
    ("domain-egress", "caller", f"sip:1001@{DOMAIN}", f"sip:+17065551234@{DOMAIN}",
     "DOMAIN_EGRESS", "gw"),
    ("ingress-from-gateway", "gw", "sip:+13055550000@pstn.net", "sip:17066041487@127.0.0.1",
     "DOMAIN_INGRESS", "phone1001"),
    ("ingress-from-a-stranger", "stranger", "sip:x@example.org", "tel:+17066041487",
     "DOMAIN_INGRESS", "phone1001"),
    ("inter-domain", "caller", f"sip:1001@{DOMAIN}", "sip:2001@sip.other", "INTER_DOMAIN", 403),
    ("no-egress-rule", "caller", f"sip:1001@{DOMAIN}", f"sip:bob@{DOMAIN}", "DOMAIN_EGRESS", 404),
    ("no-open-relay", "stranger", "sip:x@example.org", "sip:bob@example.net", "NONE", 403),
    ("agent-not-registered", "caller", f"sip:1001@{DOMAIN}", f"sip:1003@{DOMAIN}",
     "INTRA_DOMAIN", 480),
    ("number-to-another-agent", "gw", "sip:+13055550000@pstn.net", "tel:+17066040000",
     "DOMAIN_INGRESS", "phone1002"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "who", "frm", "to", "strategy", "outcome"), ROWS,
                         ids=[r[0] for r in ROWS])  # fmt: skip
def test_the_dry_run_says_what_a_real_call_then_does(
    setup: dict[str, Any], case: str, who: str, frm: str, to: str, strategy: str, outcome: Any
) -> None:
    world: World = setup["world"]
    uas: dict[str, UA] = {**setup["uas"], "gw": world.gw}
    caller = uas[who]
    answer = _ask(setup["api"], frm, to, caller)
    decision = answer["decision"]
    assert decision["strategy"] == strategy, answer
    assert answer["verdict"].startswith("INVITE from ")
    call = Call(caller, udp(setup["routr"]), to, frm)
    call.invite()
    if isinstance(outcome, int):
        assert decision["status"] == outcome and not decision["targets"]
        assert call.final().status == outcome
        return
    target = uas[outcome]
    rx = target.wait(lambda m: is_request("INVITE")(m) and m.call_id == call.call_id)
    assert [t["uri"] for t in decision["targets"]] == [rx.request.uri_text]
    target.reply(rx, 486)
    assert call.final().status == 486


def test_the_caller_and_the_matched_rule_are_explained(setup: dict[str, Any]) -> None:
    api, caller = setup["api"], setup["uas"]["caller"]
    egress = _ask(api, f"sip:1001@{DOMAIN}", f"sip:+17065551234@{DOMAIN}", caller)
    assert egress["caller"]["kind"] == "Agent" and egress["caller"]["domain"] == DOMAIN
    assert egress["decision"]["rule"] == r"\+?1?[2-9]\d{9}"
    assert egress["decision"]["gatewayRef"] == "gw-a"
    assert egress["decision"]["targets"][0]["authenticatesWith"] == "pbx-1"
    assert "egress rule" in egress["verdict"]
    world: World = setup["world"]
    assert world.gw is not None
    from_gw = _ask(api, "sip:+13055550000@pstn.net", "tel:+17066041487", world.gw)
    assert from_gw["caller"]["kind"] == "Gateway"
    stranger = _ask(api, "sip:x@example.org", "sip:bob@example.net", setup["uas"]["stranger"])
    assert stranger["caller"]["kind"] == "stranger"
    assert "403" in stranger["verdict"]


def test_a_whole_request_can_be_asked_and_bad_questions_are_400(setup: dict[str, Any]) -> None:
    api = setup["api"]
    text = (f"MESSAGE sip:1002@{DOMAIN} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\n"
            f"From: <sip:1001@{DOMAIN}>;tag=1\nTo: <sip:1002@{DOMAIN}>\nCall-ID: q1\n"
            "CSeq: 1 MESSAGE\nContent-Length: 0\n\n")  # fmt: skip
    r = api.post("/route", json={"request": text, "source": "127.0.0.1:5099"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["decision"]["strategy"] == "INTRA_DOMAIN"
    for body in ({"from": "sip:a@b"}, {"request": "not sip"}, {"from": "sip:a@b", "to": "sip:c@d",
                 "source": "not-an-ip:1"}):  # fmt: skip
        bad = api.post("/route", json=body)
        assert bad.status_code == 400, (body, bad.text)
    unknown = api.post("/route", json={"from": "sip:a@b", "to": "sip:c@d", "sauce": 1})
    assert unknown.status_code == 422


def test_authentication_that_would_be_asked_is_said(tmp_path: Path) -> None:
    world = World(tmp_path)
    env = {"INITIAL_API_SECRET": ADMIN_SECRET}
    routr = RoutrProcess(tmp_path, ("udp",), {"restService": {"port": 0}}, env=env,
                         data=world.data).start()  # fmt: skip
    try:
        api = Api(routr.api, token(routr.api))
        r = api.post("/route", json={"from": f"sip:1001@{DOMAIN}", "to": f"sip:1002@{DOMAIN}"})
        answer = r.json()["data"]
        assert answer["authentication"] == {"asked": True, "status": 407, "realm": DOMAIN}
        assert "challenged (407" in answer["verdict"]
        api.close()
    finally:
        assert world.gw is not None
        world.gw.close()
        routr.stop()


def test_a_peer_going_out_is_explained_as_the_call_then_goes(setup: dict[str, Any]) -> None:
    world: World = setup["world"]
    pbx: UA = setup["uas"]["pbx"]
    to, frm = "sip:+17065551234@127.0.0.1", f"sip:rrpeer@{DOMAIN}"
    text = (f"INVITE {to} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{pbx.port};branch=z9hG4bKp1\n"
            f"From: <{frm}>;tag=1\nTo: <{to}>\nCall-ID: peer-q\nCSeq: 1 INVITE\n"
            "X-DOD-Number: +17066041487\nContent-Length: 0\n\n")  # fmt: skip
    r = setup["api"].post("/route", json={"request": text, "source": f"127.0.0.1:{pbx.port}"})
    answer = r.json()["data"]
    assert answer["caller"]["kind"] == "Peer" and "registered from" in answer["caller"]["why"]
    decision = answer["decision"]
    assert (decision["strategy"], decision["gatewayRef"]) == ("PEER_EGRESS", "gw-a")
    call = Call(pbx, udp(setup["routr"]), to, frm, extra=[("X-DOD-Number", "+17066041487")])
    call.invite()
    assert world.gw is not None
    rx = world.gw.wait(lambda m: is_request("INVITE")(m) and m.call_id == call.call_id)
    assert [t["uri"] for t in decision["targets"]] == [rx.request.uri_text]
    world.gw.reply(rx, 486)
    assert call.final().status == 486


def test_acl_denials_are_explained_as_they_happen(tmp_path: Path) -> None:
    from support.data import agent, domain, write_resources

    data = write_resources(
        tmp_path / "data",
        domain(DOMAIN, acl={"deny": ["127.0.0.9/32"], "allow": ["0.0.0.0/0"]}),
        agent("1002", "pw", [DOMAIN]),
    )
    spec = {**NOAUTH, "restService": {"port": 0},
            "accessControlList": {"deny": ["127.0.0.10/32"], "allow": ["0.0.0.0/0"]}}  # fmt: skip
    env = {"INITIAL_API_SECRET": ADMIN_SECRET}
    routr = RoutrProcess(tmp_path, ("udp",), spec, env=env, data=data).start()
    try:
        api = Api(routr.api, token(routr.api))
        with UA("udp", "127.0.0.9") as denied_by_domain, UA("udp", "127.0.0.10") as denied:
            answer = _ask(api, "sip:x@example.org", f"sip:1002@{DOMAIN}", denied_by_domain)
            assert answer["domainAcl"] == {"domain": DOMAIN, "allowed": False}
            assert answer["decision"]["status"] == 403
            call = Call(denied_by_domain, udp(routr), f"sip:1002@{DOMAIN}", "sip:x@example.org")
            call.invite()
            assert call.final().status == 403
            globally = _ask(api, "sip:x@example.org", f"sip:1002@{DOMAIN}", denied)
            assert globally["acl"] == "denied" and "global ACL" in globally["verdict"]
            assert "decision" not in globally
            call = Call(denied, udp(routr), f"sip:1002@{DOMAIN}", "sip:x@example.org")
            call.invite()
            assert call.final().status == 403
            # what the global ACL refuses is not traced (nor kept in memory at all)
            assert api.get(f"/calls/{call.call_id}/trace").status_code == 404
        api.close()
    finally:
        routr.stop()
    routr.assert_no_tracebacks()
