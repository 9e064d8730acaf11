"""The proxy end to end (GitHub issue 4): real server, real sockets, SIPp and a scripted UA.

Domain ``sip.local``: 1001 calls 1002. The callee's bindings are made by REGISTERing from a
Python UDP socket whose Via matches its source (so the binding is not ``nat`` and routr
sends to the Contact, which points at the UA or SIPp that plays the callee). All traffic
stays on 127.0.0.1; 127.0.0.99 is "another host" nobody listens on.
"""

from __future__ import annotations

import re
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.data import agent, domain, write_resources
from support.server import RoutrProcess
from support.sip import UdpClient, register
from support.sipp import SCENARIOS, run_sipp, sipp_binary
from support.ua import UA, Call, final_response, is_request, is_response

from routr.sip.digest import make_credentials, pick_challenge

DOMAIN = "sip.local"
SECRET = "s3cret"
CALLER = f"sip:1001@{DOMAIN}"
CALLEE = f"sip:1002@{DOMAIN}"
NOAUTH = {"security": {"authenticateRequests": False}}

Factory = Callable[..., RoutrProcess]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_resources(
        tmp_path / "data",
        domain(DOMAIN),
        agent("1001", SECRET, [DOMAIN]),
        agent("1002", SECRET, [DOMAIN], ex_maxContact=2),
    )


@pytest.fixture
def start(tmp_path: Path, data: Path) -> Iterator[Factory]:
    """Start routr (UDP and TCP) with the given spec; stopped and checked at teardown."""
    procs: list[RoutrProcess] = []

    def factory(spec: dict[str, Any] | None = None, name: str = "routr") -> RoutrProcess:
        workdir = tmp_path / name
        workdir.mkdir()
        proc = RoutrProcess(workdir, ("udp", "tcp"), spec, data=data).start()
        procs.append(proc)
        return proc

    yield factory
    for proc in procs:
        assert proc.stop() == 0
        proc.assert_no_tracebacks()


@pytest.fixture
def ua() -> Iterator[Callable[[str], UA]]:
    made: list[UA] = []

    def factory(transport: str = "udp") -> UA:
        made.append(UA(transport))
        return made[-1]

    yield factory
    for one in made:
        one.close()


def bind(routr: RoutrProcess, contact: str, user: str = "1002") -> None:
    """REGISTER ``contact`` for ``user`` from a socket whose Via is its source (no NAT)."""
    with UdpClient(("127.0.0.1", routr.ports["udp"])) as client:
        response = register(client, user, DOMAIN, SECRET, contact)
    assert response.status == 200, response.to_bytes()


def udp(routr: RoutrProcess) -> tuple[str, int]:
    return "127.0.0.1", routr.ports["udp"]


def tcp(routr: RoutrProcess) -> tuple[str, int]:
    return "127.0.0.1", routr.ports["tcp"]


def record_routes(message: Any) -> list[str]:
    return [v for k, _, v in message.headers if k == "record-route"]


# -- a full call with the scripted UA ---------------------------------------------------


@pytest.mark.parametrize(
    ("caller_tp", "callee_tp", "record_route"),
    [
        ("udp", "udp", True),
        ("udp", "udp", False),
        ("tcp", "tcp", True),
        ("tcp", "tcp", False),
        # Without a recorded route a UDP-only caller could not reach a TCP-only callee.
        ("udp", "tcp", True),
        ("tcp", "udp", True),
    ],
)
def test_full_call_scripted(start, ua, record_route, caller_tp, callee_tp):
    """INVITE/100/180/200/ACK/BYE/200; with recordRoute the ACK and BYE come through us
    (two Record-Routes when the transport changes, RFC 5658), without it they go direct."""
    routr = start({**NOAUTH, "recordRoute": record_route})
    caller, callee = ua(caller_tp), ua(callee_tp)
    bind(routr, callee.contact("1002"))
    proxy = udp(routr) if caller_tp == "udp" else tcp(routr)
    call = Call(caller, proxy, CALLEE, CALLER)
    call.invite()
    assert call.wait(is_response(100)).response.via.rport == caller.port or caller_tp == "tcp"
    rx = callee.wait(is_request("INVITE"))
    invite = rx.request
    assert invite.max_forwards == 69
    assert len(invite.vias) == 2
    rr = record_routes(invite)
    if not record_route:
        assert rr == []
    elif caller_tp == callee_tp:
        assert len(rr) == 1 and ";lr" in rr[0]
    else:
        # RFC 5658: the interface towards the callee on top, the caller's below.
        assert len(rr) == 2, rr
        for value, side in zip(rr, (callee_tp, caller_tp), strict=True):
            assert f":{routr.ports[side]};" in value, rr
            assert ("transport=tcp" in value) == (side == "tcp"), rr
            assert "r2=on" in value, rr
    tag = uuid.uuid4().hex[:8]
    callee.reply(rx, 180, to_tag=tag)
    assert call.wait(is_response(180)).response.to.tag == tag
    callee.reply(rx, 200, to_tag=tag)
    ok = call.final()
    assert ok.status == 200
    assert len(ok.vias) == 1
    if record_route:
        assert len(call.route_set) == (1 if caller_tp == callee_tp else 2)
    call.in_dialog("ACK")
    ack = callee.wait(is_request("ACK")).request
    assert ack.call_id == call.call_id
    assert len(ack.vias) == (2 if record_route else 1)
    call.in_dialog("BYE")
    bye_rx = callee.wait(is_request("BYE"))
    assert not bye_rx.request.routes, "our Route is popped, none is left"
    callee.reply(bye_rx, 200)
    assert call.wait(final_response("BYE")).response.status == 200


