"""The registrar (RFC 3261 §10): digest-authenticated REGISTER requests -> location bindings.

Sans-IO apart from the awaited store: the server calls ``await registrar.handle(request,
source, now)`` and sends the :class:`Response` it gets back. Nothing is changed unless the
whole request is valid (§10.3: bindings are committed only if the request succeeds).

Decisions:
- Every REGISTER is challenged, realm = the To host, whatever that host is: a stranger
  learns from the answer neither which domains nor which users exist. A To host that is
  not a local domain is for Peers only (found by username); any other credentials there
  fail like a wrong password. Nothing is ever relayed: REGISTER is answered here.
- Agents are found by (Authorization username, To host), Peers by the username; unknown
  users, wrong passwords and AORs locked by :class:`~routr.core.auth.AorLimit` get the
  same 401 after the same digest work, and so do sources the domain ACL denies (never its
  403: that would tell them the password was right). What tells more (credentials that
  are not the To user's: 403) comes only after the password proved right.
- Contacts match stored ones by RFC 3261 §19.1.4 URI comparison; the stored string is the
  contact as first registered.
- An out-of-order refresh (same Call-ID, CSeq not higher) fails the request with 500.
- Above ``ex_maxContact``, the binding refreshed least recently goes first.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING, Final, Protocol

from routr.core.acl import DomainAcls
from routr.core.auth import AorLimit, AuthFailures, SourceLike, aor_key, find_credentials, settle
from routr.events import (
    EndpointEvent,
    EndpointExpired,
    EndpointRegistered,
    EndpointUnregistered,
    Event,
)
from routr.location import Binding, LocationStore
from routr.location.binding import WS_TRANSPORTS
from routr.location.store import ordered
from routr.models import Agent, Peer, split_hostport
from routr.sip.address import Address, StarContact
from routr.sip.digest import NonceIssuer
from routr.sip.errors import ParseError
from routr.sip.message import Request, Response
from routr.sip.uri import SipURI, parse_uri

if TYPE_CHECKING:
    from routr.data.index import Index

__all__ = [
    "EXPIRED",
    "REGISTERED",
    "UNREGISTERED",
    "ExpiresPolicy",
    "Registrar",
    "SourceLike",
    "endpoint_event",
]

REGISTERED: Final = "endpoint.registered"
UNREGISTERED: Final = "endpoint.unregistered"
EXPIRED: Final = "endpoint.expired"


class ExpiresPolicy(Protocol):
    """What the registrar reads of ``spec.registrar`` (``routr.models.config.Registrar``)."""

    @property
    def min_expires(self) -> int: ...
    @property
    def max_expires(self) -> int: ...
    @property
    def default_expires(self) -> int: ...


EventSink = Callable[[Event], None]
_KINDS: Final = {
    REGISTERED: EndpointRegistered,
    UNREGISTERED: EndpointUnregistered,
    EXPIRED: EndpointExpired,
}


def endpoint_event(name: str, binding: Binding, now: float, reason: str) -> EndpointEvent:
    """The bus event of a binding added, removed (``expires`` 0) or timed out."""
    removed = name != REGISTERED
    return _KINDS[name](
        timestamp=now,
        aor=binding.aor,
        contact=binding.contact,
        transport=binding.transport,
        source=binding.source,
        user_agent=binding.user_agent,
        expires=0 if removed else max(0, round(binding.expires_at - now)),
        reason=reason,
    )


class Registrar:
    """Handles REGISTER. ``index`` is called per request, so a reload is seen at once.

    ``internal`` is ``registrarIntf: Internal``: every binding is reached at the packet's
    source address. ``emit`` receives ``endpoint.*`` events; ``failures`` counts
    wrong credentials per source IP, ``limit`` per AOR.
    """

    def __init__(
        self,
        index: Callable[[], Index],
        store: LocationStore,
        config: ExpiresPolicy,
        nonces: NonceIssuer,
        *,
        internal: bool = False,
        emit: EventSink | None = None,
        failures: AuthFailures | None = None,
        acls: DomainAcls | None = None,
        limit: AorLimit | None = None,
    ) -> None:
        self.index = index
        self.acls = acls or DomainAcls(index)
        self.store = store
        self.config = config
        self.nonces = nonces
        self.internal = internal
        self.emit = emit
        self.failures = failures
        self.limit = limit

    def _emit(self, name: str, binding: Binding, now: float, reason: str) -> EndpointEvent:
        event = endpoint_event(name, binding, now, reason)
        if self.emit is not None:
            self.emit(event)
        return event

    async def sweep(self, now: float) -> list[EndpointEvent]:
        """Expire bindings in the store; one ``endpoint.expired`` each (also sent to
        ``emit``). The service calls this every few seconds."""
        return [self._emit(EXPIRED, b, now, "expired") for b in await self.store.sweep(now)]

    async def handle(self, request: Request, source: SourceLike, now: float) -> Response:
        """The response to a REGISTER; bindings and events as a side effect."""
        try:
            return await self._handle(request, source, now)
        except ParseError as exc:
            return request.response(exc.status, exc.reason)

    # -- authentication --------------------------------------------------------------------

    def _challenge(self, request: Request, realm: str, now: float, stale: bool) -> Response:
        challenges = self.nonces.challenges(realm, now, stale)
        return request.response(401, headers=[("WWW-Authenticate", c) for c in challenges])

    async def _handle(self, request: Request, source: SourceLike, now: float) -> Response:
        to_uri = request.to.uri
        if not isinstance(to_uri, SipURI):
            return request.response(400, "To must be a SIP URI")
        realm = to_uri.host_key
        creds = find_credentials(request, "authorization", realm)
        if creds is None:
            return self._challenge(request, realm, now, stale=False)
        index = self.index()
        local = index.is_local_domain(realm)
        resource: Agent | Peer | None = (
            index.agent(creds.username, realm) if local else index.peer(creds.username)
        )
        password = resource.spec.credentials.secret if resource is not None else None
        key = aor_key(creds.username, realm, local)
        limit = self.limit
        admitted = True
        if local and not self.acls.allowed(realm, source.ip):
            # A REGISTER is a request into the domain: its ACL applies too. Answered as a
            # wrong password, so a denied source learns no password is right; and counted
            # against the source like one: a denied source that keeps guessing is banned.
            password = None
        elif limit is not None:
            admitted = await self._admitted(
                limit, key, request, resource, creds.username, realm, source, now
            )
        verdict = settle(
            self.nonces, creds, "REGISTER", now, realm=realm, password=password, key=key,
            ip=source.ip, failures=self.failures, limit=limit, admitted=admitted,
            remember=self.config.max_expires,
        )  # fmt: skip
        if verdict != "ok":
            return self._challenge(request, realm, now, stale=verdict == "stale")
        assert resource is not None  # "ok" needs a password
        if creds.username != to_uri.user_unescaped:
            return request.response(403, "Forbidden (credentials do not match the To user)")
        return await self._bind(request, source, now, resource)

    async def _admitted(
        self, limit: AorLimit, key: str, request: Request, resource: Agent | Peer | None,
        username: str, realm: str, source: SourceLike, now: float,
    ) -> bool:  # fmt: skip
        """Whether ``source`` may authenticate as ``key``: the AOR is not locked, or the
        address is one it knows, or holds one of its bindings (a registered phone keeps
        refreshing through a lock). Known or not, a locked AOR costs one store lookup."""
        if limit.admits(key, source.ip, now):
            return True
        aors = self._aors(request, resource) if resource is not None else []
        aor = next((a for a in aors if a.endswith(f"@{realm}")), None)
        if aor is None:
            aor = aors[0] if aors else f"sip:{username}@{realm}"
        return any(b.source_ip == source.ip for b in await self.store.lookup(aor, now))

    # -- bindings --------------------------------------------------------------------------

    def _aors(self, request: Request, resource: Agent | Peer) -> list[str]:
        user = resource.spec.credentials.username
        if isinstance(resource, Agent):
            return [f"sip:{user}@{d.lower()}" for d in resource.spec.domains]
        device = resource.spec.device
        if device is None:
            from_uri = request.from_.uri
            device = from_uri.host_key if isinstance(from_uri, SipURI) else request.to.sip_uri.host
        return [f"sip:{user}@{device.lower()}"]

    def _expires(self, contact: Address, header: int | None) -> int:
        value = contact.expires
        if value is None:
            value = header if header is not None else self.config.default_expires
        return value

    def _nat(self, request: Request, source: SourceLike) -> bool:
        """Reach the client at its source address rather than what its Contact says."""
        if self.internal or source.protocol in WS_TRANSPORTS:
            return True
        via = request.via
        if via.host_key != source.ip.lower():
            return True
        # Over a stream the source port is ephemeral: only a datagram's port is telling.
        return source.protocol == "udp" and (via.port or 5060) != source.port

    async def _bind(
        self, request: Request, source: SourceLike, now: float, resource: Agent | Peer
    ) -> Response:
        contacts = request.contacts
        header_expires = request.expires
        aors = self._aors(request, resource)
        current = {aor: await self.store.lookup(aor, now) for aor in aors}
        if any(isinstance(c, StarContact) for c in contacts):
            if len(contacts) != 1 or header_expires != 0:
                return request.response(400, "Contact * needs Expires: 0 and no other Contact")
            return await self._remove_all(request, now, aors, current)
        policy = self.config
        planned: list[tuple[SipURI, int, float]] = []
        for contact in contacts:
            uri = contact.uri
            if not isinstance(uri, SipURI):
                return request.response(400, "Contact must be a SIP URI")
            expires = self._expires(contact, header_expires)
            if 0 < expires < policy.min_expires:
                return request.response(423, headers=[("Min-Expires", str(policy.min_expires))])
            planned.append((_reachable(uri, resource), min(expires, policy.max_expires), contact.q))
        call_id, cseq = request.call_id, request.cseq.number
        nat = self._nat(request, source)
        # Per AOR: (stored contact string, expires, q). Checked in full before any change.
        keyed: dict[str, list[tuple[str, int, float]]] = {}
        for aor in aors:
            rows = keyed[aor] = []
            for uri, expires, q in planned:
                existing = _matching(current[aor], uri)
                if existing is not None and _stale_cseq(existing, call_id, cseq):
                    return request.response(500, "Out of order REGISTER")
                rows.append((existing.contact if existing else str(uri), expires, q))
        contact_addr = isinstance(resource, Peer) and resource.spec.contactAddr is not None
        # What each AOR holds after this request, kept here rather than looked up again
        # (a Redis round trip each for ex_maxContact and for the 200).
        after: dict[str, list[Binding]] = {}
        for aor in aors:
            live = {b.contact: b for b in current[aor]}
            for key, expires, q in keyed[aor]:
                if expires == 0:
                    removed = await self.store.remove(aor, key)
                    live.pop(key, None)
                    if removed is not None:
                        self._emit(UNREGISTERED, removed, now, "unregistered")
                    continue
                binding = Binding(
                    aor,
                    key,
                    source_ip=source.ip,
                    source_port=source.port,
                    transport=source.protocol,
                    expires_at=now + expires,
                    registered_on=now,
                    call_id=call_id,
                    cseq=cseq,
                    conn_id=source.conn.id if source.conn is not None else None,
                    local=source.local,
                    user_agent=request.get("user-agent"),
                    q=q,
                    path=request.get_all("path"),
                    nat=nat,
                    kind=resource.kind,
                    ref=resource.ref,
                )
                if contact_addr:
                    # The operator said where this Peer is: its Contact, as rewritten.
                    binding.nat = False
                    binding.conn_id = None
                    binding.transport = _uri_transport(key)
                result = await self.store.add(binding, now)
                if result != "REFUSED":
                    live[key] = binding
                if result == "ADDED":
                    self._emit(REGISTERED, binding, now, "registered")
            touched = [k for k, e, _ in keyed[aor] if e]
            after[aor] = await self._enforce_max(aor, touched, now, resource, list(live.values()))
        return self._ok(request, now, after[_shown_aor(request, aors)])

    async def _remove_all(
        self, request: Request, now: float, aors: list[str], current: dict[str, list[Binding]]
    ) -> Response:
        """``Contact: *`` (RFC 3261 §10.3 step 6)."""
        call_id, cseq = request.call_id, request.cseq.number
        for bindings in current.values():
            for b in bindings:
                if _stale_cseq(b, call_id, cseq):
                    return request.response(500, "Out of order REGISTER")
        for aor in aors:
            for removed in await self.store.remove_all(aor):
                self._emit(UNREGISTERED, removed, now, "unregistered")
        return self._ok(request, now, [])

    async def _enforce_max(
        self, aor: str, touched: list[str], now: float, resource: Agent | Peer, live: list[Binding]
    ) -> list[Binding]:
        """Above ex_maxContact, drop the least recently refreshed bindings; this
        request's own contacts go last, the earliest listed first. Returns what is left."""
        excess = len(live) - resource.spec.ex_maxContact
        if excess <= 0:
            return live
        mine = {key: i for i, key in enumerate(touched)}
        others = sorted((b for b in live if b.contact not in mine), key=lambda b: b.registered_on)
        own = sorted((b for b in live if b.contact in mine), key=lambda b: mine[b.contact])
        victims = [*others, *own][:excess]
        for victim in victims:
            removed = await self.store.remove(aor, victim.contact)
            if removed is not None:
                self._emit(UNREGISTERED, removed, now, "replaced")
        gone = {v.contact for v in victims}
        return [b for b in live if b.contact not in gone]

    def _ok(self, request: Request, now: float, bindings: list[Binding]) -> Response:
        """200 listing every current binding of the AOR with its remaining time."""
        headers = [
            ("Contact", f"<{b.contact}>;expires={b.expires_in(now)}") for b in ordered(bindings)
        ]
        headers.append(("Date", formatdate(now, usegmt=True)))
        # RFC 3327 §5.3: the registrar echoes the Path it stored.
        headers.extend(("Path", value) for value in request.get_all("path"))
        return request.response(200, headers=headers)


