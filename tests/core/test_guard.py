"""Source bans with a fake clock: floods, password guessing, scanners, trusted networks."""

from __future__ import annotations

from routr.core.auth import AuthFailures
from routr.core.guard import SCANNER_HITS, SCANNER_SECONDS, Guard
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
    assert guard.is_scanner("sipcli/v1.8")
    assert not guard.is_scanner("Linphone/5.2 (belle-sip)")
    # A scanner's name inside another word is not that scanner.
    assert not guard.is_scanner("Acme MySipClient/2.1")
    assert not guard.is_scanner("Grandstream smapper")
    assert not guard.is_scanner(None)
    assert not Guard(block_scanners=False).is_scanner("friendly-scanner")


def test_a_scanner_over_a_connection_is_dropped_and_its_source_banned_at_once():
    bans: list[Event] = []
    guard = Guard(["127.0.0.1/32"], flood_ban=30, emit=bans.append)
    assert guard.scanner("10.0.0.7", 5060, "friendly-scanner", 5.0, connected=True)
    assert bans == [SecurityBanned(timestamp=5.0, ip="10.0.0.7", reason="scanner", seconds=30)]
    assert not guard.admit("10.0.0.7", 6.0)  # dropped unparsed from now on
    assert guard.admit("10.0.0.7", 35.1)
    assert not guard.scanner("10.0.0.8", 5060, "Linphone/5.2 (belle-sip)", 5.0, connected=True)
    # A trusted network is dropped, never banned.
    assert guard.scanner("127.0.0.1", 5060, "sipvicious", 5.0, connected=True)
    assert guard.admit("127.0.0.1", 5.1)
    assert len(bans) == 1


def test_one_forged_scanner_datagram_bans_nobody():
    bans: list[Event] = []
    guard = Guard(flood_ban=30, emit=bans.append)
    for i in range(SCANNER_HITS - 1):
        assert guard.scanner("192.0.2.1", 5060, "friendly-scanner", 5.0 + i, connected=False)
    assert bans == [] and guard.admit("192.0.2.1", 10.0)  # dropped, not banned
    assert guard.scanner("192.0.2.1", 5060, "friendly-scanner", 10.0, connected=False)
    assert [b.ip for b in bans] == ["192.0.2.1"]  # a scan that goes on is banned
    assert not guard.admit("192.0.2.1", 11.0)


def test_scanner_datagrams_spread_out_do_not_add_up():
    bans: list[Event] = []
    guard = Guard(flood_ban=30, emit=bans.append)
    for i in range(SCANNER_HITS * 3):
        now = i * SCANNER_SECONDS / 2
        guard.scanner("192.0.2.1", 5060, "friendly-scanner", now, connected=False)
    assert bans == []


def test_known_parties_are_never_banned_for_a_user_agent():
    bans: list[Event] = []
    known = {("192.0.2.50", 5060)}  # a Gateway's address, or one holding a binding
    guard = Guard(flood_ban=30, emit=bans.append, known=lambda ip, port: (ip, port) in known)
    for i in range(SCANNER_HITS * 2):
        assert guard.scanner("192.0.2.50", 5060, "friendly-scanner", 5.0 + i, connected=False)
    assert guard.scanner("192.0.2.50", 5060, "friendly-scanner", 20.0, connected=True)
    assert bans == [] and guard.admit("192.0.2.50", 21.0)
    assert guard.scanner("192.0.2.51", 5060, "friendly-scanner", 21.0, connected=True)
    assert [b.ip for b in bans] == ["192.0.2.51"]
