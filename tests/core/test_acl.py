"""ACL: most specific rule wins, deny breaks ties, IPv6 and IPv4-mapped sources."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routr.core import acl as acl_module
from routr.core.acl import Acl, AclError


def test_empty_acl_allows_everything() -> None:
    acl = Acl.from_lists()
    assert acl.empty
    assert acl.allowed("203.0.113.9") and acl.allowed("2001:db8::1")
    assert Acl.from_mapping(None).empty and Acl.from_mapping({}).empty


def test_spec_example_deny_all_allow_lan() -> None:
    acl = Acl.from_mapping({"deny": ["0.0.0.0/0"], "allow": ["192.168.0.0/16"]})
    assert acl.allowed("192.168.1.20")
    assert not acl.allowed("10.1.2.3")
    assert not acl.allowed("203.0.113.9")
    assert acl.allowed("2001:db8::1")  # an IPv4 rule says nothing about IPv6 sources


def test_no_matching_rule_allows() -> None:
    acl = Acl.from_lists(deny=["10.0.0.0/8"])
    assert not acl.allowed("10.9.9.9")
    assert acl.allowed("11.0.0.1")


def test_most_specific_allow_beats_broader_deny() -> None:
    acl = Acl.from_lists(allow=["10.1.2.3"], deny=["10.0.0.0/8"])
    assert acl.allowed("10.1.2.3")
    assert not acl.allowed("10.1.2.4")


def test_most_specific_deny_beats_broader_allow() -> None:
    acl = Acl.from_lists(allow=["10.0.0.0/8"], deny=["10.1.0.0/16"])
    assert acl.allowed("10.2.0.1")
    assert not acl.allowed("10.1.200.1")


def test_nested_rules_alternate() -> None:
    acl = Acl.from_lists(
        allow=["0.0.0.0/0", "10.1.0.0/16", "10.1.2.0/28"],
        deny=["10.0.0.0/8", "10.1.2.0/24", "10.1.2.5/32"],
    )
    expected = {
        "8.8.8.8": True,
        "10.9.0.1": False,
        "10.1.9.9": True,
        "10.1.2.200": False,
        "10.1.2.1": True,
        "10.1.2.5": False,
    }
    for ip, verdict in expected.items():
        assert acl.allowed(ip) is verdict, ip


def test_equal_prefix_deny_wins() -> None:
    acl = Acl.from_lists(allow=["192.168.1.0/24"], deny=["192.168.1.0/24"])
    assert not acl.allowed("192.168.1.1")
    acl = Acl.from_lists(allow=["192.168.1.9"], deny=["192.168.1.9/32"])
    assert not acl.allowed("192.168.1.9")
    # written differently but the same network
    acl = Acl.from_lists(allow=["192.168.1.77/24"], deny=["192.168.1.0/255.255.255.0"])
    assert not acl.allowed("192.168.1.1")


def test_mask_form() -> None:
    acl = Acl.from_lists(deny=["192.168.1.0/255.255.255.0"])
    assert not acl.allowed("192.168.1.254")
    assert acl.allowed("192.168.2.1")
    assert acl.deny == (ipaddress.IPv4Network("192.168.1.0/24"),)


def test_ipv6_rules() -> None:
    acl = Acl.from_lists(allow=["::1", "2001:db8:1::/48"], deny=["2001:db8::/32"])
    assert acl.allowed("::1")
    assert acl.allowed("2001:db8:1:ffff::1")
    assert not acl.allowed("2001:db8:2::1")
    assert acl.allowed("2001:db9::1")
    assert acl.allowed("10.0.0.1")  # IPv6 rules say nothing about IPv4 sources
    deny_all6 = Acl.from_lists(deny=["::/0"], allow=["fe80::/10"])
    assert deny_all6.allowed("fe80::1%eth0")
    assert not deny_all6.allowed("2001:db8::1")


def test_ipv4_mapped_sources_use_ipv4_rules() -> None:
    acl = Acl.from_lists(allow=["192.168.0.0/16"], deny=["0.0.0.0/0", "::/0"])
    assert acl.allowed("::ffff:192.168.1.2")
    assert not acl.allowed("::ffff:10.0.0.1")
    assert not acl.allowed("2001:db8::1")


def test_ipv4_mapped_rules_are_ipv4_rules() -> None:
    acl = Acl.from_lists(deny=["::ffff:10.0.0.0/104"])
    assert acl.deny == (ipaddress.IPv4Network("10.0.0.0/8"),)
    assert not acl.allowed("10.2.3.4")
    assert not acl.allowed("::ffff:10.2.3.4")
    assert acl.allowed("11.0.0.1")


@pytest.mark.parametrize(
    "entry",
    [
        "",
        "  ",
        "10.0.0.0/33",
        "300.1.1.1",
        "192.168.1.0/255.0.255.0",
        "2001:db8::/129",
        "localhost",
        "10.0.0.0/8/8",
        10,
        None,
    ],
)
def test_bad_entries_name_the_entry(entry: object) -> None:
    with pytest.raises(AclError) as info:
        Acl.from_lists(allow=["10.0.0.0/8", entry])  # type: ignore[list-item]
    assert isinstance(info.value, ValueError)
    assert info.value.entry == entry
    assert repr(entry) in str(info.value)
    with pytest.raises(AclError):
        Acl.from_lists(deny=[entry])  # type: ignore[list-item]


def test_mapping_must_hold_lists() -> None:
    with pytest.raises(AclError):
        Acl.from_mapping({"allow": "10.0.0.0/8"})
    with pytest.raises(AclError):
        Acl.from_mapping({"deny": 5})


def test_bad_source_address_raises_value_error() -> None:
    acl = Acl.from_lists(deny=["10.0.0.0/8"])
    with pytest.raises(ValueError):
        acl.allowed("not-an-ip")


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acl_module, "CACHE_MAX", 50)
    acl = Acl.from_lists(deny=["10.0.0.0/8"])
    for i in range(500):
        assert not acl.allowed(f"10.0.{i // 256}.{i % 256}")
        assert len(acl._cache) <= 50
    # cached answers stay right
    assert not acl.allowed("10.0.1.1") and not acl.allowed("10.0.1.1")
    assert acl.allowed("8.8.8.8") and acl.allowed("8.8.8.8")


_RULES = st.lists(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32), st.booleans()), max_size=12
)


@given(_RULES, st.integers(0, 2**32 - 1))
def test_matches_brute_force_longest_prefix(
    rules: list[tuple[int, int, bool]], addr_int: int
) -> None:
    nets = [(ipaddress.IPv4Network((a, p), strict=False), allow) for a, p, allow in rules]
    acl = Acl.from_lists(
        allow=[str(n) for n, allow in nets if allow],
        deny=[str(n) for n, allow in nets if not allow],
    )
    addr = ipaddress.IPv4Address(addr_int)
    matching = [(n.prefixlen, allow) for n, allow in nets if addr in n]
    if matching:
        best = max(p for p, _ in matching)
        expected = all(allow for p, allow in matching if p == best)
    else:
        expected = True
    assert acl.allowed(str(addr)) is expected
    assert acl.allowed(f"::ffff:{addr}") is expected
