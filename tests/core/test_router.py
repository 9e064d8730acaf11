"""The routing table of routr.core.router, row by row, with a real Index and a memory store."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from support.data import agent, domain, gateway, number, peer
from support.fake_io import FakeClock, FakeSource

from routr.core.calls import Calls
from routr.core.router import Router
from routr.core.routing import Decision
from routr.data.index import Index
from routr.data.snapshot import Snapshot
from routr.location import Binding, MemoryStore
from routr.models.resources import KIND_CLASSES
from routr.sip.message import Request, make_request

NOW = 1_000_000.0
GW_IP = "127.0.0.7"
_seq = itertools.count(1)


def caller(ip: str = "10.0.0.5", port: int = 5060) -> FakeSource:
    """Where the request came from (10.0.0.5: inside sip.local's ACL)."""
    return FakeSource(ip, port)


RESOURCES: list[dict[str, Any]] = [
    domain(
        "sip.local",
        egress=[(r"\+?1?[2-9]\d{9}", "dd-pstn"), (r"00\d+", "dd-intl")],
        acl={"allow": ["10.0.0.0/8", "127.0.0.0/8"], "deny": ["0.0.0.0/0"]},
    ),
    domain("sip.other"),
    agent("1001", "1234", ["sip.local"]),
    agent("1002", "1234", ["sip.local"]),
    agent("1003", "1234", ["sip.local"], privacy="Private"),
    agent("2001", "1234", ["sip.other"]),
    peer("ast", "astsecret", device="sip.local"),
    peer("lbp", "secret", device="sip.local", loadBalancing={"algorithm": "least-sessions"}),
    peer("rrp", "secret", device="sip.local"),
    gateway("gw-prov", GW_IP, 5080, credentials={"username": "pbx-1", "secret": "gwpass"}),
    gateway("gw-intl", "127.0.0.8", transport="tcp"),
    number("dd-pstn", "tel:+17066041487", "gw-prov", "sip:1001@sip.local"),
    number("dd-intl", "tel:+442071234567", "gw-intl", "sip:1002@sip.local"),
    number("dd-peer", "tel:+15550001111", "gw-prov", "sip:ast@sip.local"),
]
INDEX = Index(Snapshot.of(KIND_CLASSES[r["kind"]].model_validate(r) for r in RESOURCES))


def invite(
    uri: str, frm: str = "sip:1001@sip.local", *, call_id: str | None = None,
    method: str = "INVITE", extra: list[tuple[str, str]] | None = None,
) -> Request:  # fmt: skip
    n = next(_seq)
    return make_request(
        method,
        uri,
        [
            ("Via", f"SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK{n}"),
            ("From", f"<{frm}>;tag=f{n}"),
            ("To", f"<{uri}>"),
            ("Call-ID", call_id or f"c{n}"),
            ("CSeq", f"1 {method}"),
            ("Max-Forwards", "70"),
            *(extra or []),
        ],
    )


async def bind(store: MemoryStore, aor: str, contact: str, kind: str = "Agent", **kw: Any) -> None:
    kw.setdefault("source_ip", "10.0.0.9")
    b = Binding(aor, contact, source_port=5060, transport="udp", expires_at=NOW + 3600,
                registered_on=NOW - next(_seq), kind=kind, **kw)  # fmt: skip
    await store.add(b, NOW)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock.now)


@pytest.fixture
def router(store: MemoryStore, clock: FakeClock) -> Router:
    return Router(lambda: INDEX, store, clock=clock.now, calls=Calls(clock.now, _ignore))


def _ignore(_event: object) -> None:
    return None


def uris(decision: Decision) -> list[str]:
    assert not decision.status, (decision.status, decision.reason)
    return [t.uri for t in decision.targets]


def header(decision: Decision, name: str) -> str | None:
    values = [v for n, v in decision.targets[0].add_headers if n == name]
    return values[0] if values else None


# -- INTRA_DOMAIN -------------------------------------------------------------------------


