"""Source bans with a fake clock: floods, password guessing, scanners, trusted networks."""

from __future__ import annotations

from routr.core.auth import AuthFailures
from routr.core.guard import Guard
from routr.events import Event, SecurityBanned


def test_flood_bans_for_the_ban_time_then_admits_again():
    bans: list[Event] = []
    guard = Guard(flood_requests=3, flood_seconds=2, flood_ban=10, emit=bans.append)
    assert all(guard.admit("10.0.0.1", 100.0) for _ in range(3))
    assert not guard.admit("10.0.0.1", 100.5)  # the 4th within 2 s
    assert bans == [SecurityBanned(timestamp=100.5, ip="10.0.0.1", reason="flood", seconds=10)]
    assert not guard.admit("10.0.0.1", 110.4)
    assert guard.admit("10.0.0.1", 110.6)
    assert guard.admit("10.0.0.2", 100.5)  # other sources are not affected


def test_a_new_window_starts_the_count_again():
    guard = Guard(flood_requests=2, flood_seconds=1, flood_ban=10)
    for second in range(10):
        assert guard.admit("10.0.0.1", float(second))
        assert guard.admit("10.0.0.1", second + 0.5)


def test_trusted_sources_are_never_banned():
    guard = Guard(["127.0.0.1/32", "::1/128"], flood_requests=1, flood_seconds=10)
    assert all(guard.admit("127.0.0.1", 1.0) for _ in range(50))
    assert all(guard.admit("::1", 1.0) for _ in range(50))
    assert guard.admit("127.0.0.2", 1.0)
    assert not guard.admit("127.0.0.2", 1.0)


def test_authentication_failures_ban():
    failures = AuthFailures(failures=3, seconds=60)
    guard = Guard(failures=failures, auth_ban=100)
    for _ in range(2):
        failures.record("10.0.0.9", 5.0)
    assert guard.admit("10.0.0.9", 6.0)
    failures.record("10.0.0.9", 7.0)
    assert not guard.admit("10.0.0.9", 8.0)
    assert set(guard.banned(8.0)) == {"10.0.0.9"}
    assert guard.admit("10.0.0.9", 108.1)  # served its ban; the count started afresh


def test_scanner_user_agents():
    guard = Guard()
    assert guard.is_scanner("friendly-scanner")
    assert guard.is_scanner("SIPVicious 0.3.4")
    assert not guard.is_scanner("Linphone/5.2 (belle-sip)")
    assert not guard.is_scanner(None)
    assert not Guard(block_scanners=False).is_scanner("friendly-scanner")


def test_a_scanner_is_dropped_and_its_source_banned_once():
    bans: list[Event] = []
    guard = Guard(["127.0.0.1/32"], flood_ban=30, emit=bans.append)
    assert guard.scanner("10.0.0.7", "friendly-scanner", 5.0)
    assert bans == [SecurityBanned(timestamp=5.0, ip="10.0.0.7", reason="scanner", seconds=30)]
    assert not guard.admit("10.0.0.7", 6.0)  # dropped unparsed from now on
    assert guard.admit("10.0.0.7", 35.1)
    assert not guard.scanner("10.0.0.8", "Linphone/5.2 (belle-sip)", 5.0)
    # A trusted network is dropped, never banned.
    assert guard.scanner("127.0.0.1", "sipvicious", 5.0) and guard.admit("127.0.0.1", 5.1)
    assert len(bans) == 1
