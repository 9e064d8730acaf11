"""The SIP application object, sans-IO: bytes in through ``on_data``, bytes and events out,
on the shared fake I/O and clock."""

from __future__ import annotations

import itertools

import pytest
from support.data import agent, domain
from support.fake_io import FakeIO, FakeSource

from routr.core.guard import SCANNER_HITS
from routr.core.identity import Identity
from routr.core.service import SipService
from routr.data.index import Index
from routr.data.secrets import Secrets
from routr.data.snapshot import Snapshot
from routr.events import (
    CallEnded,
    CallStarted,
    EndpointExpired,
    EndpointRegistered,
    Event,
    SecurityBanned,
)
from routr.location import MemoryStore
from routr.models import parse_resource
from routr.models.config import Config
from routr.sip.digest import make_credentials, parse_challenge
from routr.sip.message import Request, Response

PHONE = FakeSource("10.0.0.5", 5070)  # not trusted: bans apply
CALLEE = FakeSource("10.0.0.5", 5072)
RESOURCES = [
    domain("sip.local"),
    agent("1001", "1234", ["sip.local"]),
    agent("1002", "5678", ["sip.local"]),
]
INDEX = Index(Snapshot.of([parse_resource(r) for r in RESOURCES]))


class World:
    def __init__(
        self, spec: dict[str, object] | None = None, store: MemoryStore | None = None
    ) -> None:
        self.io = FakeIO(t=1_000.0)
        self.events: list[Event] = []
        self.store = store or MemoryStore(clock=self.io.now)
        config = Config.model_validate({"spec": spec or {}})
        self.sip = SipService(
            config,
            self.io,
            clock=self.io.now,
            emit=self.events.append,
            secrets=Secrets.derive(b"test master", "test"),
            index=lambda: INDEX,
            location=self.store,
            identity=Identity.of({"127.0.0.1"}, {5060}, set()),
        )

    async def feed(self, text: str, source: FakeSource = PHONE) -> Response | None:
        """Send a message in; the reply it got, if any."""
        before = len(self.io.replies)
        self.sip.on_data(text.encode(), source)
        await self.io.run_work()
        return self.io.replies[-1] if len(self.io.replies) > before else None

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


def register(user: str, port: int, call_id: str, cseq: int, auth: str = "") -> str:
    auth_line = f"Authorization: {auth}\r\n" if auth else ""
    return (
        f"REGISTER sip:sip.local SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.5:{port};branch=z9hG4bK{call_id}{cseq};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:{user}@sip.local>;tag=t{user}\r\n"
        f"To: <sip:{user}@sip.local>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{user}@10.0.0.5:{port}>\r\nExpires: 60\r\n{auth_line}"
        "Content-Length: 0\r\n\r\n"
    )


async def registered(world: World, user: str, password: str, port: int) -> None:
    phone = FakeSource("10.0.0.5", port)
    challenge = await world.feed(register(user, port, f"r{user}", 1), phone)
    assert challenge is not None and challenge.status == 401
    offered = parse_challenge(challenge.get("www-authenticate") or "")
    credentials = make_credentials(offered, "REGISTER", "sip:sip.local", user, password, "c1")
    ok = await world.feed(register(user, port, f"r{user}", 2, credentials), phone)
    assert ok is not None and ok.status == 200, ok


async def test_register_emits_endpoint_registered_and_shows_in_the_views() -> None:
    world = World()
    await registered(world, "1001", "1234", 5070)
    (event,) = world.of(EndpointRegistered)
    assert isinstance(event, EndpointRegistered)
    assert (event.aor, event.contact, event.source) == (
        "sip:1001@sip.local", "sip:1001@10.0.0.5:5070", "10.0.0.5:5070",
    )  # fmt: skip
    assert event.expires == 60 and event.timestamp == world.io.now()
    bindings = await world.sip.bindings()
    assert [b["aor"] for b in bindings] == ["sip:1001@sip.local"]
    world.io.t += 61
    await world.sip.sweep()
    assert [e.aor for e in world.of(EndpointExpired)] == ["sip:1001@sip.local"]  # type: ignore[attr-defined]


async def test_a_call_is_recorded_from_invite_to_its_end() -> None:
    world = World({"security": {"authenticateRequests": False}})
    await registered(world, "1002", "5678", 5072)
    invite = (
        "INVITE sip:1002@sip.local SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKinv1;rport\r\nMax-Forwards: 70\r\n"
        "From: <sip:1001@sip.local>;tag=a1\r\nTo: <sip:1002@sip.local>\r\n"
        "Call-ID: call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@10.0.0.5:5070>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    trying = await world.feed(invite)
    assert trying is not None and trying.status == 100
    (sent, hop), = world.io.requests("INVITE")  # fmt: skip
    assert (hop.host, hop.port) == ("10.0.0.5", 5072)
    (started,) = world.of(CallStarted)
    assert isinstance(started, CallStarted)
    assert (started.call_id, started.strategy) == ("call-1", "INTRA_DOMAIN")
    assert world.sip.calls_in_progress()[0]["state"] == "ringing"
    assert isinstance(sent, Request)
    busy = sent.response(486, to_tag="callee")
    await world.feed(busy.to_bytes().decode(), CALLEE)
    assert world.io.finals()[-1] == 486
    (ended,) = world.of(CallEnded)
    assert isinstance(ended, CallEnded)
    assert (ended.cause, ended.status, ended.answered) == ("busy", "486", False)
    assert world.sip.calls_in_progress() == []
    assert [c["callId"] for c in world.sip.recent_calls()] == ["call-1"]


async def test_a_flood_is_banned_once_and_counted() -> None:
    world = World({"security": {"floodBan": {"requests": 5, "seconds": 10, "banSeconds": 60}}})
    for i in range(8):
        await world.feed(register("1001", 5070, f"flood{i}", 1))
    (ban,) = world.of(SecurityBanned)
    assert isinstance(ban, SecurityBanned) and (ban.ip, ban.reason) == ("10.0.0.5", "flood")
    assert world.sip.bans() == [{"ip": "10.0.0.5", "secondsLeft": 60}]
    counters = world.sip.counters.to_dict()
    assert counters["requests"] == 5 and counters["dropped"] == 3


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ("NOT SIP AT ALL\r\n\r\n", None),
        ("OPTIONS sip:x@sip.local SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKb\r\n"
         "Content-Length: 0\r\n\r\n", 400),
    ],
)  # fmt: skip
async def test_bad_input_is_answered_or_dropped_and_counted(data: str, status: int | None) -> None:
    world = World()
    reply = await world.feed(data)
    assert (reply.status if reply is not None else None) == status
    counters = world.sip.counters.to_dict()
    assert counters["rejected" if status else "dropped"] == 1