async def test_intra_domain_forks_to_every_binding(router: Router, store: MemoryStore) -> None:
    await bind(store, "sip:1002@sip.local", "sip:1002@10.0.0.20:5060")
    await bind(store, "sip:1002@sip.local", "sip:1002@10.0.0.21:5060")
    d = await router(invite("sip:1002@sip.local"), caller())
    assert sorted(uris(d)) == ["sip:1002@10.0.0.20:5060", "sip:1002@10.0.0.21:5060"]
    assert d.targets[0].hop is not None and d.targets[0].hop.host.startswith("10.0.0.2")


async def test_intra_domain_without_bindings_is_480(router: Router) -> None:
    d = await router(invite("sip:1002@sip.local"), caller())
    assert d.status == 480


async def test_intra_domain_to_a_peer_of_the_domain(router: Router, store: MemoryStore) -> None:
    await bind(store, "sip:ast@sip.local", "sip:ast@10.0.0.30:6060", kind="Peer")
    assert uris(await router(invite("sip:ast@sip.local"), caller())) == ["sip:ast@10.0.0.30:6060"]


async def test_domain_acl_denies_intra_domain(router: Router, store: MemoryStore) -> None:
    await bind(store, "sip:1002@sip.local", "sip:1002@10.0.0.20:5060")
    d = await router(invite("sip:1002@sip.local"), caller("192.0.2.1"))
    assert (d.status, d.reason) == (403, "Forbidden By Domain ACL")


async def test_use_to_as_aor(store: MemoryStore, clock: FakeClock) -> None:
    router = Router(lambda: INDEX, store, use_to_as_aor=True, clock=clock.now)
    await bind(store, "sip:1002@sip.local", "sip:1002@10.0.0.20:5060")
    request = invite("sip:whatever@10.0.0.1")
    request.set("to", "<sip:1002@sip.local>")
    assert uris(await router(request, caller())) == ["sip:1002@10.0.0.20:5060"]


# -- INTER_DOMAIN -------------------------------------------------------------------------


async def test_inter_domain_is_403(router: Router, store: MemoryStore) -> None:
    await bind(store, "sip:2001@sip.other", "sip:2001@10.0.0.40:5060")
    d = await router(invite("sip:2001@sip.other"), caller())
    assert d.status == 403 and "Inter-Domain" in (d.reason or "")


# -- DOMAIN_EGRESS ------------------------------------------------------------------------


async def test_egress_to_the_gateway_of_the_first_matching_policy(router: Router) -> None:
    d = await router(invite("sip:+17065551234@sip.local"), caller())
    assert uris(d) == [f"sip:+17065551234@{GW_IP}:5080"]
    target = d.targets[0]
    assert target.hop is not None
    assert (target.hop.transport, target.hop.host, target.hop.port) == ("udp", GW_IP, 5080)
    assert header(d, "P-Asserted-Identity") == f"<sip:+17066041487@{GW_IP}>"
    assert header(d, "Remote-Party-ID") == (f"<sip:+17066041487@{GW_IP}>;screen=yes;party=calling")
    assert header(d, "From") is None  # the From user is kept
    assert "P-Asserted-Identity" in target.remove_headers  # a caller cannot assert its own
    assert target.credentials == ("pbx-1", "gwpass")


async def test_egress_second_policy_gateway_transport_and_default_port(router: Router) -> None:
    d = await router(invite("sip:00442079460000@example.net"), caller())
    assert uris(d) == ["sip:00442079460000@127.0.0.8;transport=tcp"]
    hop = d.targets[0].hop
    assert hop is not None and (hop.transport, hop.port) == ("tcp", 5060)
    assert header(d, "P-Asserted-Identity") == "<sip:+442071234567@127.0.0.8>"
    assert d.targets[0].credentials is None


async def test_egress_rules_match_the_whole_user(router: Router) -> None:
    d = await router(invite("sip:17065551234999@sip.local"), caller())
    assert d.status == 404  # a prefix match is no match


