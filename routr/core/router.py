"""The routing table: who calls whom decides the strategy, resources decide
the targets. Configured, not programmed.

| caller            | callee                                  | strategy                    |
|-------------------|-----------------------------------------|-----------------------------|
| Agent of D        | AOR known in D                          | INTRA_DOMAIN                |
| Agent of D        | AOR known in another local domain       | INTER_DOMAIN (403)          |
| Agent of D        | a Number                                | DOMAIN_INGRESS (hairpin)    |
| Agent of D        | anything else                           | DOMAIN_EGRESS               |
| Gateway or anyone | a Number (tel: URI or user, + optional) | DOMAIN_INGRESS              |
| Peer              | AOR known in a local domain             | INTRA_DOMAIN                |
| Peer              | anything else                           | PEER_EGRESS                 |
| anyone else       | AOR of a local domain                   | INTRA_DOMAIN (inbound)      |
| anyone else       | anything else                           | 403: no open relay          |

"Known" AOR: an Agent of that domain, a Peer whose device is that domain, or any live
binding of ``sip:user@domain``. An unknown user at a local domain goes out by the egress
policies: phones put their own domain in the Request-URI of a PSTN call.

With ``authenticateRequests`` on, whatever the table refuses to "anyone else" (480, 403,
404, a domain ACL's 403), and every OPTIONS of theirs, goes out as the authenticator's 407
instead (:meth:`Router.__call__`), so a stranger cannot tell users, domains or Numbers apart;
:meth:`Router.route` (the dry run) still gives the table's own answer.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from routr.core.acl import DomainAcls
from routr.core.auth import RequestAuthenticator
from routr.core.calls import Calls
from routr.core.routing import Decision, Hop, Target
from routr.data.index import Index
from routr.events import Event
from routr.location.binding import Binding
from routr.location.memory import MemoryStore
from routr.location.store import LocationStore
from routr.models.resources import Agent, Gateway, Number, Peer
from routr.sip.address import parse_address
from routr.sip.errors import ParseError
from routr.sip.message import Request
from routr.sip.uri import SipURI, TelURI, escape_user, host_ref, hostport

_log = logging.getLogger("routr.router")

INTRA_DOMAIN = "INTRA_DOMAIN"
INTER_DOMAIN = "INTER_DOMAIN"
DOMAIN_EGRESS = "DOMAIN_EGRESS"
DOMAIN_INGRESS = "DOMAIN_INGRESS"
PEER_EGRESS = "PEER_EGRESS"

ANONYMOUS = '"Anonymous" <sip:anonymous@anonymous.invalid>'
#: Headers a caller may not set itself on the way to a gateway (we assert the identity).
IDENTITY_HEADERS = ("P-Asserted-Identity", "Remote-Party-ID", "P-Preferred-Identity")


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

    @property
    def ref(self) -> str | None:
        known = self.agent or self.peer or self.gateway
        return known.ref if known is not None else None


class EgressRoute:
    """What a call to a Number's Gateway needs, derived once per index: the Request-URI's
    host part, the next hop, the asserted identity and the Gateway's credentials."""

    __slots__ = ("credentials", "gateway_ref", "hop", "identity", "rpid", "rpid_private",
                 "where")  # fmt: skip

    def __init__(self, number: Number, gateway: Gateway) -> None:
        spec = gateway.spec
        transport = spec.transport
        port = spec.port or (5061 if transport in ("tls", "wss") else 5060)
        tparam = f";transport={transport}" if transport != "udp" else ""
        self.where = (hostport(spec.host, spec.port) if spec.port else host_ref(spec.host)) + tparam
        self.hop = Hop(transport, spec.host, port)
        digits = number.spec.location.telUrl.split(":", 1)[-1]
        self.identity = f"<sip:{digits}@{host_ref(spec.host)}>"
        self.rpid = f"{self.identity};screen=yes;party=calling"
        self.rpid_private = self.rpid + ";privacy=full"
        self.gateway_ref = gateway.ref
        credentials = spec.credentials
        self.credentials = (credentials.username, credentials.secret) if credentials else None


class Compiled:
    """Per-index derived routing data, filled on first use; a new index starts afresh."""

    __slots__ = ("_aor_links", "_egress")

    def __init__(self) -> None:
        self._egress: dict[str, EgressRoute | None] = {}
        self._aor_links: dict[str, tuple[str, str]] = {}

    def egress(self, number: Number, idx: Index) -> EgressRoute | None:
        try:
            return self._egress[number.ref]
        except KeyError:
            gateway = idx.gateway_by_ref(number.metadata.gwRef)
            route = EgressRoute(number, gateway) if gateway is not None else None
            self._egress[number.ref] = route
            return route

    def aor_link(self, number: Number) -> tuple[str, str]:
        """The Number's aorLink with its host in lower case, and that host."""
        link = self._aor_links.get(number.ref)
        if link is None:
            aor = number.spec.location.aorLink
            host = aor.split("@", 1)[-1].lower()
            link = self._aor_links[number.ref] = (f"{aor.rsplit('@', 1)[0]}@{host}", host)
        return link


