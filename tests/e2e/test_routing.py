"""The routing table end to end (GitHub issue 7), Routr v1's own test plan, real sockets.

Domains ``sip.local`` (egress to gateway ``gw-a``) and ``sip.other``. Gateways are local
sockets on 127.0.0.x (a scripted UA or SIPp) whose address and port are the Gateway
resource: nothing is ever sent off loopback. Agents' bindings come from REGISTERs made
from the UA that plays the endpoint, so routr sends to that UA.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.data import agent, domain, gateway, number, peer, write_resources
from support.server import RoutrProcess
from support.sip import UdpClient, register
from support.sipp import SCENARIOS, sipp_binary
from support.ua import UA, Call, final_response, is_request

from routr.sip.digest import parse_credentials

DOMAIN = "sip.local"
SECRET = "s3cret"
NOAUTH = {"security": {"authenticateRequests": False}}
GW_IP = "127.0.0.7"  # the gateway UA's address
PSTN = "+17065551234"
LEAST = {"algorithm": "least-sessions"}
CHALLENGE = 'Digest realm="provider", nonce="abc", qop="auth"'


def free_port(kind: int = socket.SOCK_DGRAM, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class World:
    """The gateway UA and the resources, written before routr starts."""

    def __init__(self, tmp_path: Path, gw_host: str = GW_IP, gw_port: int | None = None,
                 **gw_spec: Any) -> None:  # fmt: skip
        self.gw = UA("udp", gw_host) if gw_port is None else None
        port = gw_port if gw_port is not None else self.gw.port  # type: ignore[union-attr]
        self.gw_addr = (gw_host, port)
        gw_spec.setdefault("credentials", {"username": "pbx-1", "secret": "gwpass"})
        self.data = write_resources(
            tmp_path / "data",
            domain(DOMAIN, egress=[(r"\+?1?[2-9]\d{9}", "dd-pstn")]),
            domain("sip.other"),
            agent("1001", SECRET, [DOMAIN]),
            agent("1002", SECRET, [DOMAIN]),
            agent("1003", SECRET, [DOMAIN], privacy="Private"),
            agent("2001", SECRET, ["sip.other"]),
            peer("rrpeer", SECRET, device=DOMAIN, ex_maxContact=3),
            peer(
                "lspeer",
                SECRET,
                device=DOMAIN,
                ex_maxContact=3,
                loadBalancing=LEAST,
            ),
            gateway("gw-a", gw_host, port, **gw_spec),
            number("dd-pstn", "tel:+17066041487", "gw-a", f"sip:1001@{DOMAIN}"),
            number("dd-lonely", "tel:+17066040000", "gw-a", f"sip:1002@{DOMAIN}"),
        )


@pytest.fixture
def uas() -> Iterator[Callable[..., UA]]:
    made: list[UA] = []

    def factory(host: str = "127.0.0.1") -> UA:
        made.append(UA("udp", host))
        return made[-1]

    yield factory
    for one in made:
        one.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    if w.gw is not None:
        w.gw.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., RoutrProcess]]:
    procs: list[RoutrProcess] = []

    def factory(data: Path, spec: dict[str, Any] | None = None) -> RoutrProcess:
        workdir = tmp_path / f"routr{len(procs)}"
        workdir.mkdir()
        proc = RoutrProcess(workdir, ("udp",), spec, data=data).start()
        procs.append(proc)
        return proc

    yield factory
    for proc in procs:
        assert proc.stop() == 0
        proc.assert_no_tracebacks()


def sipp_uas(workdir: Path, scenario: str, port: int, *args: str) -> subprocess.Popen[str]:
    """A SIPp server for one call on 127.0.0.1:``port``, bounded in time."""
    cmd = [sipp_binary(), "-sf", str(SCENARIOS / scenario), "-t", "u1", "-i", "127.0.0.1",
           "-p", str(port), "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error",
           *args]  # fmt: skip
    out = subprocess.PIPE
    return subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, text=True)


def udp(routr: RoutrProcess) -> tuple[str, int]:
    return "127.0.0.1", routr.ports["udp"]


def bind(routr: RoutrProcess, ua: UA, user: str, realm: str = DOMAIN) -> None:
    """REGISTER the UA's contact for ``user`` from a socket whose Via is its source."""
    with UdpClient(udp(routr)) as client:
        response = register(client, user, realm, SECRET, ua.contact(user))
    assert response.status == 200, response.to_bytes()


