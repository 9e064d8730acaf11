"""The proxy core without a network: in-dialog relaying only inside recorded dialogs (no
toll fraud with a learnt Record-Route token), Timer C and CANCEL ending their client
transactions, late 2xx, strict-routing detection, outbound-proxy Routes, the loop hash.

The shared fake I/O: routr is 127.0.0.1:5060; the attacker (or caller) 127.0.0.2,
the callee 127.0.0.3:5070, a gateway 127.0.0.4.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from support.fake_io import FakeClock, FakeIO, FakeSource

from routr.core import proxy
from routr.core.dialogs import Dialogs, Side
from routr.core.proxy import Proxy
from routr.core.routing import Decision, Target
from routr.core.vias import loop_hash
from routr.sip.digest import build_challenge
from routr.sip.message import Request, make_request

CALLER_CONTACT = "<sip:att@127.0.0.2:5060>"
CALLEE_URI = "sip:1002@127.0.0.3:5070"
CALLEE2_URI = "sip:1002@127.0.0.5:5070"
GATEWAY_URI = "sip:+19005551234@127.0.0.4"


CALLER = FakeSource("127.0.0.2")
CALLEE = FakeSource("127.0.0.3", 5070)
CALLEE2 = FakeSource("127.0.0.5", 5070)


class World:
    def __init__(self, targets: tuple[str, ...] = (CALLEE_URI,), **kwargs: Any) -> None:
        self.io = FakeIO(1000.0)
        self.routed: list[str] = []

        async def router(request: Request, source: Any) -> Decision:
            self.routed.append(request.uri_text)
            if request.uri_text.startswith("sip:1002@"):
                return Decision([Target(t) for t in targets])
            return Decision.reject(403)

        kwargs.setdefault("record_route", True)
        self.proxy = Proxy(self.io, router, secret=b"k" * 32, **kwargs)

    async def request(self, request: Request, source: FakeSource) -> None:
        await self.proxy.on_request(request, source)

    def respond(
        self,
        forwarded: Request,
        status: int,
        source: FakeSource = CALLEE,
        to_tag: str = "b1",
        contact: str | None = None,
    ) -> None:
        headers = []
        if 100 < status < 300 and forwarded.method in ("INVITE", "SUBSCRIBE"):
            headers += [("Record-Route", v) for v in forwarded.get_all("record-route")]
            headers.append(("Contact", contact or f"<sip:1002@{source.ip}:{source.port}>"))
        self.proxy.on_response(forwarded.response(status, to_tag=to_tag, headers=headers), source)


def invite(
    uri: str = "sip:1002@sip.local",
    call_id: str = "c1",
    to_tag: str | None = None,
    routes: tuple[str, ...] = (),
    method: str = "INVITE",
    from_tag: str = "a1",
    branch: str = "z9hG4bK-a-1",
    source: FakeSource = CALLER,
    contact: str = CALLER_CONTACT,
    cseq: int = 1,
) -> Request:
    to = "<sip:1002@sip.local>" + (f";tag={to_tag}" if to_tag else "")
    return make_request(
        method,
        uri,
        [
            ("Via", f"SIP/2.0/UDP {source.ip}:{source.port};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:att@elsewhere.example>;tag={from_tag}"),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", contact),
            *[("Route", r) for r in routes],
        ],
    )


async def established(world: World, call_id: str = "c1") -> str:
    """Attacker calls the local AOR (unauthenticated inbound), the callee answers: the
    token of our Record-Route, as the attacker sees it in the 200."""
    await world.request(invite(call_id=call_id), CALLER)
    fwd = world.io.requests("INVITE")[-1][0]
    world.respond(fwd, 180)
    world.respond(fwd, 200)
    ok = [r for r in world.io.replies if r.status == 200][-1]
    token = re.search(r";r=([0-9a-f]+)", ok.get_all("record-route")[0])
    assert token is not None
    return token.group(1)


def own_route(token: str) -> str:
    return f"<sip:127.0.0.1:5060;lr;r={token}>"


# -- 1. no relay with a learnt Record-Route token --------------------------------------


@pytest.mark.parametrize("to_tag", ["b1", "anything"])
async def test_learnt_token_does_not_reach_a_gateway(to_tag):
    world = World()
    token = await established(world)
    sent = len(world.io.sent)
    attack = invite(GATEWAY_URI, to_tag=to_tag, routes=(own_route(token),), branch="z9hG4bK-x")
    await world.request(attack, CALLER)
    assert world.io.finals()[-1] == 403
    assert world.io.replies[-1].reason == "Dialog Not Known Here"
    assert all(h.host != "127.0.0.4" for _, h in world.io.sent[sent:])


async def test_learnt_token_with_a_next_route_to_a_gateway_is_refused():
    world = World()
    token = await established(world)
    sent = len(world.io.sent)
    attack = invite(
        GATEWAY_URI, to_tag="b1", routes=(own_route(token), "<sip:127.0.0.4;lr>"), branch="z9x"
    )
    await world.request(attack, CALLER)
    assert world.io.finals()[-1] == 403
    assert world.io.sent[sent:] == []


async def test_learnt_token_ack_to_a_gateway_is_dropped():
    world = World()
    token = await established(world)
    sent = len(world.io.sent)
    ack = invite(GATEWAY_URI, to_tag="b1", routes=(own_route(token),), method="ACK",
                 branch="z9hG4bK-ack")  # fmt: skip
    await world.request(ack, CALLER)
    assert world.io.sent[sent:] == []


async def test_in_dialog_requests_go_between_the_two_sides_only():
    world = World()
    token = await established(world)
    # The caller's ACK and re-INVITE go to the callee's Contact.
    await world.request(invite(CALLEE_URI, to_tag="b1", routes=(own_route(token),),
                               method="ACK"), CALLER)  # fmt: skip
    assert world.io.sent[-1][1].host == "127.0.0.3"
    # The callee's BYE goes to the caller's Contact (tags the other way round).
    bye = invite("sip:att@127.0.0.2:5060", from_tag="b1", to_tag="a1", routes=(own_route(token),),
                 method="BYE", source=CALLEE, branch="z9hG4bK-bye", cseq=7)  # fmt: skip
    bye.set("from", "<sip:1002@sip.local>;tag=b1")
    bye.set("to", "<sip:att@elsewhere.example>;tag=a1")
    await world.request(bye, CALLEE)
    fwd, hop = world.io.requests("BYE")[-1]
    assert (hop.host, hop.port) == ("127.0.0.2", 5060)
    # The callee may not send to the gateway either.
    await world.request(invite(GATEWAY_URI, to_tag="a1", from_tag="b1", routes=(own_route(token),),
                               method="INFO", source=CALLEE, branch="z9i"), CALLEE)  # fmt: skip
    assert world.io.finals()[-1] == 403
    # The BYE's 200 ends the dialog: the next in-dialog request is refused.
    world.proxy.on_response(fwd.response(200), CALLER)
    assert world.io.finals()[-1] == 200
    assert len(world.proxy.dialogs) == 0
    await world.request(invite(CALLEE_URI, to_tag="b1", routes=(own_route(token),),
                               method="INFO", branch="z9late", cseq=9), CALLER)  # fmt: skip
    assert world.io.finals()[-1] == 403


async def test_target_refresh_moves_the_remote_target():
    world = World()
    token = await established(world)
    reinvite = invite(CALLEE_URI, to_tag="b1", routes=(own_route(token),), branch="z9re",
                      contact="<sip:att@127.0.0.2:6000>", cseq=2)  # fmt: skip
    await world.request(reinvite, CALLER)
    fwd = world.io.requests("INVITE")[-1][0]
    assert fwd.uri_text == CALLEE_URI
    world.respond(fwd, 200, contact="<sip:1002@127.0.0.3:5080>")
    assert world.io.finals()[-1] == 200
    await world.request(invite("sip:1002@127.0.0.3:5080", to_tag="b1", routes=(own_route(token),),
                               method="INFO", branch="z9new", cseq=3), CALLER)  # fmt: skip
    assert world.io.requests("INFO")[-1][1].port == 5080
    await world.request(invite(CALLEE_URI, to_tag="b1", routes=(own_route(token),),
                               method="INFO", branch="z9old", cseq=4), CALLER)  # fmt: skip
    assert world.io.finals()[-1] == 403


async def test_early_dialog_allows_prack_and_ends_with_a_failure():
    world = World()
    await world.request(invite(), CALLER)
    fwd = world.io.requests("INVITE")[-1][0]
    world.respond(fwd, 183)
    token = re.search(r";r=([0-9a-f]+)", fwd.get_all("record-route")[0])
    assert token is not None
    route = own_route(token.group(1))
    await world.request(invite(CALLEE_URI, to_tag="b1", routes=(route,), method="PRACK",
                               branch="z9pr", cseq=2), CALLER)  # fmt: skip
    assert world.io.requests("PRACK")
    world.respond(fwd, 486)
    assert world.io.finals()[-1] == 486
    assert len(world.proxy.dialogs) == 0


def test_dialog_table_expires_and_is_bounded():
    clock = FakeClock()
    table = Dialogs(clock.now, ttl=10.0, max_dialogs=2)
    side = Side("x", ("1.1.1.1",), None)
    table.record("c1", "a", "b", side, side)
    assert table.find("c1", "b", "a") is not None  # either order
    clock.advance(11.0)
    assert table.find("c1", "a", "b") is None
    for n in range(3):
        table.record(f"k{n}", "a", "b", side, side)
    assert len(table) == 2 and table.find("k0", "a", "b") is None


# -- 2. to 4. Timer C, CANCEL, late 2xx ------------------------------------------------


async def test_timer_c_without_a_final_frees_the_client_transaction():
    world = World(timer_c=5.0)
    await world.request(invite(), CALLER)
    world.io.advance(6)
    assert world.io.finals() == [408]
    world.io.advance(6)
    assert world.proxy.branches.clients == {}


async def test_cancelled_branch_without_final_is_freed_and_cancelled_once():
    world = World(timer_c=5.0)
    await world.request(invite(), CALLER)
    fwd = world.io.requests("INVITE")[-1][0]
    world.respond(fwd, 180)
    cancel = invite(method="CANCEL")
    await world.request(cancel, CALLER)
    assert len(world.io.requests("CANCEL")) == 1
    world.io.advance(60)
    assert len(world.io.requests("CANCEL")) == 1, "Timer C sends no second CANCEL"
    assert 408 in world.io.finals() or 487 in world.io.finals()
    assert world.proxy.branches.clients == {}


async def test_2xx_after_our_408_is_forwarded_and_its_dialog_recorded():
    world = World(timer_c=5.0)
    await world.request(invite(), CALLER)
    fwd = world.io.requests("INVITE")[-1][0]
    world.respond(fwd, 180)
    world.io.advance(6)  # CANCEL; the callee does not answer it
    world.io.advance(6)  # we give up
    assert world.io.finals() == [408]
    world.respond(fwd, 200)  # ... but it answers the INVITE
    assert world.io.finals() == [408, 200]
    token = re.search(r";r=([0-9a-f]+)", fwd.get_all("record-route")[0])
    assert token is not None
    await world.request(invite(CALLEE_URI, to_tag="b1", routes=(own_route(token.group(1)),),
                               method="BYE", branch="z9bye", cseq=2), CALLER)  # fmt: skip
    assert world.io.requests("BYE"), "the late 2xx made a dialog"


async def test_2xx_after_a_6xx_of_the_same_branch_is_forwarded():
    """A forking proxy downstream passes on a 200 after its 603 (its own §16.7 step 5)."""
    world = World()
    await world.request(invite(), CALLER)
    fwd = world.io.requests("INVITE")[-1][0]
    world.respond(fwd, 603, to_tag="t1")
    assert world.io.finals() == [603]
    world.respond(fwd, 200, to_tag="t2")
    assert world.io.finals() == [603, 200]
    assert world.io.replies[-1].to.tag == "t2"


async def test_our_408_after_a_gateway_challenge_has_the_callers_cseq():
    """The answer to a Gateway's 407 goes with CSeq + 1; the 408 we make when it gets no
    answer goes upstream with the caller's own CSeq, like any response of that branch."""
    io = FakeIO(1000.0)

    async def router(request: Request, source: Any) -> Decision:
        return Decision([Target(GATEWAY_URI, credentials=("pbx-1", "s3cret"))])

    gateway = Proxy(io, router, secret=b"k" * 32, timer_c=5.0)
    await gateway.on_request(invite(GATEWAY_URI, cseq=1), CALLER)
    fwd = io.requests("INVITE")[-1][0]
    challenge = [("Proxy-Authenticate", build_challenge("provider", "n1"))]
    gateway.on_response(fwd.response(407, to_tag="g1", headers=challenge), FakeSource("127.0.0.4"))
    assert io.requests("INVITE")[-1][0].cseq.number == 2
    io.advance(40)  # the gateway never answers: Timer C
    assert io.finals() == [408]
    assert {r.cseq.number for r in io.replies} == {1}