def _stale_cseq(binding: Binding, call_id: str, cseq: int) -> bool:
    """RFC 3261 §10.3 steps 6-7: same Call-ID and a CSeq that is not higher."""
    return binding.call_id == call_id and cseq <= binding.cseq


def _matching(bindings: list[Binding], uri: SipURI) -> Binding | None:
    """The stored binding whose contact is the same URI (RFC 3261 §19.1.4)."""
    for b in bindings:
        try:
            if uri.matches(parse_uri(b.contact)):
                return b
        except ParseError:
            continue
    return None


def _reachable(uri: SipURI, resource: Agent | Peer) -> SipURI:
    """The Contact with a Peer's ``contactAddr`` put in place of its host and port."""
    if not isinstance(resource, Peer) or resource.spec.contactAddr is None:
        return uri
    host, port = split_hostport(resource.spec.contactAddr)
    out = uri.copy()
    out.host = f"[{host}]" if ":" in host else host
    out.port = port
    return out


def _uri_transport(contact: str) -> str:
    uri = parse_uri(contact)
    if isinstance(uri, SipURI):
        return uri.transport or ("tls" if uri.scheme == "sips" else "udp")
    return "udp"


def _shown_aor(request: Request, aors: list[str]) -> str:
    """The AOR whose bindings the 200 lists: the To AOR when it is one of ours."""
    to_aor = request.to.sip_uri.aor
    return to_aor if to_aor in aors else aors[0]