def answer_call(ua: UA, status: int = 200, timeout: float = 5.0) -> Any:
    rx = ua.wait(is_request("INVITE"), timeout)
    ua.reply(rx, status)
    return rx


def hang_up(call: Call, callee: UA) -> None:
    call.in_dialog("ACK")
    call.in_dialog("BYE")
    bye = callee.wait(lambda m: is_request("BYE")(m) and m.call_id == call.call_id)
    callee.reply(bye, 200)
    assert call.wait(final_response("BYE")).response.status == 200


# -- INTRA_DOMAIN -------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["answered", "rejected", "cancelled"])
def test_intra_domain(start, world, uas, outcome) -> None:
    routr = start(world.data, NOAUTH)
    caller, callee = uas(), uas()
    bind(routr, callee, "1002")
    call = Call(caller, udp(routr), f"sip:1002@{DOMAIN}", f"sip:1001@{DOMAIN}")
    call.invite()
    rx = callee.wait(is_request("INVITE"))
    assert rx.request.uri_text == f"sip:1002@127.0.0.1:{callee.port}"
    if outcome == "answered":
        callee.reply(rx, 200)
        assert call.final().status == 200
        hang_up(call, callee)
    elif outcome == "rejected":
        callee.reply(rx, 486)
        assert call.final().status == 486
    else:
        callee.reply(rx, 180)
        call.cancel()
        cancel = callee.wait(is_request("CANCEL"))
        callee.reply(cancel, 200)
        callee.reply(rx, 487)
        assert call.final().status == 487


def test_inter_domain_is_403(start, world, uas) -> None:
    routr = start(world.data, NOAUTH)
    other = uas()
    bind(routr, other, "2001", "sip.other")
    call = Call(uas(), udp(routr), "sip:2001@sip.other", f"sip:1001@{DOMAIN}")
    call.invite()
    assert call.final().status == 403
    assert other.count(is_request("INVITE")) == 0


@pytest.mark.parametrize(("callee", "status"), [(f"sip:bob@{DOMAIN}", 404),
                                                ("sip:bob@example.net", 403)])  # fmt: skip
def test_egress_without_a_matching_policy(start, world, uas, callee, status) -> None:
    routr = start(world.data, NOAUTH)
    call = Call(uas(), udp(routr), callee, f"sip:1001@{DOMAIN}")
    call.invite()
    assert call.final().status == status


# -- DOMAIN_INGRESS -----------------------------------------------------------------------


def test_domain_ingress_from_a_gateway(start, world, uas) -> None:
    routr = start(world.data)  # authentication on: a gateway's address is trusted
    phone = uas()
    bind(routr, phone, "1001")
    assert world.gw is not None
    call = Call(world.gw, udp(routr), "sip:17066041487@127.0.0.1", "sip:+13055550000@pstn.net")
    call.invite()
    rx = answer_call(phone)
    assert rx.request.uri_text == f"sip:1001@127.0.0.1:{phone.port}"
    assert call.final().status == 200
    hang_up(call, phone)


def test_did_without_a_registered_aor_is_480(start, world) -> None:
    routr = start(world.data)
    assert world.gw is not None
    call = Call(world.gw, udp(routr), "tel:+17066040000", "sip:+13055550000@pstn.net")
    call.invite()
    assert call.final().status == 480


def test_a_gateway_address_on_another_port_is_not_the_gateway(start, world) -> None:
    routr = start(world.data)
    assert world.gw is not None
    frm = f"sip:1002@{DOMAIN}"  # a From in our domain: only a gateway is not challenged
    with UA("udp", GW_IP) as impostor:  # the gateway's IP, another port: anyone
        call = Call(impostor, udp(routr), "tel:+17066040000", frm)
        call.invite()
        assert call.final().status == 407
    call = Call(world.gw, udp(routr), "tel:+17066040000", frm)
    call.invite()
    assert call.final().status == 480  # trusted, routed: nobody registered


# -- DOMAIN_EGRESS ------------------------------------------------------------------------


