"""Lookups for the SIP hot path, compiled once from a snapshot (plain dicts, no validation)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence

from routr.models import Agent, Domain, Gateway, Number, Peer, User, tel_digits
from routr.models.fields import is_ip

from .snapshot import Snapshot

log = logging.getLogger(__name__)

Resolver = Callable[[str], Awaitable[Sequence[str]]]


async def system_resolver(host: str) -> list[str]:
    """Addresses of ``host`` from the system resolver (run in the loop's thread pool)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def normalize_ip(ip: str) -> str:
    """One spelling per address: compressed IPv6, IPv4-mapped IPv6 as IPv4."""
    try:
        addr = ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


class EgressRule:
    """One compiled egress policy of a domain."""

    __slots__ = ("number_ref", "pattern")

    def __init__(self, pattern: re.Pattern[str], number_ref: str) -> None:
        self.pattern = pattern
        self.number_ref = number_ref


class Index:
    """Domain by URI, agent by (user, domain), peer/user by username, number by tel digits,
    gateway by ref and by source (ip, port), egress rules per domain.

    Build with ``await Index.build(snapshot)`` (resolves gateway host names) or directly with
    ``Index(snapshot, addresses)`` where ``addresses`` maps host names to IPs.
    """

    __slots__ = (
        "_agents",
        "_domains",
        "_egress",
        "_gateway_refs",
        "_gateways_by_addr",
        "_number_refs",
        "_numbers",
        "_peers",
        "_users",
        "gateways",
        "snapshot",
    )

    def __init__(self, snapshot: Snapshot, addresses: Mapping[str, Sequence[str]] | None = None):
        addresses = addresses or {}
        self.snapshot = snapshot
        domains = [d for d in snapshot.items("Domain") if isinstance(d, Domain)]
        self._domains: dict[str, Domain] = {d.uri: d for d in domains}
        self._egress: dict[str, tuple[EgressRule, ...]] = {
            d.uri: tuple(
                EgressRule(re.compile(p.rule), p.numberRef) for p in d.spec.context.policies
            )
            for d in domains
        }
        self._agents: dict[tuple[str, str], Agent] = {
            (a.spec.credentials.username, dom.lower()): a
            for a in snapshot.items("Agent")
            if isinstance(a, Agent)
            for dom in a.spec.domains
        }
        self._peers: dict[str, Peer] = {
            p.spec.credentials.username: p for p in snapshot.items("Peer") if isinstance(p, Peer)
        }
        self._users: dict[str, User] = {
            u.spec.credentials.username: u for u in snapshot.items("User") if isinstance(u, User)
        }
        numbers = [n for n in snapshot.items("Number") if isinstance(n, Number)]
        self._numbers: dict[str, Number] = {n.digits: n for n in numbers}
        self._number_refs: dict[str, Number] = {n.ref: n for n in numbers}
        self.gateways: tuple[Gateway, ...] = tuple(
            g for g in snapshot.items("Gateway") if isinstance(g, Gateway)
        )
        self._gateway_refs: dict[str, Gateway] = {g.ref: g for g in self.gateways}
        self._gateways_by_addr: dict[tuple[str, int | None], Gateway] = {}
        for g in self.gateways:
            host = g.spec.host
            ips = [host] if is_ip(host) else addresses.get(host.lower(), ())
            for ip in ips:
                self._gateways_by_addr.setdefault((normalize_ip(ip), g.spec.port), g)

    @classmethod
    async def build(cls, snapshot: Snapshot, resolver: Resolver | None = None) -> Index:
        """Resolve every gateway host name (failures are logged and skipped), then index."""
        resolve = resolver or system_resolver
        hosts = sorted(
            {
                g.spec.host.lower()
                for g in snapshot.items("Gateway")
                if isinstance(g, Gateway) and not is_ip(g.spec.host)
            }
        )
        results = await asyncio.gather(*(resolve(h) for h in hosts), return_exceptions=True)
        addresses: dict[str, Sequence[str]] = {}
        for host, result in zip(hosts, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("gateway host %s does not resolve: %s", host, result)
            else:
                addresses[host] = result
        return cls(snapshot, addresses)

    # --- lookups ------------------------------------------------------------------------

    def domain(self, uri: str) -> Domain | None:
        return self._domains.get(uri.lower())

    def is_local_domain(self, host: str) -> bool:
        return host.lower() in self._domains

    def agent(self, username: str, domain: str) -> Agent | None:
        return self._agents.get((username, domain.lower()))

    def peer(self, username: str) -> Peer | None:
        return self._peers.get(username)

    def user(self, username: str) -> User | None:
        return self._users.get(username)

    def number(self, tel_or_user: str) -> Number | None:
        """By ``tel:+1...``, ``+1...`` or ``1...``: the + and separators do not matter."""
        return self._numbers.get(tel_digits(tel_or_user))

    def number_by_ref(self, ref: str) -> Number | None:
        return self._number_refs.get(ref)

    def gateway_by_ref(self, ref: str) -> Gateway | None:
        return self._gateway_refs.get(ref)

    def gateway_from(self, ip: str, port: int) -> Gateway | None:
        """The gateway a packet from ``ip:port`` comes from: a gateway that sets a port
        must match it, one without a port matches any source port."""
        ip = normalize_ip(ip)
        return self._gateways_by_addr.get((ip, port)) or self._gateways_by_addr.get((ip, None))

    def egress_rules(self, domain: str) -> tuple[EgressRule, ...]:
        return self._egress.get(domain.lower(), ())

    def egress_number(self, domain: str, callee_user: str) -> Number | None:
        """The Number of the first egress policy of ``domain`` whose rule matches the whole
        callee user part (``re.fullmatch``), or None."""
        found = self.egress_match(domain, callee_user)
        return found[1] if found is not None else None

    def egress_match(self, domain: str, callee_user: str) -> tuple[EgressRule, Number] | None:
        """The first egress policy of ``domain`` matching ``callee_user``, and its Number."""
        for rule in self.egress_rules(domain):
            if rule.pattern.fullmatch(callee_user):
                number = self._number_refs.get(rule.number_ref)
                return (rule, number) if number is not None else None
        return None