# -- 5. to 7. ---------------------------------------------------------------------------


async def test_preloaded_route_to_us_is_not_strict_routing():
    world = World(record_route=False)
    await world.request(invite("sip:1002@127.0.0.1", routes=("<sip:127.0.0.1;lr>",)), CALLER)
    assert world.routed == ["sip:1002@127.0.0.1"]


async def test_outbound_proxy_route_before_the_recorded_one():
    world = World()
    token = await established(world)
    routes = ("<sip:127.0.0.1;lr>", own_route(token))
    await world.request(invite(CALLEE_URI, to_tag="b1", routes=routes, method="BYE",
                               branch="z9ob", cseq=5), CALLER)  # fmt: skip
    assert world.io.requests("BYE"), world.io.finals()
    assert not world.io.requests("BYE")[-1][0].has("route")


async def test_tokenless_last_own_route_is_refused():
    world = World()
    token = await established(world)
    routes = (own_route(token), "<sip:127.0.0.1;lr>")
    await world.request(invite(CALLEE_URI, to_tag="b1", routes=routes, method="BYE",
                               branch="z9tl", cseq=5), CALLER)  # fmt: skip
    assert world.io.finals()[-1] == 403
    assert not world.io.requests("BYE")


async def test_loop_hash_once_per_request(monkeypatch):
    world = World(targets=(CALLEE_URI, CALLEE2_URI))
    calls = []
    monkeypatch.setattr(proxy, "loop_hash", lambda r: calls.append(1) or loop_hash(r))
    await world.request(invite(), CALLER)
    assert len(world.io.requests("INVITE")) == 2
    assert len(calls) == 1
    branches = [m.via.branch for m, _ in world.io.requests("INVITE")]
    assert branches[0].split(".")[0] == branches[1].split(".")[0]
