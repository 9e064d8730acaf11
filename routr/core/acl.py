"""Access control lists: allow/deny by source address, most specific rule wins.

Rules are compiled once into per-family tables keyed by prefix length, so a lookup is at most
one dict probe per distinct prefix length; verdicts are cached per source address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

__all__ = ["Acl", "AclError"]

#: Cached verdicts are dropped all at once past this size (a scan from many sources must not
#: grow memory; a real client set is far smaller).
CACHE_MAX: Final = 10_000

_MAPPED_V4: Final = ipaddress.IPv6Network("::ffff:0:0/96")
_IPv4 = 4
_IPv6 = 6


class AclError(ValueError):
    """An ACL entry that is not an address, a CIDR network or an address/netmask."""

    def __init__(self, entry: object, reason: str) -> None:
        super().__init__(f"invalid ACL entry {entry!r}: {reason}")
        self.entry = entry


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Per family: [(prefix length, mask, {network address: allowed})], longest prefix first.
_Table = list[tuple[int, int, dict[int, bool]]]


def _parse_entry(entry: object) -> Network:
    if not isinstance(entry, str):
        raise AclError(entry, "expected a string")
    text = entry.strip()
    if not text:
        raise AclError(entry, "empty")
    try:
        # strict=False: "192.168.1.7/24" means its network, as in most firewalls.
        net: Network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise AclError(entry, str(exc)) from None
    # A rule written as an IPv4-mapped IPv6 network is an IPv4 rule.
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.subnet_of(_MAPPED_V4):
        v4 = ipaddress.IPv4Address(int(net.network_address) & 0xFFFFFFFF)
        net = ipaddress.IPv4Network((v4, net.prefixlen - 96))
    return net


def _compile(rules: list[tuple[Network, bool]], version: int) -> _Table:
    by_len: dict[int, dict[int, bool]] = {}
    for net, allow in rules:
        if net.version != version:
            continue
        slot = by_len.setdefault(net.prefixlen, {})
        key = int(net.network_address)
        # The same network both allowed and denied: deny wins.
        slot[key] = slot.get(key, True) and allow
    bits = 32 if version == _IPv4 else 128
    full = (1 << bits) - 1
    return [
        (length, full ^ ((1 << (bits - length)) - 1), table)
        for length, table in sorted(by_len.items(), reverse=True)
    ]


def _lookup(table: _Table, addr: int) -> bool:
    for _length, mask, nets in table:
        verdict = nets.get(addr & mask)
        if verdict is not None:
            return verdict
    return True  # no rule matches: allowed


class Acl:
    """Compiled allow/deny rules.

    The longest matching prefix decides; on equal length deny wins; no match allows.
    IPv4-mapped IPv6 sources (``::ffff:a.b.c.d``) are judged by the IPv4 rules.
    """

    __slots__ = ("_cache", "_v4", "_v6", "allow", "deny")

    def __init__(self, allow: Iterable[Network] = (), deny: Iterable[Network] = ()) -> None:
        self.allow: tuple[Network, ...] = tuple(allow)
        self.deny: tuple[Network, ...] = tuple(deny)
        rules = [(n, True) for n in self.allow] + [(n, False) for n in self.deny]
        self._v4 = _compile(rules, _IPv4)
        self._v6 = _compile(rules, _IPv6)
        self._cache: dict[str, bool] = {}

    @classmethod
    def from_lists(
        cls, allow: Iterable[str] | None = None, deny: Iterable[str] | None = None
    ) -> Acl:
        """Build from lists of ``10.0.0.0/8``, ``192.168.1.0/255.255.255.0``, ``::1`` ...;
        a bad entry raises :class:`AclError` naming it."""
        return cls(
            [_parse_entry(e) for e in allow or ()],
            [_parse_entry(e) for e in deny or ()],
        )

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any] | None) -> Acl:
        """Build from a config mapping ``{allow: [...], deny: [...]}`` (None: allow all)."""
        if not spec:
            return cls()
        allow, deny = spec.get("allow"), spec.get("deny")
        for name, value in (("allow", allow), ("deny", deny)):
            if isinstance(value, str) or not (value is None or isinstance(value, Iterable)):
                raise AclError(value, f"{name} must be a list")
        return cls.from_lists(allow, deny)

    @property
    def empty(self) -> bool:
        """True when there are no rules (everything is allowed)."""
        return not (self._v4 or self._v6)

    def allowed(self, ip: str) -> bool:
        """Whether packets from ``ip`` pass. An unparsable address raises ValueError."""
        if not (self._v4 or self._v6):
            return True
        cached = self._cache.get(ip)
        if cached is not None:
            return cached
        addr = ipaddress.ip_address(ip)
        if isinstance(addr, ipaddress.IPv6Address):
            mapped = addr.ipv4_mapped
            verdict = (
                _lookup(self._v4, int(mapped))
                if mapped is not None
                else _lookup(self._v6, int(addr))
            )
        else:
            verdict = _lookup(self._v4, int(addr))
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[ip] = verdict
        return verdict

    def __repr__(self) -> str:
        return f"Acl(allow={[str(n) for n in self.allow]!r}, deny={[str(n) for n in self.deny]!r})"


class DomainAcls:
    """Each Domain's ``accessControlList``, compiled once per index.

    ``index`` returns the current :class:`routr.data.index.Index`; a new index (the data
    changed) drops the compiled ACLs.
    """

    def __init__(self, index: Callable[[], Any]) -> None:
        self._index = index
        self._of: Any = None
        self._acls: dict[str, Acl] = {}

    def allowed(self, domain: str, ip: str) -> bool:
        """Whether ``ip`` may send requests into ``domain`` (no ACL: yes)."""
        idx = self._index()
        if self._of is not idx:
            self._acls = {}
            self._of = idx
        acl = self._acls.get(domain)
        if acl is None:
            resource = idx.domain(domain)
            lists = resource.spec.context.accessControlList if resource is not None else None
            acl = Acl.from_lists(lists.allow, lists.deny) if lists is not None else Acl()
            self._acls[domain] = acl
        return acl.allowed(ip)