class Router:
    """``await router(request, source)`` -> :class:`Decision`."""

    def __init__(
        self,
        index: Callable[[], Index],
        location: LocationStore,
        *,
        use_to_as_aor: bool = False,
        auth: RequestAuthenticator | None = None,
        clock: Callable[[], float],
        calls: Calls | None = None,
        acls: DomainAcls | None = None,
    ) -> None:
        self.index = index
        self.location = location
        self.use_to_as_aor = use_to_as_aor
        self.auth = auth
        self.clock = clock
        self.calls = calls if calls is not None else Calls(clock, _no_event)
        self.acls = acls or DomainAcls(index)
        #: Lookups whose only purpose is the time they take (so that a stranger cannot tell
        #: our domains, users or Peers by how long an answer takes) are made only when the
        #: store is remote: a memory lookup takes a microsecond, far below the noise of
        #: parsing and digest work, while a Redis one is a round trip. They stay one after
        #: the other: the paths they pad make theirs one after the other.
        self._pad = not isinstance(location, MemoryStore)
        self._rr = itertools.count()
        self._compiled_for: Index | None = None
        self._compiled_of = Compiled()

    async def __call__(self, request: Request, source: Any) -> Decision:
        auth = self.auth
        if auth is not None:
            challenge = auth.check(request, source, self.clock())
            if challenge is not None:
                # A stranger's request routed below costs two location lookups (who the From
                # is, who the target is) before its challenge; this one costs the same, so
                # the time does not tell whether the From domain is ours.
                await self._padding(_aor_of(request.from_.uri))
                await self._padding(_aor_of(request.uri))
                return Decision(response=challenge)
        caller, decision = await self._route(request, source)
        stranger = caller.ref is None and auth is not None and not auth.trusts(source)
        if stranger and auth is not None and _refused(request, decision):
            # A stranger learns nothing from a refusal: it is the challenge an Agent with a
            # wrong password gets, whoever and wherever the target is. (What is delivered
            # is answered by the callee.)
            refusal = auth.refusal(request, source, self.clock())
            if refusal is not None:
                _log.debug("%s from a stranger at %s: %d %s, answered %d", request.method,
                           source.ip, decision.status, decision.reason, refusal.status)  # fmt: skip
                return Decision(response=refusal, strategy=decision.strategy)
        return decision

    async def route(self, request: Request, source: Any) -> Decision:
        """The routing table alone, as for an authenticated request (a dry run asks
        ``auth`` separately: what would be challenged is not the route)."""
        return (await self._route(request, source))[1]

    async def _route(self, request: Request, source: Any) -> tuple[Caller, Decision]:
        idx = self.index()
        caller = await self.classify(request, source, idx)
        callee = request.to.uri if self.use_to_as_aor else request.uri
        if isinstance(callee, TelURI):
            user, host = callee.number, None
        elif isinstance(callee, SipURI) and callee.user is not None:
            user, host = callee.user_unescaped or "", callee.host_key
        else:
            return caller, Decision.reject(404, "Not Found")
        if caller.agent is not None:
            return caller, await self._from_agent(request, caller, user, host, source, idx)
        return caller, await self._from_other(request, caller, user, host, source, idx)

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
            if await self._from_peer_address(peer, user, host, source):
                assert peer is not None
                return Caller(peer=peer)
        return Caller()

    async def _from_peer_address(
        self, peer: Peer | None, user: str, from_host: str, source: Any
    ) -> bool:
        """A Peer is trusted by the address it registered from, not by its From. A From
        user that is no Peer costs the same lookup, so the time does not tell Peer names."""
        if peer is None:
            await self._padding(f"sip:{user}@{from_host}")
            return False
        device = (peer.spec.device or from_host).lower()
        aor = f"sip:{peer.spec.credentials.username}@{device}"
        return any(b.source_ip == source.ip for b in await self.location.lookup(aor))

    # -- the table ----------------------------------------------------------------------

    async def _from_agent(
        self, request: Request, caller: Caller, user: str, host: str | None, source: Any,
        idx: Index,
    ) -> Decision:  # fmt: skip
        if host is not None and idx.is_local_domain(host):
            aor = f"sip:{user}@{host}"
            bindings = await self.location.lookup(aor)
            if bindings or _known_aor(idx, user, host):
                if host != caller.domain:
                    return _log_reject(INTER_DOMAIN, 403, "Forbidden: Inter-Domain Call")
                return self._deliver(INTRA_DOMAIN, request, caller, aor, host, bindings, source)
        number = idx.number(user)
        if number is not None:
            return await self._ingress(request, caller, number, source)
        return self._egress(request, caller, user, host, idx)

    async def _from_other(
        self, request: Request, caller: Caller, user: str, host: str | None, source: Any,
        idx: Index,
    ) -> Decision:  # fmt: skip
        local = host is not None and idx.is_local_domain(host)
        number = idx.number(user)
        if number is not None and not (local and host and idx.agent(user, host)):
            return await self._ingress(request, caller, number, source)
        if local:
            assert host is not None
            aor = f"sip:{user}@{host}"
            bindings = await self.location.lookup(aor)
            if caller.peer is None or bindings or _known_aor(idx, user, host):
                return self._deliver(INTRA_DOMAIN, request, caller, aor, host, bindings, source)
        if caller.peer is not None:
            return self._peer_egress(request, caller.peer, user, idx)
        # Looked up all the same: a target at a domain we do not serve must take as long to
        # refuse as one at a domain we do (whose lookup found nobody).
        await self._padding(f"sip:{user}@{host}" if host is not None else f"tel:{user}")
        if isinstance(request.uri, TelURI) or host is None:
            return Decision.reject(404, "Number Not Found")
        return _log_reject("NONE", 403, "Forbidden: Not A Local Target")

    # -- strategies ---------------------------------------------------------------------

    def _deliver(
        self, strategy: str, request: Request, caller: Caller, aor: str, domain: str,
        bindings: list[Binding], source: Any, callee_ref: str | None = None,
    ) -> Decision:  # fmt: skip
        """To the bindings of ``aor``, a local AOR: fork to all (one for a Peer)."""
        if not self._acl_allows(domain, source.ip):
            return _log_reject(strategy, 403, "Forbidden By Domain ACL")
        if not bindings:
            return _log_reject(strategy, 480, "Temporarily Unavailable")
        _log.debug("%s %s -> %s (%d bindings)", strategy, request.call_id, aor, len(bindings))
        add, remove = _privacy(request, caller)
        chosen = self._choose(request, aor, bindings)
        first = chosen[0]
        balanced = first.kind == "Peer" and len(bindings) > 1
        return Decision(
            [_target(b, add, remove) for b in chosen],
            strategy=strategy,
            caller_ref=caller.ref,
            callee_ref=callee_ref or first.ref,
            peer_ref=first.ref if first.kind == "Peer" else None,
            binding=(aor, first.contact) if balanced else None,
        )

    async def _ingress(
        self, request: Request, caller: Caller, number: Number, source: Any
    ) -> Decision:
        aor, host = self._compiled(self.index()).aor_link(number)
        bindings = await self.location.lookup(aor)
        return self._deliver(
            DOMAIN_INGRESS, request, caller, aor, host, bindings, source, number.ref
        )

    def _egress(
        self, request: Request, caller: Caller, user: str, host: str | None, idx: Index
    ) -> Decision:
        assert caller.domain is not None
        matched = idx.egress_match(caller.domain, user)
        if matched is None:
            if host is not None and idx.is_local_domain(host):
                return _log_reject(DOMAIN_EGRESS, 404, "Not Found: No Egress Rule Matched")
            return _log_reject(DOMAIN_EGRESS, 403, "Forbidden: No Egress Rule Matched")
        rule, number = matched
        add, remove = _privacy(request, caller)
        private = bool(add)
        return self._to_gateway(
            DOMAIN_EGRESS, request, caller.ref, user, number, idx, add, remove, private,
            rule.pattern.pattern,
        )  # fmt: skip

    def _peer_egress(self, request: Request, peer: Peer, user: str, idx: Index) -> Decision:
        dod = (request.get("x-dod-number") or "").strip()
        from_uri = request.from_.uri
        key = dod or (from_uri.user_unescaped if isinstance(from_uri, SipURI) else None)
        if not key:
            return _log_reject(PEER_EGRESS, 400, "Bad Request: Missing X-DOD-Number")
        number = idx.number(key)
        if number is None:
            return _log_reject(PEER_EGRESS, 404, "Not Found: Unknown DOD Number")
        remove = ("X-DOD-Number",)
        return self._to_gateway(
            PEER_EGRESS, request, peer.ref, user, number, idx, [], remove, False
        )

    def _to_gateway(
        self, strategy: str, request: Request, caller_ref: str | None, user: str,
        number: Number, idx: Index,
        add: list[tuple[str, str]], remove: tuple[str, ...], private: bool,
        rule: str | None = None,
    ) -> Decision:  # fmt: skip
        route = self._compiled(idx).egress(number, idx)
        if route is None:
            return _log_reject(strategy, 503, "Gateway Not Found")
        uri = f"sip:{escape_user(user)}@{route.where}"
        rpid = route.rpid_private if private else route.rpid
        headers = [*add, ("P-Asserted-Identity", route.identity), ("Remote-Party-ID", rpid)]
        _log.debug("%s %s -> %s via %s", strategy, request.call_id, uri, route.gateway_ref)
        target = Target(
            uri, route.hop, headers, (*remove, *IDENTITY_HEADERS), credentials=route.credentials
        )
        return Decision(
            [target], strategy=strategy, caller_ref=caller_ref, callee_ref=number.ref,
            gateway_ref=route.gateway_ref, rule=rule,
        )  # fmt: skip

    def _compiled(self, idx: Index) -> Compiled:
        if self._compiled_for is not idx:
            self._compiled_for, self._compiled_of = idx, Compiled()
        return self._compiled_of

    # -- helpers ------------------------------------------------------------------------

    async def _padding(self, aor: str) -> None:
        """A lookup made for its time alone (see ``_pad``)."""
        if self._pad:
            await self.location.lookup(aor)

    def _acl_allows(self, domain: str, ip: str) -> bool:
        return self.acls.allowed(domain, ip)

    def _choose(self, request: Request, aor: str, bindings: list[Binding]) -> list[Binding]:
        """Every binding of an Agent (parallel fork); one of a Peer, by its loadBalancing,
        the same one for the rest of the call (the call record keeps which)."""
        if len(bindings) < 2 or bindings[0].kind != "Peer":
            return bindings
        calls = self.calls
        chosen = calls.affinity(request.call_id, aor)
        binding = next((b for b in bindings if b.contact == chosen), None)
        if binding is None:
            peer = self.index().peer(aor[4:].split("@", 1)[0])
            algorithm = peer.spec.loadBalancing.algorithm if peer is not None else "round-robin"
            if algorithm == "least-sessions":
                start = next(self._rr)  # ties are shared out in turn
                n = len(bindings)
                order = [bindings[(start + i) % n] for i in range(n)]
                binding = min(order, key=lambda b: calls.count(aor, b.contact))
            else:
                binding = bindings[next(self._rr) % len(bindings)]
        return [binding]