@pytest.mark.sipp
def test_domain_egress_to_a_sipp_gateway(start, tmp_path, uas) -> None:
    port = free_port()
    sipp = sipp_uas(tmp_path, "routing_gw_uas.xml", port, "-default_behaviors", "all,-abortunexp")
    try:
        w = World(tmp_path, "127.0.0.1", port)
        routr = start(w.data, {**NOAUTH, "recordRoute": True})
        call = Call(uas(), udp(routr), f"sip:{PSTN}@{DOMAIN}", f"sip:1001@{DOMAIN}")
        call.invite()
        assert call.final(10).status == 200
        call.in_dialog("ACK")
        call.in_dialog("BYE")
        bye = call.wait(final_response("BYE"), 10).response
        out, _ = sipp.communicate(timeout=30)
        assert bye.status == 200
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.communicate()
    assert sipp.returncode == 0, out[-3000:]


def test_egress_privacy_and_identity(start, world, uas) -> None:
    routr = start(world.data, NOAUTH)
    assert world.gw is not None
    call = Call(uas(), udp(routr), f"sip:{PSTN}@{DOMAIN}", f"sip:1003@{DOMAIN}")
    call.invite()
    rx = world.gw.wait(is_request("INVITE"))
    request = rx.request
    assert request.uri_text == f"sip:{PSTN}@{GW_IP}:{world.gw.port}"
    assert request.from_.uri.user == "anonymous"  # type: ignore[union-attr]
    assert request.from_.tag == call.from_tag
    assert request.get("privacy") == "id"
    assert request.get("p-asserted-identity") == f"<sip:+17066041487@{GW_IP}>"
    world.gw.reply(rx, 486)
    assert call.final().status == 486


def test_gateway_challenge_is_answered_and_cseq_kept(start, world, uas) -> None:
    routr = start(world.data, {**NOAUTH, "recordRoute": True})  # ACK and BYE through us
    gw = world.gw
    assert gw is not None
    call = Call(uas(), udp(routr), f"sip:{PSTN}@{DOMAIN}", f"sip:1001@{DOMAIN}")
    call.invite()
    first = gw.wait(is_request("INVITE"))
    n = first.request.cseq.number
    assert n == call.cseq
    gw.reply(first, 407, headers=[("Proxy-Authenticate", CHALLENGE)])
    second = gw.wait(is_request("INVITE"))
    assert second.request.cseq.number == n + 1
    creds = parse_credentials(second.request.get("proxy-authorization") or "")
    assert (creds.username, creds.realm) == ("pbx-1", "provider")
    gw.reply(second, 200)
    final = call.final()
    assert final.status == 200 and final.cseq.number == n  # the caller's own CSeq
    call.in_dialog("ACK")
    first_branch = first.request.via.branch  # the 407's ACK came on that branch
    ack = gw.wait(lambda m: is_request("ACK")(m) and m.via.branch != first_branch)
    assert ack.request.cseq.number == n + 1  # what the gateway's dialog expects
    call.in_dialog("BYE")
    bye = gw.wait(is_request("BYE"))
    assert bye.request.cseq.number == call.cseq + 1
    gw.reply(bye, 200)
    assert call.wait(final_response("BYE")).response.cseq.number == call.cseq
    assert call.ua.count(lambda m: getattr(m, "status", 0) == 407) == 0


@pytest.mark.parametrize("invite_challenged", [False, True])
def test_gateway_challenge_in_dialog_is_answered(start, world, uas, invite_challenged) -> None:
    routr = start(world.data, {**NOAUTH, "recordRoute": True})
    gw = world.gw
    assert gw is not None
    call = Call(uas(), udp(routr), f"sip:{PSTN}@{DOMAIN}", f"sip:1001@{DOMAIN}")
    call.invite()
    rx = gw.wait(is_request("INVITE"))
    if invite_challenged:
        gw.reply(rx, 407, headers=[("Proxy-Authenticate", CHALLENGE)])
        rx = gw.wait(is_request("INVITE"))
    shift = int(invite_challenged)  # how far the gateway's CSeq is ahead of the caller's
    gw.reply(rx, 200)
    assert call.final().status == 200
    call.in_dialog("ACK")
    call.in_dialog("INFO")
    info = gw.wait(is_request("INFO"))
    assert info.request.cseq.number == call.cseq + shift
    gw.reply(info, 401, headers=[("WWW-Authenticate", CHALLENGE)])
    again = gw.wait(is_request("INFO"))
    shift += 1
    assert again.request.cseq.number == call.cseq + shift
    creds = parse_credentials(again.request.get("authorization") or "")
    assert (creds.username, creds.realm, creds.uri) == ("pbx-1", "provider", again.request.uri_text)
    gw.reply(again, 200)
    assert call.wait(final_response("INFO")).response.cseq.number == call.cseq
    call.in_dialog("BYE")  # after the answered challenge: the same mapping
    bye = gw.wait(is_request("BYE"))
    assert bye.request.cseq.number == call.cseq + shift
    gw.reply(bye, 407, headers=[("Proxy-Authenticate", CHALLENGE)])
    bye = gw.wait(is_request("BYE"))
    assert bye.request.has("proxy-authorization")
    assert bye.request.cseq.number == call.cseq + shift + 1
    gw.reply(bye, 200)
    ok = call.wait(final_response("BYE")).response
    assert ok.status == 200 and ok.cseq.number == call.cseq
    assert call.ua.count(lambda m: getattr(m, "status", 0) in (401, 407)) == 0


