"""Call traces of real calls through the server: order, directions, redaction, pcap, bound."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.registrar_kit import challenges
from e2e.test_routing import DOMAIN, SECRET, World, bind, hang_up, udp
from support.api import ADMIN_SECRET, Api, token
from support.binaries import missing
from support.server import RoutrProcess
from support.ua import UA, Call, is_request

from routr.sip.digest import make_credentials


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("trace")
    world = World(tmp)
    spec = {"recordRoute": True, "restService": {"port": 0}, "trace": {"calls": 3}}
    env = {"INITIAL_API_SECRET": ADMIN_SECRET}
    routr = RoutrProcess(tmp, ("udp",), spec, env=env, data=world.data).start()
    caller, callee = UA("udp"), UA("udp")
    bind(routr, callee, "1002")
    api = Api(routr.api, token(routr.api))
    yield {"routr": routr, "caller": caller, "callee": callee, "api": api, "tmp": tmp}
    api.close()
    for ua in (caller, callee):
        ua.close()
    assert world.gw is not None
    world.gw.close()
    routr.stop()
    routr.assert_no_tracebacks()


def _authenticated_call(setup: dict[str, Any]) -> Call:
    """INVITE, 407, INVITE with Proxy-Authorization, 200, ACK, BYE, 200."""
    call = Call(setup["caller"], udp(setup["routr"]), f"sip:1002@{DOMAIN}", f"sip:1001@{DOMAIN}")
    call.invite()
    challenge = call.final()
    assert challenge.status == 407
    call.ack_non_2xx()
    offered = challenges(challenge, "proxy-authenticate")[0]
    credentials = make_credentials(offered, "INVITE", call.to_uri, "1001", SECRET, "abc")
    call.cseq += 1
    call.invite([("Proxy-Authorization", credentials)])
    rx = setup["callee"].wait(lambda m: is_request("INVITE")(m) and m.call_id == call.call_id)
    setup["callee"].reply(rx, 200)
    assert call.final().status == 200
    hang_up(call, setup["callee"])
    return call


def _trace(api: Api, call_id: str) -> dict[str, Any]:
    r = api.get(f"/calls/{call_id}/trace")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def _wait_for_lines(api: Api, call_id: str, count: int) -> dict[str, Any]:
    from support.api import wait_until

    def enough() -> dict[str, Any] | None:
        trace = _trace(api, call_id)
        return trace if len(trace["messages"]) >= count else None

    found: dict[str, Any] = wait_until(enough)
    return found


def _in_order(lines: list[str], wanted: list[str]) -> bool:
    position = 0
    for line in lines:
        if position < len(wanted) and line == wanted[position]:
            position += 1
    return position == len(wanted)


def test_a_call_with_a_challenge_is_traced_in_order_with_credentials_hidden(setup) -> None:
    call = _authenticated_call(setup)
    trace = _wait_for_lines(setup["api"], call.call_id, 15)
    seen = [f"{m['direction']} {m['firstLine'].split(' SIP/2.0')[0].split(' sip:')[0]}"
            for m in trace["messages"]]  # fmt: skip
    # Each way in order; between the two, forwarding runs beside receiving (an ACK may
    # leave after the BYE behind it came in).
    arrived = ["INVITE", "ACK", "INVITE", "SIP/2.0 200 OK", "ACK", "BYE", "SIP/2.0 200 OK"]
    left = ["SIP/2.0 407 Proxy Authentication Required", "INVITE", "SIP/2.0 200 OK", "ACK",
            "BYE", "SIP/2.0 200 OK"]  # fmt: skip
    assert _in_order([x[3:] for x in seen if x.startswith("in ")], arrived), " | ".join(seen)
    assert _in_order([x[4:] for x in seen if x.startswith("out ")], left), " | ".join(seen)
    caller = f"127.0.0.1:{setup['caller'].port}"
    assert trace["messages"][0]["from"] == caller
    authorized = [m["message"] for m in trace["messages"] if "Proxy-Authorization" in m["message"]]
    assert authorized and all('response="<redacted>"' in m for m in authorized)
    assert trace["call"]["strategy"] == "INTRA_DOMAIN"
    text = setup["api"].get(f"/calls/{call.call_id}/trace", params={"format": "text"}).text
    assert text.startswith(f"call {call.call_id}") and "BYE" in text and caller in text


def test_a_cancelled_call_is_traced(setup) -> None:
    call = Call(setup["caller"], udp(setup["routr"]), f"sip:1002@{DOMAIN}", f"sip:1001@{DOMAIN}")
    call.invite()
    challenge = call.final()
    offered = challenges(challenge, "proxy-authenticate")[0]
    credentials = make_credentials(offered, "INVITE", call.to_uri, "1001", SECRET, "abc")
    call.cseq += 1
    call.invite([("Proxy-Authorization", credentials)])
    callee = setup["callee"]
    rx = callee.wait(lambda m: is_request("INVITE")(m) and m.call_id == call.call_id)
    callee.reply(rx, 180)
    call.wait(lambda m: getattr(m, "status", 0) == 180)
    call.cancel()
    cancel = callee.wait(lambda m: is_request("CANCEL")(m) and m.call_id == call.call_id)
    callee.reply(cancel, 200)
    callee.reply(rx, 487)
    assert call.final().status == 487
    trace = _wait_for_lines(setup["api"], call.call_id, 10)
    firsts = [m["firstLine"] for m in trace["messages"]]
    assert any(f.startswith("CANCEL") for f in firsts)
    assert any("487" in f for f in firsts)


def test_the_pcap_opens_in_tshark_with_the_same_messages(setup) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        missing("tshark is not installed (apt-get install tshark)")
    call = _authenticated_call(setup)
    api = setup["api"]
    trace = _wait_for_lines(api, call.call_id, 15)
    r = api.get(f"/calls/{call.call_id}/trace", params={"format": "pcap"})
    assert r.headers["content-type"] == "application/vnd.tcpdump.pcap"
    path = Path(setup["tmp"]) / "call.pcap"
    path.write_bytes(r.content)
    ports = {int(m[side].rsplit(":", 1)[1]) for m in trace["messages"] for side in ("from", "to")}
    decode = [arg for p in sorted(ports) for arg in ("-d", f"udp.port=={p},sip")]
    out = subprocess.run(
        [tshark, "-r", str(path), *decode, "-T", "fields", "-e", "sip.Request-Line",
         "-e", "sip.Status-Line"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    assert lines == [m["firstLine"] for m in trace["messages"]][: len(lines)]
    assert len(lines) == len(trace["messages"])
    assert b"<redacted>" in r.content


def test_the_ring_keeps_the_last_calls_only(setup) -> None:
    calls = [_authenticated_call(setup).call_id for _ in range(4)]
    api = setup["api"]
    assert api.get(f"/calls/{calls[0]}/trace").status_code == 404
    for call_id in calls[1:]:
        assert api.get(f"/calls/{call_id}/trace").status_code == 200
    assert "no trace" in api.get("/calls/unknown/trace").json()["reason"]