async def test_egress_with_no_policy_is_404_for_a_local_host_else_403(router: Router) -> None:
    assert (await router(invite("sip:bob@sip.local"), caller())).status == 404
    assert (await router(invite("sip:bob@example.net"), caller())).status == 403
    other = invite("sip:+17065551234@sip.other", "sip:2001@sip.other")
    assert (await router(other, caller())).status == 404  # sip.other has no policy


async def test_egress_by_tel_uri(router: Router) -> None:
    assert uris(await router(invite("tel:+17065551234"), caller())) == [
        f"sip:+17065551234@{GW_IP}:5080"
    ]


async def test_private_agent_calls_as_anonymous(router: Router) -> None:
    request = invite("sip:+17065551234@sip.local", "sip:1003@sip.local")
    d = await router(request, caller())
    tag = request.from_.tag
    assert header(d, "From") == f'"Anonymous" <sip:anonymous@anonymous.invalid>;tag={tag}'
    assert header(d, "Privacy") == "id"
    assert (header(d, "Remote-Party-ID") or "").endswith(";privacy=full")
    assert header(d, "P-Asserted-Identity") == f"<sip:+17066041487@{GW_IP}>"
    assert "From" in d.targets[0].remove_headers


async def test_private_agent_is_anonymous_inside_the_domain(
    router: Router, store: MemoryStore
) -> None:
    await bind(store, "sip:1002@sip.local", "sip:1002@10.0.0.20:5060")
    d = await router(invite("sip:1002@sip.local", "sip:1003@sip.local"), caller())
    assert (header(d, "From") or "").startswith('"Anonymous"')


# -- DOMAIN_INGRESS -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    ["sip:+17066041487@127.0.0.1", "sip:17066041487@127.0.0.1", "tel:+17066041487",
     "sip:+17066041487@sip.local"],
)  # fmt: skip
async def test_ingress_from_a_gateway(router: Router, store: MemoryStore, uri: str) -> None:
    await bind(store, "sip:1001@sip.local", "sip:1001@10.0.0.10:5060")
    d = await router(invite(uri, "sip:+13055550000@provider.net"), caller(GW_IP, 5080))
    assert uris(d) == ["sip:1001@10.0.0.10:5060"]


async def test_ingress_without_bindings_is_480(router: Router) -> None:
    d = await router(invite("tel:+17066041487", "sip:x@provider.net"), caller(GW_IP, 5080))
    assert d.status == 480


async def test_unknown_tel_number_is_404(router: Router) -> None:
    d = await router(invite("tel:+19995550000", "sip:x@provider.net"), caller(GW_IP, 5080))
    assert d.status == 404


async def test_an_agent_calling_a_number_of_ours_reaches_its_aor(
    router: Router, store: MemoryStore
) -> None:
    await bind(store, "sip:1002@sip.local", "sip:1002@10.0.0.20:5060")
    d = await router(invite("sip:+442071234567@sip.local"), caller())
    assert uris(d) == ["sip:1002@10.0.0.20:5060"]


# -- gateways by address and port ---------------------------------------------------------


async def test_gateway_recognised_only_on_its_port(router: Router, store: MemoryStore) -> None:
    request = invite("sip:ast@sip.local", "sip:x@provider.net")
    assert (await router.classify(request, caller(GW_IP, 5080), INDEX)).gateway is not None
    assert (await router.classify(request, caller(GW_IP, 5081), INDEX)).gateway is None
    # A gateway without a port matches any source port.
    assert (await router.classify(request, caller("127.0.0.8", 40000), INDEX)).gateway


# -- anyone else --------------------------------------------------------------------------


async def test_anyone_to_a_local_aor_is_intra_domain(router: Router, store: MemoryStore) -> None:
    await bind(store, "sip:1001@sip.local", "sip:1001@10.0.0.10:5060")
    d = await router(invite("sip:1001@sip.local", "sip:someone@example.net"), caller())
    assert uris(d) == ["sip:1001@10.0.0.10:5060"]
    d = await router(invite("sip:1001@sip.local", "sip:someone@example.net"), caller("192.0.2.1"))
    assert d.status == 403  # the domain ACL


async def test_anyone_to_elsewhere_is_403(router: Router) -> None:
    d = await router(invite("sip:bob@example.net", "sip:someone@example.net"), caller())
    assert d.status == 403