def barrier(routr: RoutrProcess, callee: UA, user: str = "1002") -> None:
    """A MESSAGE through the proxy to ``callee``, waited for: whatever routr had sent to
    the callee before (over the same socket) has arrived by then. From an outside party
    (inbound to a local AOR: no challenge)."""
    with UA() as sender:
        marker = uuid.uuid4().hex
        sender.send(
            (
                f"MESSAGE sip:{user}@{DOMAIN} SIP/2.0\r\nVia: {sender.via()}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:someone@elsewhere.example>;tag=b{marker[:6]}\r\n"
                f"To: <sip:{user}@{DOMAIN}>\r\nCall-ID: {marker}\r\nCSeq: 1 MESSAGE\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode(),
            udp(routr),
        )
        rx = callee.wait(lambda m: is_request("MESSAGE")(m) and m.call_id == marker)
        callee.reply(rx, 200)
        assert sender.wait(final_response("MESSAGE")).response.status == 200


def test_cancel_before_answer(start, ua):
    routr = start(NOAUTH)
    caller, callee = ua(), ua()
    bind(routr, callee.contact("1002"))
    call = Call(caller, udp(routr), CALLEE, CALLER)
    call.invite()
    rx = callee.wait(is_request("INVITE"))
    callee.reply(rx, 180, to_tag="c1")
    call.wait(is_response(180))
    call.cancel()
    assert call.wait(final_response("CANCEL")).response.status == 200
    cancel_rx = callee.wait(is_request("CANCEL"))
    cancel = cancel_rx.request
    assert cancel.via.branch == rx.request.via.branch, "CANCEL matches the forwarded INVITE"
    assert cancel.uri_text == rx.request.uri_text
    callee.reply(cancel_rx, 200)
    callee.reply(rx, 487, to_tag="c1")
    assert call.final().status == 487
    call.ack_non_2xx()
    ack = callee.wait(is_request("ACK")).request
    assert ack.via.branch == rx.request.via.branch, "the proxy's own ACK for the 487"


def test_cancel_waits_for_a_provisional_response(start, ua):
    """RFC 3261 §9.1: a branch that has not answered yet is cancelled once it does."""
    routr = start(NOAUTH)
    caller, callee = ua(), ua()
    bind(routr, callee.contact("1002"))
    call = Call(caller, udp(routr), CALLEE, CALLER)
    call.invite()
    rx = callee.wait(is_request("INVITE"))
    call.cancel()
    assert call.wait(final_response("CANCEL")).response.status == 200
    callee.reply(rx, 180, to_tag="c2")
    cancel_rx = callee.wait(is_request("CANCEL"))
    callee.reply(cancel_rx, 200)
    callee.reply(rx, 487, to_tag="c2")
    assert call.final().status == 487


def test_busy_callee_and_ack_absorbed_hop_by_hop(start, ua):
    routr = start(NOAUTH)
    caller, callee = ua(), ua()
    bind(routr, callee.contact("1002"))
    call = Call(caller, udp(routr), CALLEE, CALLER)
    call.invite()
    rx = callee.wait(is_request("INVITE"))
    callee.reply(rx, 486, to_tag="busy")
    response = call.final()
    assert response.status == 486
    assert response.to.tag == "busy"
    ack = callee.wait(is_request("ACK")).request
    assert ack.via.branch == rx.request.via.branch
    assert len(ack.vias) == 1, "the proxy's ACK, not the caller's"
    assert ack.cseq.number == rx.request.cseq.number
    call.ack_non_2xx()
    barrier(routr, callee)
    assert callee.count(is_request("ACK")) == 1, "the caller's ACK stops at the proxy"
    assert callee.count(is_request("INVITE")) == 1


def test_timer_c_cancels_a_ringing_branch_then_408(start, ua):
    routr = start({**NOAUTH, "proxy": {"timerC": 1}})
    caller, callee = ua(), ua()
    bind(routr, callee.contact("1002"))
    call = Call(caller, udp(routr), CALLEE, CALLER)
    call.invite()
    rx = callee.wait(is_request("INVITE"))
    callee.reply(rx, 180, to_tag="slow")
    call.wait(is_response(180))
    cancel = callee.wait(is_request("CANCEL"), timeout=10).request
    assert cancel.via.branch == rx.request.via.branch
    # This callee answers neither the CANCEL nor the INVITE: routr gives up with 408.
    assert call.final(timeout=10).status == 408


def test_timer_c_without_provisional_gives_408(start, ua):
    routr = start({**NOAUTH, "proxy": {"timerC": 1}})
    caller, callee = ua(), ua()
    bind(routr, callee.contact("1002"))
    call = Call(caller, udp(routr), CALLEE, CALLER)
    call.invite()
    callee.wait(is_request("INVITE"))
    assert call.final(timeout=10).status == 408
    assert callee.count(is_request("CANCEL")) == 0, "no CANCEL before a provisional response"


def test_fork_to_two_contacts_one_answers_other_cancelled(start, ua):
    routr = start({**NOAUTH, "recordRoute": True})
    caller, first, second = ua(), ua(), ua("tcp")
    bind(routr, first.contact("1002"))
    bind(routr, second.contact("1002"))
    call = Call(caller, udp(routr), CALLEE, CALLER)
    call.invite()
    rx1 = first.wait(is_request("INVITE"))
    rx2 = second.wait(is_request("INVITE"))
    assert rx1.request.via.branch != rx2.request.via.branch
    second.reply(rx2, 180, to_tag="two")
    first.reply(rx1, 180, to_tag="one")
    first.reply(rx1, 200, to_tag="one")
    ok = call.final()
    assert ok.status == 200 and ok.to.tag == "one"
    cancel_rx = second.wait(is_request("CANCEL"))
    assert cancel_rx.request.via.branch == rx2.request.via.branch
    second.reply(cancel_rx, 200)
    second.reply(rx2, 487, to_tag="two")
    second.wait(is_request("ACK"))
    call.in_dialog("ACK")
    first.wait(is_request("ACK"))
    call.in_dialog("BYE")
    bye = first.wait(is_request("BYE"))
    first.reply(bye, 200)
    assert call.wait(final_response("BYE")).response.status == 200
    finals = caller.all(final_response("INVITE"))
    assert [f.response.status for f in finals] == [200], "the 487 of the loser stays here"


def test_max_forwards_zero_gets_483(start, ua):
    routr = start(NOAUTH)
    caller, callee = ua(), ua()
    bind(routr, callee.contact("1002"))
    call = Call(caller, udp(routr), CALLEE, CALLER, max_forwards=0)
    call.invite()
    assert call.final().status == 483
    barrier(routr, callee)
    assert callee.count(is_request("INVITE")) == 0


def test_loop_gets_482(start, ua):
    """The callee's binding is routr itself: the request comes back unchanged (RFC 3261
    §16.3 step 4) and is refused with 482, which travels back to the caller."""
    routr = start({**NOAUTH, "useToAsAOR": True})
    caller = ua()
    bind(routr, f"<sip:1002@127.0.0.1:{routr.ports['udp']}>")
    call = Call(caller, udp(routr), CALLEE, CALLER)
    call.invite()
    assert call.final().status == 482


def test_retransmitted_invite_is_absorbed(start, ua):
    routr = start(NOAUTH)
    caller, callee = ua(), ua()
    bind(routr, callee.contact("1002"))
    call = Call(caller, udp(routr), CALLEE, CALLER)
    call.invite()
    call.wait(is_response(100))
    rx = callee.wait(is_request("INVITE"))
    callee.reply(rx, 180, to_tag="r")
    call.wait(is_response(180))
    for _ in range(3):
        call.retransmit()
        # The server transaction answers each copy with the latest provisional response.
        call.wait(is_response(180))
    callee.reply(rx, 486, to_tag="r")
    assert call.final().status == 486
    call.ack_non_2xx()
    barrier(routr, callee)
    assert callee.count(is_request("INVITE")) == 1


def test_agent_invite_is_challenged_then_accepted(start, ua):
    routr = start()
    caller, callee = ua(), ua()
    bind(routr, callee.contact("1002"))
    call = Call(caller, udp(routr), CALLEE, CALLER)
    call.invite()
    challenge = call.final()
    assert challenge.status == 407
    call.ack_non_2xx()
    picked = pick_challenge(challenge.get_all("proxy-authenticate"))
    assert picked is not None and picked.realm == DOMAIN
    creds = make_credentials(picked, "INVITE", CALLEE, "1001", SECRET, uuid.uuid4().hex[:8])
    call.cseq += 1
    call.invite([("Proxy-Authorization", creds)])
    rx = callee.wait(is_request("INVITE"))
    assert rx.request.cseq.number == call.cseq
    assert not rx.request.has("proxy-authorization"), "our credentials are consumed"
    callee.reply(rx, 200, to_tag="auth")
    assert call.final().status == 200
    call.in_dialog("ACK")
    callee.wait(is_request("ACK"))
    assert callee.count(is_request("INVITE")) == 1


def test_wrong_credentials_are_challenged_again(start, ua):
    routr = start()
    caller, callee = ua(), ua()
    bind(routr, callee.contact("1002"))
    call = Call(caller, udp(routr), CALLEE, CALLER)
    call.invite()
    picked = pick_challenge(call.final().get_all("proxy-authenticate"))
    assert picked is not None
    creds = make_credentials(picked, "INVITE", CALLEE, "1001", "wrong", uuid.uuid4().hex[:8])
    call.cseq += 1
    call.invite([("Proxy-Authorization", creds)])
    assert call.final().status == 407
    barrier(routr, callee)
    assert callee.count(is_request("INVITE")) == 0


@pytest.mark.parametrize("target", ["sip:bob@127.0.0.99:5060", "ua"])
def test_unknown_party_to_outside_domain_is_refused(start, ua, target):
    """No open relay: refused (407, as any undelivered request of a stranger), and nothing
    is sent anywhere (the UA that would be the next hop gets nothing before a later message
    that routr does send it)."""
    routr = start()
    caller, outside = ua(), ua()
    bind(routr, outside.contact("1002"))
    uri = f"sip:bob@127.0.0.1:{outside.port}" if target == "ua" else target
    call = Call(caller, udp(routr), uri, "sip:stranger@elsewhere.example")
    call.invite()
    response = call.final()
    assert response.status == 407
    with UA() as sender:
        # A preloaded Route to the outside does not help either.
        sneaky = Call(sender, udp(routr), uri, "sip:stranger@elsewhere.example")
        sneaky.invite([("Route", f"<sip:127.0.0.1:{outside.port};lr>")])
        assert sneaky.final().status == 407
    barrier(routr, outside)
    assert outside.count(is_request("INVITE")) == 0


# -- SIPp UAC -> routr -> SIPp UAS ------------------------------------------------------


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SippUas:
    """A SIPp UAS for ``calls`` calls on a port of its own, bounded in time."""

    def __init__(
        self, workdir: Path, protocol: str, calls: int, timeout: int = 20, direct: bool = False
    ) -> None:
        self.protocol = protocol
        self.port = free_port(socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM)
        self.messages = workdir / f"uas-{self.port}.log"
        mode = "u1" if protocol == "udp" else "t1"
        scenario = SCENARIOS / ("proxy_uas_direct.xml" if direct else "proxy_uas.xml")
        cmd = [sipp_binary(), "-sf", str(scenario), "-t", mode,
               "-i", "127.0.0.1", "-p", str(self.port), "-m", str(calls), "-nostdin",
               "-timeout", f"{timeout}s", "-timeout_error", "-default_behaviors",
               "all,-abortunexp", "-trace_msg", "-message_file", str(self.messages)]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.timeout = timeout

    def contact(self) -> str:
        params = ";transport=tcp" if self.protocol == "tcp" else ""
        return f"<sip:1002@127.0.0.1:{self.port}{params}>"

    def wait(self, caller_failed: bool = False) -> tuple[int, str]:
        if caller_failed:
            self.proc.terminate()  # it would wait for calls that never come
        try:
            out, _ = self.proc.communicate(timeout=self.timeout + 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return self.proc.returncode, out[-3000:]

    def received_invites(self) -> list[str]:
        """The INVITEs as SIPp logged them on receipt."""
        text = self.messages.read_text(errors="replace")
        blocks = re.split(r"\n(?=-{5,} )", text)
        return [b for b in blocks if "message received" in b and "\nINVITE sip:" in b]


@pytest.mark.sipp
@pytest.mark.parametrize(
    ("caller_tp", "callee_tp", "record_route"),
    [
        ("udp", "udp", True),
        ("udp", "udp", False),
        ("tcp", "tcp", True),
        ("udp", "tcp", True),
        ("tcp", "udp", True),
    ],
)
def test_sipp_calls_through_the_proxy(start, tmp_path, caller_tp, callee_tp, record_route):
    """SIPp UAC -> routr -> SIPp UAS, 20 calls. Without recordRoute ACK and BYE go from
    caller to callee directly (over UDP only: SIPp cannot redirect a TCP call's answers;
    test_full_call_scripted covers TCP without recordRoute)."""
    routr = start({**NOAUTH, "recordRoute": record_route})
    calls = 20
    uas = SippUas(tmp_path, callee_tp, calls, direct=not record_route)
    bind(routr, uas.contact())
    scenario = "proxy_uac.xml" if record_route else "proxy_uac_direct.xml"
    uac = run_sipp(
        scenario,
        f"127.0.0.1:{routr.ports[caller_tp]}",
        calls=calls,
        rate=20,
        transport="u1" if caller_tp == "udp" else "t1",
        timeout=20,
        cwd=tmp_path,
    )
    code, uas_out = uas.wait()
    assert uac.returncode == 0, uac.stdout[-3000:] + uac.stderr[-2000:]
    assert code == 0, uas_out
    invites = uas.received_invites()
    assert len(invites) == calls
    for invite in invites:
        rr = re.findall(r"^Record-Route:.*$", invite, flags=re.MULTILINE | re.IGNORECASE)
        entries = [e for line in rr for e in line.split(":", 1)[1].split(",")]
        expected = 0 if not record_route else (1 if caller_tp == callee_tp else 2)
        assert len(entries) == expected, invite


def test_learnt_record_route_token_does_not_relay_to_a_gateway(start, ua):
    """Toll fraud: anyone may call a local AOR and learn our Record-Route token from the
    200; an in-dialog INVITE with that token, the same Call-ID and a Request-URI at a
    gateway is refused (403), while the real dialog's BYE still goes through."""
    routr = start({"recordRoute": True})
    caller, callee, gateway = ua(), ua(), ua()
    bind(routr, callee.contact("1002"))
    call = Call(caller, udp(routr), CALLEE, "sip:stranger@elsewhere.example")
    call.invite()
    rx = callee.wait(is_request("INVITE"))
    callee.reply(rx, 200, to_tag="legit")
    assert call.final().status == 200
    call.in_dialog("ACK")
    callee.wait(is_request("ACK"))
    for to_tag in ("legit", "forged"):
        fraud = Call(caller, udp(routr), CALLEE, "sip:stranger@elsewhere.example",
                     call_id=call.call_id, from_tag=call.from_tag)  # fmt: skip
        fraud.to_tag, fraud.route_set = to_tag, call.route_set
        fraud.remote_target = f"sip:+19005551234@127.0.0.1:{gateway.port}"
        fraud.cseq = call.cseq + 10
        fraud.in_dialog("INVITE")
        cseq = fraud.cseq
        response = fraud.wait(
            lambda m, n=cseq: final_response("INVITE")(m) and m.cseq.number == n
        ).response
        assert (response.status, response.reason) == (403, "Dialog Not Known Here")
    call.in_dialog("BYE")
    bye = callee.wait(is_request("BYE"))
    callee.reply(bye, 200)
    assert call.wait(final_response("BYE")).response.status == 200
    barrier(routr, callee)
    assert gateway.count(is_request("INVITE")) == 0
