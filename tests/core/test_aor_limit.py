"""Password guessing against one AOR from many addresses (``authFailureBan.perAor``),
with the fake clock: the lock, who still gets through it, and that it tells nothing."""

from __future__ import annotations

import logging

import pytest
from support.fake_io import FakeSource
from test_registrar import NOW, World, challenges

from routr.core.auth import AorLimit, AuthFailures, RequestAuthenticator
from routr.sip.message import Response

AOR = "sip:1001@sip.local"


def attackers(n: int) -> list[FakeSource]:
    return [FakeSource(f"198.51.100.{i}", 5060) for i in range(1, n + 1)]


def test_the_limit_locks_once_and_the_lock_runs_its_course(caplog: pytest.LogCaptureFixture):
    limit = AorLimit(failures=3, seconds=60, lock_seconds=100)
    with caplog.at_level(logging.WARNING, "routr.security"):
        for i in range(10):  # the 4th..10th fall in the lock: counted nowhere, logged never
            limit.failed(AOR, NOW + i)
    assert limit.locked(AOR, NOW + 2) and limit.locks == 1
    assert [r.getMessage().split(" ")[0] for r in caplog.records] == [AOR]
    assert not limit.admits(AOR, "198.51.100.1", NOW + 50)
    assert limit.admits("sip:1002@sip.local", "198.51.100.1", NOW + 50)  # other AORs: free
    assert limit.locked_now(NOW + 50) == 1 and limit.locked_now(NOW + 103) == 0
    assert limit.locked(AOR, NOW + 101.9) and not limit.locked(AOR, NOW + 102.1)


def test_failures_outside_the_window_do_not_add_up() -> None:
    limit = AorLimit(failures=3, seconds=60, lock_seconds=100)
    for i in range(10):
        limit.failed(AOR, NOW + i * 31)  # never three within 60 s
    assert limit.locks == 0


def test_known_addresses_pass_a_lock() -> None:
    limit = AorLimit(failures=1, seconds=60, lock_seconds=100, trusted=lambda ip: ip == "10.1.1.1")
    limit.succeeded(AOR, "192.0.2.10", NOW)  # authenticated before the attack
    limit.failed(AOR, NOW + 1)
    assert limit.admits(AOR, "192.0.2.10", NOW + 2)
    assert limit.admits(AOR, "10.1.1.1", NOW + 2)  # trusted networks
    assert not limit.admits(AOR, "192.0.2.11", NOW + 2)
    # Remembered for the longer of the window and the lock, or what the caller says.
    limit.succeeded(AOR, "192.0.2.12", NOW, seconds=3600)
    assert limit.admits(AOR, "192.0.2.12", NOW + 2)
    assert limit.known(AOR, "192.0.2.12", NOW + 3599) and not limit.known(
        AOR, "192.0.2.10", NOW + 101
    )


def test_lock_seconds_zero_never_locks() -> None:
    limit = AorLimit(failures=1, seconds=60, lock_seconds=0)
    for i in range(5):
        limit.failed(AOR, NOW + i)
    assert limit.locks == 0 and limit.admits(AOR, "198.51.100.1", NOW + 5)


def test_memory_stays_bounded_under_a_scan_of_many_aors() -> None:
    limit = AorLimit(failures=1, seconds=60, lock_seconds=100, max_aors=50)
    for i in range(500):
        limit.failed(f"sip:{i}@sip.local", NOW)
        limit.succeeded(f"sip:{i}@sip.local", "192.0.2.1", NOW)
        limit.succeeded(AOR, f"192.0.2.{i % 250}", NOW)
    assert len(limit._locked) <= 50 and len(limit._good) <= 50
    assert len(limit._good[AOR]) <= AorLimit.MAX_ADDRESSES


# -- in the registrar ---------------------------------------------------------------------


def limited_world(failures: int = 5) -> tuple[World, AorLimit]:
    w = World()
    w.registrar.failures = AuthFailures(failures=1000, seconds=60)  # no per-address ban here
    limit = w.registrar.limit = AorLimit(failures=failures, seconds=600, lock_seconds=900)
    return w, limit