def test_in_dialog_challenge_of_a_non_gateway_goes_to_the_caller(start, world, uas) -> None:
    routr = start(world.data, {**NOAUTH, "recordRoute": True})
    caller, callee = uas(), uas()
    bind(routr, callee, "1002")
    call = Call(caller, udp(routr), f"sip:1002@{DOMAIN}", f"sip:1001@{DOMAIN}")
    call.invite()
    answer_call(callee)
    assert call.final().status == 200
    call.in_dialog("ACK")
    call.in_dialog("BYE")
    bye = callee.wait(is_request("BYE"))
    callee.reply(bye, 401, headers=[("WWW-Authenticate", CHALLENGE)])
    response = call.wait(final_response("BYE")).response
    assert response.status == 401 and response.cseq.number == call.cseq
    assert callee.count(is_request("BYE")) == 1


# -- PEER_EGRESS --------------------------------------------------------------------------


def test_peer_egress(start, world, uas) -> None:
    routr = start(world.data, NOAUTH)
    pbx = uas()
    bind(routr, pbx, "rrpeer", "peers.net")
    assert world.gw is not None
    call = Call(pbx, udp(routr), f"sip:{PSTN}@127.0.0.1", f"sip:rrpeer@{DOMAIN}",
                extra=[("X-DOD-Number", "+17066041487")])  # fmt: skip
    call.invite()
    rx = answer_call(world.gw)
    assert rx.request.uri_text == f"sip:{PSTN}@{GW_IP}:{world.gw.port}"
    assert rx.request.get("x-dod-number") is None
    assert rx.request.get("p-asserted-identity") == f"<sip:+17066041487@{GW_IP}>"
    assert call.final().status == 200
    hang_up(call, world.gw)


# -- Peers with several bindings ----------------------------------------------------------


def _peer_bindings(routr: RoutrProcess, uas: Callable[..., UA], user: str) -> list[UA]:
    phones = [uas() for _ in range(3)]
    for phone in phones:
        with UdpClient(udp(routr)) as client:
            response = register(client, user, "peers.net", SECRET, phone.contact(user))
        assert response.status == 200
    return phones


def test_round_robin_across_three_bindings(start, world, uas) -> None:
    routr = start(world.data, NOAUTH)
    phones = _peer_bindings(routr, uas, "rrpeer")
    caller = uas()
    for _ in range(6):
        call = Call(caller, udp(routr), f"sip:rrpeer@{DOMAIN}", f"sip:1001@{DOMAIN}")
        call.invite()
        deadline = time.monotonic() + 5
        while call.ua.count(lambda m, c=call: getattr(m, "call_id", "") == c.call_id
                            and getattr(m, "status", 0) >= 200) == 0:  # fmt: skip
            for phone in phones:
                for rx in phone.all(is_request("INVITE")):
                    if rx.request.call_id == call.call_id:
                        phone.reply(rx, 486)
            assert time.monotonic() < deadline
            time.sleep(0.02)
    counts = [p.count(is_request("INVITE")) for p in phones]
    assert counts == [2, 2, 2]