async def test_an_ack_with_a_route_that_does_not_parse_is_dropped() -> None:
    world = World()
    ack = (
        "ACK sip:1002@10.0.0.5:5072 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKack1;rport\r\nMax-Forwards: 70\r\n"
        "From: <sip:1001@sip.local>;tag=a1\r\nTo: <sip:1002@sip.local>;tag=b1\r\n"
        "Call-ID: call-2\r\nCSeq: 1 ACK\r\nRoute: <>\r\nContent-Length: 0\r\n\r\n"
    )
    assert await world.feed(ack) is None  # no traceback out of the spawned work either
    assert world.io.sent == []


def invite(call_id: str, method: str = "INVITE", branch: str = "") -> str:
    return (
        f"{method} sip:1002@sip.local SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK{branch or call_id};rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:1001@sip.local>;tag=a1\r\nTo: <sip:1002@sip.local>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <sip:1001@10.0.0.5:5070>\r\n"
        "Content-Length: 0\r\n\r\n"
    )


@pytest.mark.parametrize("trusted", [False, True])
async def test_the_transaction_limit_lets_cancel_and_trusted_sources_through(
    trusted: bool,
) -> None:
    security: dict[str, object] = {
        "authenticateRequests": False,
        "limits": {"maxTransactionsPerSource": 1},
        "trusted": ["10.0.0.0/8"] if trusted else [],
    }
    world = World({"security": security})
    await registered(world, "1002", "5678", 5072)
    ringing = await world.feed(invite("c1"))  # the callee never answers: in progress
    assert ringing is not None and ringing.status == 100
    second = await world.feed(invite("c2"))
    assert second is not None and second.status == (100 if trusted else 503)
    # The CANCEL that would free the first is never refused.
    cancelled = await world.feed(invite("c1", "CANCEL", branch="c1"))
    assert cancelled is not None and (cancelled.status, cancelled.cseq.method) == (200, "CANCEL")


def options(user_agent: str, port: int = 5070) -> str:
    return (
        "OPTIONS sip:sip.local SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.5:{port};branch=z9hG4bKo{next(_branches)};rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:x@example.com>;tag=o1\r\nTo: <sip:sip.local>\r\n"
        f"Call-ID: o{next(_branches)}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: {user_agent}\r\n"
        "Content-Length: 0\r\n\r\n"
    )


_branches = itertools.count(1)


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
async def test_a_scanner_user_agent_never_bans_an_address_holding_a_binding(
    protocol: str,
) -> None:
    world = World({"security": {"trusted": []}})
    await world.sip.load_peers()  # follows the store: bindings are known as they come
    await registered(world, "1001", "1234", 5070)
    office = FakeSource("10.0.0.5", 5999, protocol)  # same address, another port
    for _ in range(SCANNER_HITS * 2):  # forged in its name, or a colleague's softphone
        assert await world.feed(options("friendly-scanner"), office) is None  # dropped
    assert world.of(SecurityBanned) == []
    elsewhere = FakeSource("10.0.0.77", 5070, protocol)
    for _ in range(SCANNER_HITS):
        await world.feed(options("friendly-scanner"), elsewhere)
    assert [(e.ip, e.reason) for e in world.of(SecurityBanned)] == [("10.0.0.77", "scanner")]  # type: ignore[attr-defined]


async def test_bindings_in_the_store_at_start_admit_their_addresses_through_a_lock() -> None:
    world = World()
    await registered(world, "1001", "1234", 5070)
    # A new process on the same store (Redis): it remembers nothing but what the store holds.
    restarted = World(store=world.store)
    await restarted.sip.load_peers()
    limit = restarted.sip.aor_limit
    assert limit.admits("sip:1001@sip.local", "10.0.0.5", 1_000.0)
    for i in range(limit.failures):
        limit.failed("sip:1001@sip.local", 1_000.0 + i)
    assert limit.locked("sip:1001@sip.local", 1_030.0)
    assert limit.admits("sip:1001@sip.local", "10.0.0.5", 1_030.0)  # its binding's address
    assert not limit.admits("sip:1001@sip.local", "10.0.0.6", 1_030.0)
