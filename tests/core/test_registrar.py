"""The registrar without a network: parsed REGISTERs, the fake clock, the memory store.

Phones send from 127.0.0.1:5070 unless a test says otherwise."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from support.fake_io import FakeClock, FakeConn, FakeSource

from routr.core.auth import AuthFailures
from routr.core.registrar import EXPIRED, REGISTERED, UNREGISTERED, Registrar
from routr.data.index import Index
from routr.data.snapshot import Snapshot
from routr.events import EndpointEvent
from routr.location import MemoryStore
from routr.models import Resource, parse_resource
from routr.models.config import Registrar as RegistrarConfig
from routr.sip.digest import NonceIssuer, make_credentials, parse_challenge
from routr.sip.message import Request, Response, make_request

NOW = 1_700_000_000.0
_tags = itertools.count(1)


def resource(kind: str, spec: dict[str, Any], name: str = "Some name") -> Resource:
    return parse_resource({"kind": kind, "metadata": {"name": name}, "spec": spec})


def creds(user: str, secret: str) -> dict[str, str]:
    return {"username": user, "secret": secret}


RESOURCES = [
    resource("Domain", {"context": {"domainUri": "sip.local"}}),
    resource("Domain", {"context": {"domainUri": "other.local"}}),
    resource("Agent", {"credentials": creds("1001", "1234"), "domains": ["sip.local"]}),
    resource(
        "Agent",
        {
            "credentials": creds("1002", "abcd"),
            "domains": ["sip.local", "other.local"],
            "ex_maxContact": 3,
        },
    ),
    resource("Peer", {"credentials": creds("ast", "astsecret"), "device": "astserver"}),
    resource("Peer", {"credentials": creds("nodev", "nodevsecret")}),
    resource(
        "Peer",
        {
            "credentials": creds("fixed", "fixedsecret"),
            "device": "fixed.dev",
            "contactAddr": "127.0.0.99:6060",
        },
    ),
    resource("Gateway", {"host": "127.0.0.1", "port": 5090}),
]
INDEX = Index(Snapshot.of(RESOURCES))


def request(
    method: str = "REGISTER",
    *,
    user: str = "1001",
    domain: str = "sip.local",
    to: str | None = None,
    from_: str | None = None,
    contacts: tuple[str, ...] = ("<sip:1001@127.0.0.1:5070>",),
    expires: int | str | None = None,
    call_id: str = "call-1",
    cseq: int = 1,
    via: str = "127.0.0.1:5070",
    transport: str = "UDP",
    auth: str | None = None,
    auth_header: str = "Authorization",
    extra: tuple[tuple[str, str], ...] = (),
    uri: str | None = None,
) -> Request:
    headers = [
        ("Via", f"SIP/2.0/{transport} {via};branch=z9hG4bK-{next(_tags)};rport"),
        ("Max-Forwards", "70"),
        ("From", from_ or f"<sip:{user}@{domain}>;tag=f{next(_tags)}"),
        ("To", to or f"<sip:{user}@{domain}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
        *(("Contact", c) for c in contacts),
        *((("Expires", str(expires)),) if expires is not None else ()),
        *(((auth_header, auth),) if auth else ()),
        *extra,
    ]
    return make_request(method, uri or f"sip:{domain}", headers)


def challenges(response: Response, key: str = "www-authenticate") -> list[str]:
    # Raw values: challenges hold commas, get_all would split them.
    return [v for k, _, v in response.headers if k == key]


class World:
    """A registrar over the memory store, the events it sent, and a client helper."""

    def __init__(self, *, internal: bool = False, **config: int) -> None:
        self.clock = FakeClock(NOW)
        self.store = MemoryStore(clock=self.clock.now)
        self.nonces = NonceIssuer(b"test-secret")
        self.events: list[EndpointEvent] = []
        self.failures = AuthFailures(failures=3, seconds=60)
        self.registrar = Registrar(
            lambda: INDEX,
            self.store,
            RegistrarConfig(**config),
            self.nonces,
            internal=internal,
            emit=self.events.append,  # type: ignore[arg-type]
            failures=self.failures,
        )

    async def send(
        self, req: Request, now: float = NOW, source: FakeSource | None = None
    ) -> Response:
        return await self.registrar.handle(req, source or FakeSource(port=5070), now)

    async def register(
        self,
        *,
        user: str = "1001",
        password: str = "1234",
        domain: str = "sip.local",
        algorithm: str = "SHA-256",
        now: float = NOW,
        source: FakeSource | None = None,
        nc: int = 1,
        **kw: Any,
    ) -> Response:
        """Challenge, then answer the challenge (the way a phone does)."""
        first = await self.send(request(user=user, domain=domain, **kw), now, source)
        assert first.status == 401, first
        [challenge] = [c for c in challenges(first) if parse_challenge(c).algorithm == algorithm]
        auth = make_credentials(challenge, "REGISTER", f"sip:{domain}", user, password, "cn", nc)
        kw["cseq"] = kw.get("cseq", 1) + 1
        return await self.send(request(user=user, domain=domain, auth=auth, **kw), now, source)


def contacts_of(response: Response) -> list[str]:
    return response.get_all("contact")


# --- authentication -----------------------------------------------------------------------


async def test_challenge_offers_sha256_and_md5() -> None:
    w = World()
    r = await w.send(request())
    assert r.status == 401
    parsed = [parse_challenge(c) for c in challenges(r)]
    assert [c.algorithm for c in parsed] == ["SHA-256", "MD5"]
    assert {c.realm for c in parsed} == {"sip.local"}
    assert all(c.qop == ("auth",) and not c.stale for c in parsed)
    assert await w.store.list() == []


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
async def test_register_with_either_algorithm(algorithm: str) -> None:
    w = World()
    r = await w.register(algorithm=algorithm)
    assert r.status == 200
    assert contacts_of(r) == ["<sip:1001@127.0.0.1:5070>;expires=3600"]
    assert r.get("date") == "Tue, 14 Nov 2023 22:13:20 GMT"
    [b] = await w.store.lookup("sip:1001@sip.local")
    assert (b.contact, b.expires_at, b.call_id, b.kind) == (
        "sip:1001@127.0.0.1:5070",
        NOW + 3600,
        "call-1",
        "Agent",
    )
    assert [(e.name, e.reason) for e in w.events] == [(REGISTERED, "registered")]


async def test_wrong_password_and_unknown_user_get_the_same_401() -> None:
    w = World()
    wrong = await w.send(request(), NOW)
    answers = []
    for user, password in (("1001", "nope"), ("9999", "1234")):
        first = await w.send(request(user=user))
        auth = make_credentials(
            challenges(first)[0], "REGISTER", "sip:sip.local", user, password, "cn"
        )
        answers.append(await w.send(request(user=user, cseq=2, auth=auth)))
    for r in answers:
        assert r.status == 401
        assert [k for k, _, _ in r.headers] == [k for k, _, _ in wrong.headers]
        assert [parse_challenge(c).realm for c in challenges(r)] == ["sip.local"] * 2
    assert w.failures.count("127.0.0.1", NOW) == 2
    assert await w.store.list() == []


async def test_expired_nonce_gets_a_stale_challenge() -> None:
    w = World()
    first = await w.send(request())
    auth = make_credentials(challenges(first)[0], "REGISTER", "sip:sip.local", "1001", "1234", "c")
    r = await w.send(request(cseq=2, auth=auth), NOW + w.nonces.lifetime + 1)
    assert r.status == 401
    assert all(parse_challenge(c).stale for c in challenges(r))
    assert w.failures.count("127.0.0.1", NOW) == 0  # a stale nonce is no failure


async def test_replayed_nonce_count_is_refused() -> None:
    w = World()
    first = await w.send(request())
    auth = make_credentials(challenges(first)[0], "REGISTER", "sip:sip.local", "1001", "1234", "c")
    assert (await w.send(request(cseq=2, auth=auth))).status == 200
    replay = await w.send(request(cseq=3, auth=auth, contacts=("<sip:evil@127.0.0.99:5999>",)))
    assert replay.status == 401
    [b] = await w.store.lookup("sip:1001@sip.local")
    assert b.contact == "sip:1001@127.0.0.1:5070"


async def test_credentials_of_another_user_are_forbidden() -> None:
    w = World()
    first = await w.send(request(user="1001"))
    # 1002 answers with their own (valid) credentials for 1001's To.
    auth = make_credentials(challenges(first)[0], "REGISTER", "sip:sip.local", "1002", "abcd", "c")
    r = await w.send(request(user="1001", cseq=2, auth=auth))
    assert r.status == 403
    assert await w.store.list() == []


async def test_unregister_needs_credentials_too() -> None:
    w = World()
    assert (await w.register()).status == 200
    r = await w.send(request(contacts=("*",), expires=0, cseq=5))
    assert r.status == 401
    assert len(await w.store.list()) == 1


# --- what is registered -------------------------------------------------------------------


async def test_several_contacts_and_per_contact_expires() -> None:
    w = World()
    r = await w.register(
        user="1002",
        password="abcd",
        expires=600,
        contacts=(
            "<sip:a@127.0.0.1:5070>;expires=120",
            "<sip:b@127.0.0.1:5071>",
            "<sip:c@127.0.0.1:5072>;expires=99999",
        ),
    )
    assert r.status == 200
    assert sorted(contacts_of(r)) == [
        "<sip:a@127.0.0.1:5070>;expires=120",
        "<sip:b@127.0.0.1:5071>;expires=600",
        "<sip:c@127.0.0.1:5072>;expires=3600",  # capped at maxExpires
    ]
    # 1002 has two domains: both AORs are bound.
    assert len(await w.store.lookup("sip:1002@other.local")) == 3


async def test_query_lists_bindings_without_changing_them() -> None:
    w = World()
    await w.register()
    r = await w.register(contacts=(), now=NOW + 100, call_id="other", nc=1)
    assert r.status == 200
    assert contacts_of(r) == ["<sip:1001@127.0.0.1:5070>;expires=3500"]


async def test_star_removes_every_binding() -> None:
    w = World()
    await w.register(
        user="1002", password="abcd", contacts=("<sip:a@127.0.0.1:5070>", "<sip:b@127.0.0.1:5071>")
    )
    r = await w.register(user="1002", password="abcd", contacts=("*",), expires=0, cseq=3)
    assert r.status == 200 and contacts_of(r) == []
    assert await w.store.list() == []
    assert [e.name for e in w.events].count(UNREGISTERED) == 4


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [(("*",), None), (("*",), 60), (("*", "<sip:a@127.0.0.1>"), 0)],
)
async def test_star_needs_expires_zero_alone(
    contacts: tuple[str, ...], expires: int | None
) -> None:
    r = await World().register(contacts=contacts, expires=expires)
    assert r.status == 400


async def test_too_brief_is_423_but_zero_removes() -> None:
    w = World(minExpires=60)
    r = await w.register(expires=30)
    assert r.status == 423 and r.get("min-expires") == "60"
    assert await w.store.list() == []
    assert (await w.register(cseq=3)).status == 200
    r = await w.register(contacts=("<sip:1001@127.0.0.1:5070>;expires=0",), cseq=5, nc=1)
    assert r.status == 200 and contacts_of(r) == []
    assert w.events[-1].name == UNREGISTERED


async def test_max_contacts_replaces_the_oldest() -> None:
    w = World()
    await w.register(contacts=("<sip:1001@127.0.0.1:5070>",))
    r = await w.register(contacts=("<sip:1001@127.0.0.1:5071>",), call_id="c2", now=NOW + 5)
    assert contacts_of(r) == ["<sip:1001@127.0.0.1:5071>;expires=3600"]
    assert [(e.name, e.reason) for e in w.events][-1] == (UNREGISTERED, "replaced")


async def test_max_contacts_keeps_the_recently_refreshed() -> None:
    w = World()
    kw: dict[str, Any] = {"user": "1002", "password": "abcd"}
    for i, t in enumerate((0, 10, 20)):
        await w.register(
            contacts=(f"<sip:p{i}@127.0.0.1:{5070 + i}>",), call_id=f"c{i}", now=NOW + t, **kw
        )
    await w.register(
        contacts=("<sip:p0@127.0.0.1:5070>",), call_id="c0", cseq=5, now=NOW + 30, **kw
    )
    r = await w.register(contacts=("<sip:p3@127.0.0.1:5073>",), call_id="c3", now=NOW + 40, **kw)
    assert sorted(c.split(";")[0] for c in contacts_of(r)) == [
        "<sip:p0@127.0.0.1:5070>",
        "<sip:p2@127.0.0.1:5072>",
        "<sip:p3@127.0.0.1:5073>",
    ]


async def test_out_of_order_refresh_fails() -> None:
    w = World()
    assert (await w.register(cseq=10)).status == 200
    r = await w.register(cseq=5, expires=0, nc=1)  # same Call-ID, lower CSeq
    assert r.status == 500
    assert len(await w.store.list()) == 1
    r = await w.register(cseq=5, call_id="rebooted")  # a new Call-ID starts over
    assert r.status == 200


async def test_refresh_matches_the_contact_by_uri_equality() -> None:
    w = World()
    await w.register(contacts=("<sip:1001@127.0.0.1:5070;transport=udp>",))
    r = await w.register(
        contacts=("<sip:1001@127.0.0.1:5070;TRANSPORT=UDP>",), cseq=3, now=NOW + 10
    )
    assert contacts_of(r) == ["<sip:1001@127.0.0.1:5070;transport=udp>;expires=3600"]
    assert [e.name for e in w.events] == [REGISTERED]  # a refresh is not a new registration


async def test_bindings_expire_when_time_passes() -> None:
    w = World()
    await w.register(expires=60)
    assert await w.registrar.sweep(NOW + 59) == []
    assert len(await w.store.lookup("sip:1001@sip.local", NOW + 59)) == 1
    assert await w.store.lookup("sip:1001@sip.local", NOW + 61) == []  # hidden before the sweep
    [event] = await w.registrar.sweep(NOW + 61)
    assert event.name == EXPIRED and w.events[-1] is event
    assert event.to_dict()["aor"] == "sip:1001@sip.local"
    assert await w.store.list(NOW) == []


async def test_path_is_stored_and_echoed() -> None:
    w = World()
    r = await w.register(extra=(("Path", "<sip:edge1.local;lr>, <sip:edge2.local;lr>"),))
    assert r.get_all("path") == ["<sip:edge1.local;lr>", "<sip:edge2.local;lr>"]
    [b] = await w.store.lookup("sip:1001@sip.local")
    assert b.path == ["<sip:edge1.local;lr>", "<sip:edge2.local;lr>"]


async def test_user_agent_and_flow_are_kept() -> None:
    w = World()
    src = FakeSource("127.0.0.1", 40001, "tcp", FakeConn(17))
    await w.register(source=src, transport="TCP", extra=(("User-Agent", "phone/2"),))
    [b] = await w.store.lookup("sip:1001@sip.local")
    assert (b.user_agent, b.transport, b.conn_id, b.local) == (
        "phone/2",
        "tcp",
        17,
        ("127.0.0.1", 5060),
    )
    assert b.next_hop() == ("tcp", "127.0.0.1", 40001, 17)


# --- NAT ----------------------------------------------------------------------------------


async def test_client_behind_nat_is_reached_at_its_source() -> None:
    w = World()
    await w.register(
        via="127.0.0.99:5999",
        contacts=("<sip:1001@127.0.0.99:5999>",),
        source=FakeSource(port=40123),
    )
    [b] = await w.store.lookup("sip:1001@sip.local")
    assert b.nat and b.contact == "sip:1001@127.0.0.99:5999"
    assert b.next_hop() == ("udp", "127.0.0.1", 40123, None)


async def test_client_not_behind_nat_is_reached_at_its_contact() -> None:
    w = World()
    await w.register(via="127.0.0.1:5070", contacts=("<sip:1001@127.0.0.1:5070>",))
    [b] = await w.store.lookup("sip:1001@sip.local")
    assert not b.nat and b.next_hop() == ("udp", "127.0.0.1", 5070, None)


async def test_websocket_clients_are_always_reached_over_their_flow() -> None:
    w = World()
    src = FakeSource("127.0.0.1", 50000, "wss", FakeConn(9))
    await w.register(
        via="abcdef.invalid",
        transport="WSS",
        source=src,
        contacts=("<sip:1001@abcdef.invalid;transport=ws>",),
    )
    [b] = await w.store.lookup("sip:1001@sip.local")
    assert b.nat and b.next_hop() == ("wss", "127.0.0.1", 50000, 9)


async def test_internal_registrar_interface_always_uses_the_source() -> None:
    w = World(internal=True)
    await w.register()
    [b] = await w.store.lookup("sip:1001@sip.local")
    assert b.nat


# --- Peers and foreign domains ------------------------------------------------------------


async def test_peer_binds_user_at_device() -> None:
    w = World()
    r = await w.register(
        user="ast", password="astsecret", domain="127.0.0.1", contacts=("<sip:ast@127.0.0.1:6060>",)
    )
    assert r.status == 200
    assert contacts_of(r) == ["<sip:ast@127.0.0.1:6060>;expires=3600"]
    [b] = await w.store.list()
    assert (b.aor, b.kind) == ("sip:ast@astserver", "Peer")


async def test_peer_without_device_binds_the_from_host() -> None:
    w = World()
    r = await w.register(
        user="nodev",
        password="nodevsecret",
        domain="127.0.0.1",
        from_="<sip:nodev@pbx.example.invalid>;tag=1",
    )
    assert r.status == 200
    [b] = await w.store.list()
    assert b.aor == "sip:nodev@pbx.example.invalid"


async def test_peer_contact_addr_overrides_the_address() -> None:
    w = World()
    src = FakeSource("127.0.0.1", 40002, "tcp", FakeConn(3))
    r = await w.register(
        user="fixed",
        password="fixedsecret",
        domain="127.0.0.1",
        via="127.0.0.1:40002",
        transport="TCP",
        source=src,
        contacts=("<sip:fixed@127.0.0.1:40002;transport=tcp>",),
    )
    assert r.status == 200
    [b] = await w.store.list()
    assert b.aor == "sip:fixed@fixed.dev"
    assert b.contact == "sip:fixed@127.0.0.99:6060;transport=tcp"
    assert b.next_hop() == ("tcp", "127.0.0.99", 6060, None)
    assert b.source == "127.0.0.1:40002"  # where it came from stays visible


async def test_foreign_domain_is_challenged_like_ours_and_never_registers() -> None:
    # A 403 here would tell a scanner which domains are ours (realm: the To host, as ever).
    w = World()
    r = await w.send(request(user="1001", domain="elsewhere.invalid"))
    assert r.status == 401
    assert {parse_challenge(c).realm for c in challenges(r)} == {"elsewhere.invalid"}
    assert (await w.register(domain="elsewhere.invalid")).status == 401  # 1001: no Peer
    assert await w.store.list() == []


async def test_agent_credentials_do_not_register_at_a_peer_aor() -> None:
    w = World()
    first = await w.send(request(user="ast", domain="127.0.0.1"))
    assert first.status == 401
    auth = make_credentials(challenges(first)[0], "REGISTER", "sip:127.0.0.1", "1001", "1234", "c")
    r = await w.send(request(user="ast", domain="127.0.0.1", cseq=2, auth=auth))
    assert r.status == 401  # 1001 is not a Peer: unknown user


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"to": "<tel:+15551234>"}, "To must be a SIP URI"),
        ({"expires": "soon"}, "Bad Expires"),
        ({"contacts": ("<mailto:a@b.invalid>",)}, "Contact must be a SIP URI"),
        ({"contacts": ("<sip:a@127.0.0.1>;q=2",)}, "Bad q parameter"),
    ],
)
async def test_bad_requests(kw: dict[str, Any], reason: str) -> None:
    w = World()
    r = await (w.send(request(**kw)) if "to" in kw else w.register(**kw))
    assert (r.status, r.reason) == (400, reason)