async def guess(w: World, source: FakeSource, password: str = "guess", *, user: str = "1001",
                now: float = NOW, cseq: int = 1) -> Response:  # fmt: skip
    return await w.register(user=user, password=password, source=source, now=now, cseq=cseq,
                            contacts=(f"<sip:{user}@{source.ip}:5060>",))  # fmt: skip


async def test_guessing_from_many_addresses_locks_the_aor_but_not_its_phone() -> None:
    w, limit = limited_world()
    phone = FakeSource("192.0.2.50", 5070)
    assert (await guess(w, phone, "1234")).status == 200  # the real user, registered
    for source in attackers(5):  # one guess each: no address is over any limit of its own
        assert (await guess(w, source)).status == 401
    assert limit.locked(AOR, NOW) and limit.locks == 1
    # The right password from a new address: answered as a wrong one ...
    late = FakeSource("198.51.100.77", 5060)
    wrong = await guess(w, late, "guess")
    refused = await guess(w, late, "1234")
    assert (refused.status, [k for k, _, _ in refused.headers]) == (
        wrong.status, [k for k, _, _ in wrong.headers])  # fmt: skip
    assert refused.status == 401 and limit.refused >= 1
    # ... while the registered phone refreshes, also after forgetting it (a restart): its
    # binding is enough.
    limit._good.clear()
    assert (await guess(w, phone, "1234", now=NOW + 60, cseq=10)).status == 200
    # Other AORs are not affected, and the lock ends.
    assert (await guess(w, late, "abcd", user="1002")).status == 200
    assert (await guess(w, late, "1234", now=NOW + 901, cseq=20)).status == 200


async def test_an_unknown_aor_locks_alike() -> None:
    w, limit = limited_world()
    for source in attackers(5):
        assert (await guess(w, source, user="9999")).status == 401
    assert limit.locked("sip:9999@sip.local", NOW)


async def test_request_authentication_shares_the_count_and_the_lock() -> None:
    w, limit = limited_world(failures=4)
    from test_auth import answer, invite

    auth = RequestAuthenticator(lambda: w.registrar.index(), w.nonces, limit=limit)
    office = FakeSource("192.0.2.60", 5070)
    first = auth.check(invite(), office, NOW)
    assert first is not None and auth.check(invite(answer(first)), office, NOW) is None
    for source in attackers(2):
        assert (await guess(w, source)).status == 401
    for source in attackers(4)[2:]:
        challenge = auth.check(invite(), source, NOW)
        assert challenge is not None
        assert auth.check(invite(answer(challenge, password="no")), source, NOW) is not None
    assert limit.locked(AOR, NOW)
    stranger = FakeSource("198.51.100.99", 5070)
    challenge = auth.check(invite(), stranger, NOW)
    assert challenge is not None
    refused = auth.check(invite(answer(challenge)), stranger, NOW)
    assert refused is not None and refused.status == 407  # the right password, locked out
    challenge = auth.check(invite(), office, NOW)
    assert challenge is not None and auth.check(invite(answer(challenge)), office, NOW) is None
    assert challenges(refused, "proxy-authenticate")


def test_per_aor_keys_are_in_the_config_with_their_defaults() -> None:
    from routr.models.config import Config

    per_aor = Config().spec.security.auth_failure_ban.per_aor
    assert (per_aor.failures, per_aor.seconds, per_aor.lock_seconds) == (20, 600, 900)
    custom = Config.model_validate(
        {"spec": {"security": {"authFailureBan": {"perAor": {"failures": 3, "lockSeconds": 0}}}}}
    ).spec.security.auth_failure_ban.per_aor
    assert (custom.failures, custom.lock_seconds) == (3, 0)


# -- what a refusal does not count against an address -----------------------------------


