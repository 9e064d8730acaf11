"""Enumeration resistance without a network: what a stranger gets back tells nothing about
which users, domains or Numbers exist (issue 17). Each answer is compared by its shape
(status, reason, header names, challenge parameters but the nonce) and by the location
lookups it cost (the part of its time that varies: a Redis round trip each)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from support.fake_io import FakeClock, FakeSource
from test_registrar import INDEX as REGISTRAR_INDEX
from test_registrar import NOW, challenges, request
from test_router import INDEX, bind, invite
from test_router import NOW as ROUTER_NOW

from routr.core.auth import AuthFailures, RequestAuthenticator
from routr.core.registrar import Registrar
from routr.core.router import Router
from routr.location import Binding, LocationStore, MemoryStore
from routr.location.store import AddResult
from routr.models.config import Registrar as RegistrarConfig
from routr.sip.digest import NonceIssuer, make_credentials, parse_challenge
from routr.sip.message import Response

STRANGER = FakeSource("203.0.113.5", 5060)
_cnonces = itertools.count(1)


class CountingStore(LocationStore):
    """A store that counts lookups, standing for a remote one (Redis: a round trip each),
    which the router pads with lookups of its own; bindings kept in a memory store."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock.now)
        self.inner = MemoryStore(clock=clock.now)
        self.watchers = self.inner.watchers
        self.lookups = 0

    async def lookup(self, aor: str, now: float | None = None) -> list[Binding]:
        self.lookups += 1
        return await self.inner.lookup(aor, now)

    async def add(self, binding: Binding, now: float | None = None) -> AddResult:
        return await self.inner.add(binding, now)

    async def remove(self, aor: str, contact: str) -> Binding | None:
        return await self.inner.remove(aor, contact)

    async def remove_all(self, aor: str) -> list[Binding]:
        return await self.inner.remove_all(aor)

    async def list(self, now: float | None = None) -> list[Binding]:
        return await self.inner.list(now)

    async def evict_all(self) -> int:
        return await self.inner.evict_all()

    async def sweep(self, now: float | None = None) -> list[Binding]:
        return await self.inner.sweep(now)


class CountingMemoryStore(MemoryStore):
    """A memory store that counts lookups."""

    lookups = 0

    async def lookup(self, aor: str, now: float | None = None) -> list[Binding]:
        self.lookups += 1
        return await super().lookup(aor, now)


def shape(response: Response, key: str) -> tuple[Any, ...]:
    """All of an answer but what must differ (the nonce) and what the request decides
    (the realm, checked apart)."""
    offered = tuple(
        (c.algorithm, c.qop, c.stale, c.opaque)
        for c in (parse_challenge(v) for v in challenges(response, key))
    )
    return response.status, response.reason, tuple(k for k, _, _ in response.headers), offered


def realms(response: Response, key: str) -> set[str]:
    return {parse_challenge(v).realm for v in challenges(response, key)}


# -- REGISTER ---------------------------------------------------------------------------


def registrar(failures: AuthFailures) -> tuple[Registrar, CountingStore]:
    clock = FakeClock(NOW)  # the registrar tests' time
    store = CountingStore(clock)
    reg = Registrar(lambda: REGISTRAR_INDEX, store, RegistrarConfig(), NonceIssuer(b"k"),
                    failures=failures)  # fmt: skip
    return reg, store


#: (To user, To host): a known Agent, an unknown user, an Agent at a domain we do not serve,
#: a Peer's name at a host we do not serve, nobody anywhere.
REGISTER_TARGETS = [("1001", "sip.local"), ("9999", "sip.local"), ("1001", "nowhere.example"),
                    ("ast", "nowhere.example"), ("9999", "nowhere.example")]  # fmt: skip


async def test_register_answers_alike_for_users_and_domains_that_exist_or_not() -> None:
    failures = AuthFailures(failures=100, seconds=60)
    reg, store = registrar(failures)
    first: set[tuple[Any, ...]] = set()
    wrong: set[tuple[Any, ...]] = set()
    for user, host in REGISTER_TARGETS:
        r = await reg.handle(request(user=user, domain=host), STRANGER, NOW)
        assert realms(r, "www-authenticate") == {host}  # the request's domain, served or not
        first.add(shape(r, "www-authenticate"))
        auth = make_credentials(challenges(r)[0], "REGISTER", f"sip:{host}", user, "guess",
                                f"c{next(_cnonces)}")  # fmt: skip
        again = await reg.handle(request(user=user, domain=host, cseq=2, auth=auth), STRANGER,
                                 NOW)  # fmt: skip
        assert realms(again, "www-authenticate") == {host}
        wrong.add(shape(again, "www-authenticate"))
    assert len(first) == 1 and len(wrong) == 1, (first, wrong)
    assert next(iter(first))[0] == 401 and first == wrong
    # Every wrong answer counted, wherever it was aimed; no lookup for any (none registered).
    assert failures.count(STRANGER.ip, NOW) == len(REGISTER_TARGETS)
    assert store.lookups == 0 and await store.list() == []


# -- INVITE, MESSAGE, OPTIONS -------------------------------------------------------------


def router(store: CountingStore, failures: AuthFailures) -> Router:
    auth = RequestAuthenticator(lambda: INDEX, NonceIssuer(b"k"), failures=failures)
    return Router(lambda: INDEX, store, auth=auth, clock=lambda: ROUTER_NOW)