def test_least_sessions(start, world, uas) -> None:
    routr = start(world.data, NOAUTH)
    phones = _peer_bindings(routr, uas, "lspeer")
    caller = uas()

    def place() -> tuple[Call, UA]:
        call = Call(caller, udp(routr), f"sip:lspeer@{DOMAIN}", f"sip:1001@{DOMAIN}")
        call.invite()
        deadline = time.monotonic() + 5
        while True:
            for phone in phones:
                for rx in phone.all(is_request("INVITE")):
                    if rx.request.call_id == call.call_id:
                        phone.wait(lambda m, c=call: is_request("INVITE")(m)
                                   and m.call_id == c.call_id)  # fmt: skip
                        phone.reply(rx, 200)
                        assert call.final().status == 200
                        call.in_dialog("ACK")
                        return call, phone
            assert time.monotonic() < deadline
            time.sleep(0.02)

    first, second, third = place(), place(), place()
    assert len({id(first[1]), id(second[1]), id(third[1])}) == 3  # one call each
    hang_up(*first)  # the first phone is free again: it gets the next call
    fourth = place()
    assert fourth[1] is first[1]
    fifth = place()  # one call each: any phone takes a second one
    open_calls = [second, third, fourth]
    freed = next(c for c in open_calls if c[1] is not fifth[1])
    hang_up(*freed)  # that phone has no call now: it gets the next one
    sixth = place()
    assert sixth[1] is freed[1]
    for call, phone in [c for c in open_calls if c is not freed] + [fifth, sixth]:
        hang_up(call, phone)


# -- outbound registration ----------------------------------------------------------------


@pytest.mark.sipp
def test_outbound_registration_against_a_challenging_registrar(start, tmp_path) -> None:
    port = free_port()
    sipp = sipp_uas(tmp_path, "routing_registrar.xml", port)
    try:
        w = World(tmp_path, "127.0.0.1", port, sendRegister=True, expires=60)
        routr = start(w.data)
        routr.wait_for("gateway.registration.failed gw-a", 10)  # the 503
        routr.wait_for("gateway.registered gw-a at", 10)  # retried after back-off
        out, _ = sipp.communicate(timeout=30)  # SIPp ends after the refresh's 200
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.communicate()
    assert sipp.returncode == 0, out[-3000:]
    routr.wait_for("for 60 s", 5)  # the refresh's 200 may be logged after SIPp ended
    registered = [line for line in routr.lines if "gateway.registered gw-a at" in line]
    assert len(registered) == 2, routr.lines  # registered, then refreshed before 2 s
    assert "for 2 s" in registered[0] and "for 60 s" in registered[1]


@pytest.mark.sipp
@pytest.mark.parametrize("how", ["server stops", "gateway removed"])
def test_unregister_when_the_gateway_goes_away(start, tmp_path, how) -> None:
    port = free_port()
    sipp = sipp_uas(tmp_path, "routing_unregister.xml", port, "-trace_msg")
    try:
        w = World(tmp_path, "127.0.0.1", port, sendRegister=True, expires=60)
        routr = start(w.data)
        routr.wait_for("gateway.registered gw-a at", 10)
        if how == "server stops":
            began = time.monotonic()
            assert routr.stop() == 0
            assert time.monotonic() - began < 5
        else:
            (w.data / "gateways.yml").write_text("[]\n")  # a hand edit: the poller sees it
        routr.wait_for("gateway.unregistered gw-a", 10)
        out, _ = sipp.communicate(timeout=30)
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.communicate()
    assert sipp.returncode == 0, out[-3000:]
    log = next(tmp_path.glob("routing_unregister_*_messages.log")).read_text()
    registers = [m for m in log.split("\n---") if "\nREGISTER sip:" in m]
    contacts = {re.search(r"^Contact: *(.+?)\s*$", m, re.MULTILINE)[1] for m in registers}  # type: ignore[index]
    assert len(registers) == 4 and len(contacts) == 1, log  # un-REGISTERed as registered


def test_stop_waits_for_an_unanswered_unregister_two_seconds_at_most(start, tmp_path) -> None:
    w = World(tmp_path, sendRegister=True, expires=60)
    registrar = w.gw
    assert registrar is not None
    try:
        routr = start(w.data)
        rx = registrar.wait(is_request("REGISTER"), 10)
        registrar.reply(rx, 200, headers=[("Expires", "60")])
        routr.wait_for("gateway.registered gw-a at", 5)
        began = time.monotonic()
        assert routr.stop() == 0
        took = time.monotonic() - began
        bye = registrar.wait(is_request("REGISTER"), 1).request  # seen, never answered
        assert bye.get("expires") == "0" and bye.get("contact") == rx.request.get("contact")
        assert 1.5 < took < 4.5, took
        routr.wait_for("1 gateway un-registration(s) unanswered", 1)
    finally:
        registrar.close()