async def test_a_locked_users_right_password_does_not_get_its_address_banned() -> None:
    w, limit = limited_world()
    w.registrar.failures = failures = AuthFailures(failures=3, seconds=600)
    for source in attackers(5):
        assert (await guess(w, source)).status == 401
    assert limit.locked(AOR, NOW)
    office = FakeSource("192.0.2.70", 5060)  # the real phone, behind a new NAT address
    for i in range(5):  # it retries with its right password: refused by the lock ...
        assert (await guess(w, office, "1234", now=NOW + i, cseq=i + 1)).status == 401
    assert limit.refused == 5
    assert failures.count(office.ip, NOW + 5) == 0  # ... and never counted against it
    # Nor is a wrong one: counting only those would tell a guesser which password is right
    # (the one it is never banned for). Once the lock is over, failures count again.
    assert (await guess(w, office, "nope", now=NOW + 6, cseq=9)).status == 401
    assert failures.count(office.ip, NOW + 6) == 0
    assert (await guess(w, office, "nope", now=NOW + 901, cseq=10)).status == 401
    assert failures.count(office.ip, NOW + 901) == 1


async def test_the_lock_does_not_count_a_new_addresss_right_answers_to_invite_either() -> None:
    from test_auth import answer, invite

    limit = AorLimit(failures=1, seconds=600, lock_seconds=900)
    failures = AuthFailures(failures=3, seconds=600)
    w = World()
    auth = RequestAuthenticator(lambda: w.registrar.index(), w.nonces, limit=limit,
                                failures=failures)  # fmt: skip
    limit.failed(AOR, NOW)
    office = FakeSource("192.0.2.70", 5060)
    for _ in range(5):
        challenge = auth.check(invite(), office, NOW)
        assert auth.check(invite(answer(challenge)), office, NOW) is not None  # refused
    assert failures.count(office.ip, NOW) == 0 and limit.refused == 5


async def test_a_source_the_domain_acl_denies_learns_no_password_and_is_counted() -> None:
    from support.data import domain
    from test_registrar import RESOURCES

    from routr.core.acl import DomainAcls
    from routr.data.index import Index
    from routr.data.snapshot import Snapshot
    from routr.models import parse_resource

    acl = {"allow": ["10.0.0.0/8"], "deny": ["0.0.0.0/0"]}
    guarded = Index(Snapshot.of([parse_resource(domain("sip.local", acl=acl)), *RESOURCES[1:]]))
    w, _ = limited_world()
    w.registrar.index = lambda: guarded
    w.registrar.acls = DomainAcls(w.registrar.index)
    w.registrar.failures = failures = AuthFailures(failures=100, seconds=600)
    denied = FakeSource("198.51.100.9", 5060)
    right = await guess(w, denied, "1234")
    wrong = await guess(w, denied, "nope", cseq=2)
    assert (right.status, right.reason) == (wrong.status, wrong.reason) == (401, "Unauthorized")
    assert [k for k, _, _ in right.headers] == [k for k, _, _ in wrong.headers]
    assert failures.count(denied.ip, NOW) == 2  # a denied source that guesses is banned
    assert await w.store.lookup(AOR) == []
    assert (await guess(w, FakeSource("10.1.2.3", 5060), "1234")).status == 200  # allowed


# -- bindings admit their addresses, also to INVITE and MESSAGE ----------------------------


async def test_a_binding_admits_its_address_through_the_lock_for_invite() -> None:
    from test_auth import answer, invite

    from routr.core.auth import BoundAddresses

    w, limit = limited_world(failures=1)
    bound = BoundAddresses()
    w.store.on_event(bound.on_event)
    limit.bound = bound.holds
    phone = FakeSource("192.0.2.80", 5070)
    assert (await guess(w, phone, "1234")).status == 200
    limit._good.clear()  # a restart, or another node: nothing remembered but the binding
    auth = RequestAuthenticator(lambda: w.registrar.index(), w.nonces, limit=limit)
    limit.failed(AOR, NOW)
    assert limit.locked(AOR, NOW)
    challenge = auth.check(invite(), phone, NOW)
    assert auth.check(invite(answer(challenge)), phone, NOW) is None  # the phone calls
    stranger = FakeSource("192.0.2.81", 5070)
    challenge = auth.check(invite(), stranger, NOW)
    assert auth.check(invite(answer(challenge)), stranger, NOW) is not None
    # The binding gone (and its success forgotten), so is the address's pass.
    await w.store.remove_all(AOR)
    limit._good.clear()
    challenge = auth.check(invite(), phone, NOW)
    assert auth.check(invite(answer(challenge)), phone, NOW) is not None