#: Targets a stranger might probe: an Agent not registered, an unknown user, a Peer of the
#: domain, a user of a domain we do not serve, a Number without a binding (its aorLink is
#: not registered), an unknown tel: number, a domain whose ACL denies the stranger (sip.local
#: allows 10/8 and 127/8 only: every target there is behind it).
TARGETS = ["sip:1002@sip.local", "sip:9999@sip.local", "sip:ast@sip.local",
           "sip:bob@nowhere.example", "sip:+15550001111@nowhere.example", "tel:+15550001111",
           "tel:+19995550000", "sip:2001@sip.other", "sip:9999@sip.other"]  # fmt: skip
#: From a domain of ours (challenged as an Agent would be) or not (refused after routing).
FROMS = ["sip:probe@sip.local", "sip:1001@sip.local", "sip:probe@nowhere.example",
         "sip:1001@sip.other"]  # fmt: skip


@pytest.mark.parametrize("method", ["INVITE", "MESSAGE", "OPTIONS"])
async def test_a_stranger_gets_the_same_answer_for_every_target_and_from(method: str) -> None:
    clock = FakeClock(ROUTER_NOW)
    store = CountingStore(clock)
    failures = AuthFailures(failures=1000, seconds=60)
    route = router(store, failures)
    await bind(store, "sip:1002@sip.other", "sip:1002@10.0.0.20:5060")  # not probed
    answers: set[tuple[Any, ...]] = set()
    wrong: set[tuple[Any, ...]] = set()
    costs: set[int] = set()
    for frm, target in itertools.product(FROMS, TARGETS):
        before = store.lookups
        d = await route(invite(target, frm, method=method), STRANGER)
        costs.add(store.lookups - before)
        assert d.response is not None and not d.targets, (frm, target, d.status, d.reason)
        assert realms(d.response, "proxy-authenticate") == {frm.split("@")[1]}
        answers.add(shape(d.response, "proxy-authenticate"))
        # Credentials are checked (against nobody) and refused like a wrong password.
        challenge = challenges(d.response, "proxy-authenticate")[0]
        auth = make_credentials(challenge, method, target, frm[4:].split("@")[0], "guess",
                                f"c{next(_cnonces)}")  # fmt: skip
        again = await route(invite(target, frm, method=method,
                                   extra=[("Proxy-Authorization", auth)]), STRANGER)  # fmt: skip
        assert again.response is not None
        wrong.add(shape(again.response, "proxy-authenticate"))
    assert len(answers) == 1 and answers == wrong, answers | wrong
    assert next(iter(answers))[0] == 407
    # Counted against the address only when the From is in a domain of ours (a guess at our
    # Agents); the refusal of a From elsewhere counts nothing (a federated PBX's phone
    # answers its own realm's challenge with its real credentials).
    local = [f for f in FROMS if INDEX.is_local_domain(f.split("@")[1])]
    assert 0 < len(local) < len(FROMS)
    assert failures.count(STRANGER.ip, ROUTER_NOW) == len(local) * len(TARGETS)
    assert costs == {2}, costs  # the same lookups for each: local domain or not, user or not


async def test_a_memory_store_is_not_padded_with_lookups() -> None:
    # A memory lookup takes a microsecond: no lookup made only for its time.
    store = CountingMemoryStore(clock=FakeClock(ROUTER_NOW).now)
    route = router(store, AuthFailures())  # type: ignore[arg-type]
    d = await route(invite("sip:1002@sip.local", "sip:probe@sip.local"), STRANGER)
    assert d.response is not None and d.response.status == 407  # challenged at once
    d = await route(invite("sip:bob@nowhere.example", "sip:probe@nowhere.example"), STRANGER)
    assert d.response is not None and d.response.status == 407  # refused after routing
    assert store.lookups == 0


async def test_options_from_a_stranger_to_a_registered_user_is_not_relayed() -> None:
    clock = FakeClock(ROUTER_NOW)
    store = CountingStore(clock)
    route = router(store, AuthFailures())
    await bind(store, "sip:1002@sip.local", "sip:1002@10.0.0.20:5060")
    source = FakeSource("10.0.0.5", 5060)  # inside sip.local's ACL
    probe = await route(invite("sip:1002@sip.local", "sip:x@nowhere.example", method="OPTIONS"),
                        source)  # fmt: skip
    unknown = await route(invite("sip:9999@sip.local", "sip:x@nowhere.example",
                                 method="OPTIONS"), source)  # fmt: skip
    assert probe.response is not None and unknown.response is not None
    assert shape(probe.response, "proxy-authenticate") == shape(
        unknown.response, "proxy-authenticate"
    )
    # An INVITE or MESSAGE to them is a call from outside, delivered (the callee answers).
    call = await route(invite("sip:1002@sip.local", "sip:x@nowhere.example"), source)
    assert [t.uri for t in call.targets] == ["sip:1002@10.0.0.20:5060"]


async def test_gateways_and_agents_still_get_the_routing_answers() -> None:
    clock = FakeClock(ROUTER_NOW)
    store = CountingStore(clock)
    route = router(store, AuthFailures())
    gw = await route(
        invite("tel:+19995550000", "sip:x@provider.net"), FakeSource("127.0.0.7", 5080)
    )
    assert (gw.status, gw.reason) == (404, "Number Not Found")


async def test_without_authentication_the_routing_answers_go_out() -> None:
    clock = FakeClock(ROUTER_NOW)
    store = CountingStore(clock)
    auth = RequestAuthenticator(lambda: INDEX, NonceIssuer(b"k"), enabled=False)
    route = Router(lambda: INDEX, store, auth=auth, clock=lambda: ROUTER_NOW)
    d = await route(invite("sip:bob@nowhere.example", "sip:x@nowhere.example"), STRANGER)
    assert (d.status, d.reason) == (403, "Forbidden: Not A Local Target")
