"""The routing table of SPEC.md §4: who calls whom decides the strategy, resources decide
the targets. Configured, not programmed.

| caller            | callee                      | strategy                    |
|-------------------|-----------------------------|-----------------------------|
| Agent of D        | AOR in D                    | INTRA_DOMAIN                |
| Agent of D        | AOR of another local domain | INTER_DOMAIN (403)          |
| Agent of D        | a Number                    | DOMAIN_INGRESS              |
| Agent of D        | anything else               | DOMAIN_EGRESS               |
| Gateway or anyone | a Number                    | DOMAIN_INGRESS              |
| Peer              | an AOR of a local domain    | INTRA_DOMAIN                |
| Peer              | anything else               | PEER_EGRESS                 |
| anyone else       | AOR of a local domain       | INTRA_DOMAIN (inbound)      |
| anyone else       | anything else               | 403: no open relay          |
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from routr.core.acl import Acl
from routr.core.auth import RequestAuthenticator
from routr.core.proxy import Decision, Hop, Target
from routr.data.index import Index
from routr.location.binding import Binding
from routr.location.store import LocationStore
from routr.models.resources import Agent, Gateway, Number, Peer
from routr.sip.message import Request
from routr.sip.uri import SipURI, TelURI

_log = logging.getLogger("routr.router")

INTRA_DOMAIN = "INTRA_DOMAIN"
INTER_DOMAIN = "INTER_DOMAIN"
DOMAIN_EGRESS = "DOMAIN_EGRESS"
DOMAIN_INGRESS = "DOMAIN_INGRESS"
PEER_EGRESS = "PEER_EGRESS"


class SourceLike(Protocol):
    ip: str
    port: int


class Caller:
    """Who sent the request, as the routing table sees it."""

    __slots__ = ("agent", "domain", "gateway", "peer")

    def __init__(
        self,
        agent: Agent | None = None,
        domain: str | None = None,
        peer: Peer | None = None,
        gateway: Gateway | None = None,
    ) -> None:
        self.agent = agent
        self.domain = domain
        self.peer = peer
        self.gateway = gateway


class Router:
    """``await router(request, source)`` -> :class:`Decision`."""

    def __init__(
        self,
        index: Callable[[], Index],
        location: LocationStore,
        *,
        use_to_as_aor: bool = False,
        auth: RequestAuthenticator | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.index = index
        self.location = location
        self.use_to_as_aor = use_to_as_aor
        self.auth = auth
        self.clock = clock
        self._acls: dict[str, Acl] = {}
        self._acls_of: Index | None = None
        self._rr = itertools.count()
        self._affinity: dict[str, tuple[str, str]] = {}  # Call-ID -> (aor, contact)

    async def __call__(self, request: Request, source: Any) -> Decision:
        if self.auth is not None:
            challenge = self.auth.check(request, source, self.clock())
            if challenge is not None:
                return Decision(response=challenge)
        idx = self.index()
        caller = await self.classify(request, source, idx)
        callee = request.to.uri if self.use_to_as_aor else request.uri
        if isinstance(callee, TelURI):
            number = idx.number(callee.number)
            if number is None:
                return Decision.reject(404, "Number Not Found")
            return await self._ingress(request, number, source)
        if not isinstance(callee, SipURI) or callee.user is None:
            return Decision.reject(404)
        user = callee.user_unescaped or ""
        host = callee.host_key
        local = idx.is_local_domain(host)
        if caller.agent is not None and caller.domain is not None:
            if local and host == caller.domain:
                return await self._intra(request, f"sip:{user}@{host}", source, host)
            number = idx.number(user)
            if number is not None and (local or _is_number_like(user)):
                return await self._ingress(request, number, source)
            if local:  # another local domain than the caller's
                return Decision.reject(403, "Inter-Domain Calls Not Allowed")
            return self._egress(request, caller, user, host, local, idx)
        if local:
            return await self._intra(request, f"sip:{user}@{host}", source, host)
        number = idx.number(user) if _is_number_like(user) else None
        if number is not None:
            return await self._ingress(request, number, source)
        if caller.peer is not None:
            return self._peer_egress(request, caller.peer, idx)
        return Decision.reject(403, "Forbidden: Not A Local Target")

    async def classify(self, request: Request, source: Any, idx: Index) -> Caller:
        gateway = idx.gateway_from(source.ip, source.port)
        if gateway is not None:
            return Caller(gateway=gateway)
        from_uri = request.from_.uri
        if isinstance(from_uri, SipURI) and from_uri.user is not None:
            user = from_uri.user_unescaped or ""
            host = from_uri.host_key
            agent = idx.agent(user, host)
            if agent is not None:
                return Caller(agent=agent, domain=host)
            peer = idx.peer(user)
            if peer is not None and await self._from_peer_address(peer, source):
                return Caller(peer=peer)
        return Caller()

    async def _from_peer_address(self, peer: Peer, source: Any) -> bool:
        """A Peer is trusted by the address it registered from, not by its From."""
        device = peer.spec.device
        if device is None:
            return False
        for binding in await self.location.lookup(f"sip:{peer.spec.credentials.username}@{device}"):
            if binding.source_ip == source.ip:
                return True
        return False

    def _acl_allows(self, domain: str, ip: str) -> bool:
        """The domain's ACL (SPEC.md §3), compiled once per index."""
        idx = self.index()
        if self._acls_of is not idx:
            self._acls = {}
            self._acls_of = idx
        acl = self._acls.get(domain)
        if acl is None:
            resource = idx.domain(domain)
            lists = resource.spec.context.accessControlList if resource is not None else None
            acl = Acl.from_lists(lists.allow, lists.deny) if lists is not None else Acl()
            self._acls[domain] = acl
        return acl.allowed(ip)

    # -- strategies ---------------------------------------------------------------------

    async def _intra(self, request: Request, aor: str, source: Any, domain: str) -> Decision:
        if not self._acl_allows(domain, source.ip):
            return Decision.reject(403, "Forbidden By Domain ACL")
        bindings = await self.location.lookup(aor)
        if not bindings:
            return Decision.reject(480, "Temporarily Unavailable")
        return Decision(self._targets(request, aor, bindings))

    async def _ingress(self, request: Request, number: Number, source: Any) -> Decision:
        aor = number.spec.location.aorLink
        host = aor.split("@", 1)[-1].lower()
        if not self._acl_allows(host, source.ip):
            return Decision.reject(403, "Forbidden By Domain ACL")
        bindings = await self.location.lookup(aor.lower() if aor.startswith("sip") else aor)
        if not bindings:
            return Decision.reject(480, "Temporarily Unavailable")
        return Decision(self._targets(request, aor, bindings))

    def _egress(
        self, request: Request, caller: Caller, user: str, host: str, local: bool, idx: Index
    ) -> Decision:
        assert caller.domain is not None
        number = idx.egress_number(caller.domain, user)
        if number is None:
            if local:
                return Decision.reject(404, "No Egress Rule Matched")
            return Decision.reject(403, "Forbidden: No Egress Rule Matched")
        return self._to_gateway(user, number, idx)

    def _peer_egress(self, request: Request, peer: Peer, idx: Index) -> Decision:
        callee = request.uri
        assert isinstance(callee, SipURI)
        dod = request.get("x-dod-number")
        from_uri = request.from_.uri
        key = dod or (from_uri.user_unescaped if isinstance(from_uri, SipURI) else None)
        if not key:
            return Decision.reject(400, "Missing X-DOD-Number")
        number = idx.number(key)
        if number is None:
            return Decision.reject(404, "Number Not Found")
        return self._to_gateway(callee.user_unescaped or "", number, idx, ("X-DOD-Number",))

    def _to_gateway(
        self, user: str, number: Number, idx: Index, remove: tuple[str, ...] = ()
    ) -> Decision:
        gateway = idx.gateway_by_ref(number.metadata.gwRef)
        if gateway is None:
            return Decision.reject(503, "Gateway Not Found")
        spec = gateway.spec
        transport = spec.transport
        port = spec.port or (5061 if transport in ("tls", "wss") else 5060)
        tparam = f";transport={transport}" if transport != "udp" else ""
        uri = f"sip:{user}@{_hostport(spec.host, port)}{tparam}"
        tel = number.spec.location.telUrl
        digits = tel.split(":", 1)[-1]
        identity = f"<sip:{digits}@{spec.host}>"
        headers = [
            ("P-Asserted-Identity", identity),
            ("Remote-Party-ID", f"{identity};screen=yes;party=calling"),
        ]
        return Decision([Target(uri, Hop(transport, spec.host, port), headers,
                                ("P-Asserted-Identity", "Remote-Party-ID", *remove))])  # fmt: skip

    # -- bindings to targets -------------------------------------------------------------

    def _targets(self, request: Request, aor: str, bindings: list[Binding]) -> list[Target]:
        if len(bindings) > 1 and bindings[0].kind == "Peer":
            bindings = [self._pick(request, aor, bindings)]
        return [_target(b) for b in bindings]

    def _pick(self, request: Request, aor: str, bindings: list[Binding]) -> Binding:
        """One binding of a Peer: the call's earlier choice, else round-robin."""
        call_id = request.call_id
        chosen = self._affinity.get(call_id)
        if chosen is not None and chosen[0] == aor:
            for binding in bindings:
                if binding.contact == chosen[1]:
                    return binding
        binding = bindings[next(self._rr) % len(bindings)]
        if len(self._affinity) > 100_000:
            self._affinity.clear()
        self._affinity[call_id] = (aor, binding.contact)
        return binding


def _target(binding: Binding) -> Target:
    transport, host, port, conn_id = binding.next_hop()
    return Target(binding.contact, Hop(transport, host, port, conn_id))


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_number_like(user: str) -> bool:
    digits = user[1:] if user.startswith("+") else user
    return digits.isdigit()
