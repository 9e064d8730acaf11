"""Authentication of requests other than REGISTER, without a network."""

from __future__ import annotations

from support.fake_io import FakeConn, FakeSource
from test_registrar import INDEX, NOW, World, challenges, request

from routr.core.auth import AuthFailures, PeerAddresses, RequestAuthenticator
from routr.location import LocationEvent
from routr.sip.digest import NonceIssuer, make_credentials, parse_challenge
from routr.sip.message import Request

INVITE_URI = "sip:1002@sip.local"
PHONE = FakeSource(port=5070)  # where the phones of the registrar tests send from


def invite(auth: str | None = None, **kw: object) -> Request:
    kw.setdefault("contacts", ("<sip:1001@127.0.0.1:5070>",))
    kw.setdefault("to", f"<{INVITE_URI}>")
    return request(
        "INVITE",
        uri=INVITE_URI,
        auth=auth,
        auth_header="Proxy-Authorization",
        **kw,  # type: ignore[arg-type]
    )


def make_auth(
    peers: PeerAddresses | None = None, *, enabled: bool = True
) -> tuple[RequestAuthenticator, AuthFailures]:
    failures = AuthFailures(failures=2, seconds=60)
    auth = RequestAuthenticator(
        lambda: INDEX,
        NonceIssuer(b"k"),
        is_peer_address=peers,
        enabled=enabled,
        failures=failures,
    )
    return auth, failures


def answer(challenge_response: object, user: str = "1001", password: str = "1234") -> str:
    from routr.sip.message import Response

    assert isinstance(challenge_response, Response)
    [sha] = [
        c
        for c in challenges(challenge_response, "proxy-authenticate")
        if parse_challenge(c).algorithm == "SHA-256"
    ]
    return make_credentials(sha, "INVITE", INVITE_URI, user, password, "cn")


def test_agent_requests_are_challenged_until_they_authenticate() -> None:
    auth, _ = make_auth()
    r = auth.check(invite(), PHONE, NOW)
    assert r is not None and r.status == 407
    parsed = [parse_challenge(c) for c in challenges(r, "proxy-authenticate")]
    assert [(c.algorithm, c.realm) for c in parsed] == [
        ("SHA-256", "sip.local"),
        ("MD5", "sip.local"),
    ]
    good = invite(answer(r))
    assert auth.check(good, PHONE, NOW) is None
    # Our realm's credentials are consumed, not forwarded (RFC 3261 §22.3).
    assert not good.has("proxy-authorization")


def test_wrong_password_and_unknown_local_user_are_challenged_alike() -> None:
    auth, failures = make_auth()
    first = auth.check(invite(), PHONE, NOW)
    wrong = auth.check(invite(answer(first, password="bad")), PHONE, NOW)
    unknown = auth.check(
        invite(answer(first, user="ghost"), from_="<sip:ghost@sip.local>;tag=1"), PHONE, NOW
    )
    for r in (wrong, unknown):
        assert r is not None and r.status == 407
    assert failures.count("127.0.0.1", NOW) == 2 and failures.exceeded("127.0.0.1", NOW)
    assert failures.count("127.0.0.1", NOW + 61) == 0


def test_credentials_of_another_agent_do_not_pass() -> None:
    auth, _ = make_auth()
    first = auth.check(invite(), PHONE, NOW)
    r = auth.check(invite(answer(first, user="1002", password="abcd")), PHONE, NOW)
    assert r is not None and r.status == 407


def test_stale_nonce_gets_stale_challenge() -> None:
    auth, failures = make_auth()
    first = auth.check(invite(), PHONE, NOW)
    r = auth.check(invite(answer(first)), PHONE, NOW + 1000)
    assert r is not None and r.status == 407
    assert all(parse_challenge(c).stale for c in challenges(r, "proxy-authenticate"))
    assert failures.count("127.0.0.1", NOW) == 0


def test_what_passes_without_credentials() -> None:
    auth, _ = make_auth()
    src = PHONE
    assert auth.check(invite(to=f"<{INVITE_URI}>;tag=x"), src, NOW) is None  # in dialog
    for method in ("ACK", "CANCEL", "REGISTER"):
        assert auth.check(request(method, uri=INVITE_URI), src, NOW) is None
    # From a foreign domain: not ours to authenticate (routing refuses open relaying).
    assert auth.check(invite(from_="<sip:bob@elsewhere.invalid>;tag=1"), src, NOW) is None
    # From the Gateway's address (127.0.0.1:5090) only.
    assert auth.check(invite(), FakeSource(port=5090), NOW) is None
    assert auth.check(invite(), FakeSource(port=5091), NOW) is not None
    disabled, _ = make_auth(enabled=False)
    assert disabled.check(invite(), src, NOW) is None


async def test_registered_peer_addresses_are_trusted() -> None:
    w = World()
    peers = PeerAddresses()
    w.store.on_event(peers.on_event)
    auth, _ = make_auth(peers)
    peer_src = FakeSource(port=6061)
    from_ast = invite(from_="<sip:1001@sip.local>;tag=1")
    assert auth.check(from_ast, peer_src, NOW) is not None
    await w.register(
        user="ast", password="astsecret", domain="127.0.0.1", source=peer_src, via="127.0.0.1:6061"
    )
    assert auth.check(from_ast, peer_src, NOW) is None
    assert auth.check(from_ast, FakeSource(port=6062), NOW) is not None
    # An Agent's binding does not make its address trusted.
    await w.register(source=FakeSource(port=7000), via="127.0.0.1:7000")
    assert auth.check(invite(), FakeSource(port=7000), NOW) is not None
    await w.registrar.sweep(NOW + 4000)
    assert auth.check(from_ast, peer_src, NOW) is not None
    assert len(peers) == 0


async def test_peer_addresses_load_and_stream_flows() -> None:
    w = World()
    await w.register(
        user="ast",
        password="astsecret",
        domain="127.0.0.1",
        transport="TCP",
        source=FakeSource(port=40000, protocol="tcp", conn=FakeConn(1)),
    )
    peers = PeerAddresses()
    peers.load(await w.store.list())
    assert peers("127.0.0.1", 40001)  # a new TCP connection: another source port
    [b] = await w.store.list()
    peers.on_event(LocationEvent("DELETED", b))
    assert not peers("127.0.0.1", 40000)