# -- PEER_EGRESS --------------------------------------------------------------------------


async def _peer_caller(store: MemoryStore) -> None:
    await bind(store, "sip:ast@sip.local", "sip:ast@10.0.0.30:6060", kind="Peer",
               source_ip="10.0.0.30")  # fmt: skip


async def test_peer_egress_by_dod_header(router: Router, store: MemoryStore) -> None:
    await _peer_caller(store)
    request = invite(
        "sip:+13055551234@10.0.0.1", "sip:ast@sip.local", extra=[("X-DOD-Number", "+15550001111")]
    )
    d = await router(request, caller("10.0.0.30", 6060))
    assert uris(d) == [f"sip:+13055551234@{GW_IP}:5080"]
    assert "X-DOD-Number" in d.targets[0].remove_headers
    assert header(d, "P-Asserted-Identity") == f"<sip:+15550001111@{GW_IP}>"


async def test_peer_egress_by_from_user(router: Router, store: MemoryStore) -> None:
    await bind(store, "sip:ast@sip.local", "sip:ast@10.0.0.30:6060", kind="Peer",
               source_ip="10.0.0.30")  # fmt: skip
    request = invite("sip:+13055551234@10.0.0.1", "sip:ast@sip.local")
    request.set("from", "<sip:15550001111@sip.local>;tag=x")
    # The From user is the DOD number, so the caller is not recognised as the Peer by it:
    # it is "anyone" calling elsewhere.
    assert (await router(request, caller("10.0.0.30", 6060))).status == 403
    request = invite("sip:+13055551234@10.0.0.1", "sip:ast@sip.local")
    d = await router(request, caller("10.0.0.30", 6060))
    assert d.status == 404 and "DOD" in (d.reason or "")  # From user "ast" is no Number


async def test_peer_egress_unknown_dod_is_404(router: Router, store: MemoryStore) -> None:
    await _peer_caller(store)
    request = invite("sip:+13055551234@10.0.0.1", "sip:ast@sip.local",
                     extra=[("X-DOD-Number", "+19990000000")])  # fmt: skip
    d = await router(request, caller("10.0.0.30", 6060))
    assert (d.status, d.reason) == (404, "Not Found: Unknown DOD Number")


async def test_peer_to_an_agent_is_intra_domain(router: Router, store: MemoryStore) -> None:
    await _peer_caller(store)
    await bind(store, "sip:1001@sip.local", "sip:1001@10.0.0.10:5060")
    d = await router(invite("sip:1001@sip.local", "sip:ast@sip.local"), caller("10.0.0.30"))
    assert uris(d) == ["sip:1001@10.0.0.10:5060"]


async def test_peer_to_an_unknown_local_user_goes_out(router: Router, store: MemoryStore) -> None:
    await _peer_caller(store)
    request = invite("sip:+13055551234@sip.local", "sip:ast@sip.local",
                     extra=[("X-DOD-Number", "15550001111")])  # fmt: skip
    assert uris(await router(request, caller("10.0.0.30"))) == [f"sip:+13055551234@{GW_IP}:5080"]


async def test_a_peer_not_at_its_registered_address_is_anyone(
    router: Router, store: MemoryStore
) -> None:
    await _peer_caller(store)
    request = invite("sip:+13055551234@10.0.0.1", "sip:ast@sip.local",
                     extra=[("X-DOD-Number", "15550001111")])  # fmt: skip
    assert (await router(request, caller("10.0.0.99"))).status == 403


# -- Peers with several bindings ----------------------------------------------------------


async def _three(store: MemoryStore, aor: str) -> list[str]:
    contacts = [f"sip:p@10.0.1.{i}:5060" for i in (1, 2, 3)]
    for contact in contacts:
        await bind(store, aor, contact, kind="Peer")
    return contacts