def _refused(request: Request, decision: Decision) -> bool:
    """The router answers instead of delivering; or the request is an OPTIONS, which a
    stranger may send to probe who is registered: never relayed for one."""
    return bool(decision.status or decision.response) or request.method == "OPTIONS"


def _aor_of(uri: object) -> str:
    if isinstance(uri, SipURI):
        return f"sip:{uri.user_unescaped or ''}@{uri.host_key}"
    return f"tel:{uri.number}" if isinstance(uri, TelURI) else ""


def _known_aor(idx: Index, user: str, host: str) -> bool:
    if idx.agent(user, host) is not None:
        return True
    peer = idx.peer(user)
    return peer is not None and (peer.spec.device or "").lower() == host


def _privacy(request: Request, caller: Caller) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """An Agent with ``privacy: Private`` calls as Anonymous (RFC 3323), keeping its From
    tag (the dialog is identified by it). Headers to add and to remove."""
    agent = caller.agent
    if agent is None or agent.spec.privacy != "Private":
        return [], ()
    tag = request.from_.tag
    anonymous = f"{ANONYMOUS};tag={tag}" if tag else ANONYMOUS
    return [("From", anonymous), ("Privacy", "id")], ("From", "Privacy")


def _target(binding: Binding, add: list[tuple[str, str]], remove: tuple[str, ...]) -> Target:
    """A binding as a branch. With a Path (RFC 3327) the request goes through the proxies
    the REGISTER came through: their Path values become Route headers, the first one the
    next hop."""
    for value in binding.path:
        try:
            first = parse_address(value).uri
        except ParseError:
            continue
        if isinstance(first, SipURI):
            routes = [("Route", v) for v in binding.path]
            return Target(binding.contact, Hop.from_uri(first), [*routes, *add], remove)
        break
    transport, host, port, conn_id = binding.next_hop()
    return Target(binding.contact, Hop(transport, host, port, conn_id), list(add), remove)


def _log_reject(strategy: str, status: int, reason: str) -> Decision:
    _log.debug("%s: %d %s", strategy, status, reason)
    decision = Decision.reject(status, reason)
    decision.strategy = strategy
    return decision


def _no_event(_event: Event) -> None:
    return None