async def test_round_robin_across_peer_bindings(router: Router, store: MemoryStore) -> None:
    contacts = await _three(store, "sip:rrp@sip.local")
    seen = [uris(await router(invite("sip:rrp@sip.local", "sip:x@e.net"), caller()))[0]
            for _ in range(6)]  # fmt: skip
    assert sorted(seen[:3]) == sorted(contacts) and seen[3:] == seen[:3]


async def test_call_id_affinity(router: Router, store: MemoryStore) -> None:
    await _three(store, "sip:rrp@sip.local")
    first = uris(await routed(router, invite("sip:rrp@sip.local", "sip:x@e.net", call_id="A")))
    for _ in range(4):
        again = await routed(router, invite("sip:rrp@sip.local", "sip:x@e.net", call_id="A"))
        assert uris(again) == first
        await routed(router, invite("sip:rrp@sip.local", "sip:x@e.net"))  # others move on


async def routed(router: Router, request: Request) -> Decision:
    """Route as the proxy does: the decision goes into the call record."""
    decision = await router(request, caller())
    router.calls.routed(request, decision)
    return decision


async def test_least_sessions_picks_the_least_busy_binding(
    router: Router, store: MemoryStore
) -> None:
    contacts = await _three(store, "sip:lbp@sip.local")
    invites = [invite("sip:lbp@sip.local", "sip:x@e.net") for _ in range(3)]
    chosen = [uris(await routed(router, c))[0] for c in invites]
    assert sorted(chosen) == sorted(contacts)  # one call each
    calls = router.calls
    calls.on_final(invites[0].call_id, 200)  # up
    calls.on_final(invites[1].call_id, 486)  # ended: that binding is free again
    nxt = uris(await routed(router, invite("sip:lbp@sip.local", "sip:x@e.net")))[0]
    assert nxt == chosen[1]
    # The answer to a relayed BYE frees the established call.
    assert calls.count("sip:lbp@sip.local", chosen[0]) == 1
    calls.on_bye_answered(invites[0].call_id, 200)
    assert calls.count("sip:lbp@sip.local", chosen[0]) == 0
    assert calls.count("sip:lbp@sip.local", chosen[2]) == 1


async def test_a_decision_says_why_for_the_call_record(router: Router, store: MemoryStore) -> None:
    await _three(store, "sip:lbp@sip.local")
    decision = await router(invite("sip:lbp@sip.local", "sip:x@e.net"), caller())
    assert decision.strategy == "INTRA_DOMAIN" and decision.binding is not None
    assert decision.binding[0] == "sip:lbp@sip.local"


async def test_agent_bindings_are_not_load_balanced(router: Router, store: MemoryStore) -> None:
    await bind(store, "sip:1002@sip.local", "sip:1002@10.0.0.20:5060")
    await bind(store, "sip:1002@sip.local", "sip:1002@10.0.0.21:5060")
    assert len(uris(await router(invite("sip:1002@sip.local"), caller()))) == 2


async def test_what_is_derived_per_gateway_follows_a_new_index(store: MemoryStore) -> None:
    current = [INDEX]
    router = Router(lambda: current[0], store, clock=lambda: 0.0, calls=Calls(lambda: 0.0, _ignore))
    first = await router(invite("sip:+15551234567@sip.local"), caller())
    assert first.targets[0].uri == f"sip:+15551234567@{GW_IP}:5080"
    assert (first.strategy, first.gateway_ref, first.callee_ref) == (
        "DOMAIN_EGRESS", "gw-prov", "dd-pstn",
    )  # fmt: skip
    assert first.caller_ref == INDEX.agent("1001", "sip.local").ref  # type: ignore[union-attr]
    moved = [
        gateway("gw-prov", "127.0.0.99", 5090) if r.get("kind") == "Gateway"
        and r["metadata"]["ref"] == "gw-prov" else r for r in RESOURCES
    ]  # fmt: skip
    current[0] = Index(Snapshot.of(KIND_CLASSES[r["kind"]].model_validate(r) for r in moved))
    again = await router(invite("sip:+15551234567@sip.local"), caller())
    assert again.targets[0].uri == "sip:+15551234567@127.0.0.99:5090"
    assert again.targets[0].credentials is None  # the new gateway has none
