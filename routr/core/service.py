"""The SIP application, sans-IO: what routr does with every message, built once.

:class:`SipService` owns the way in (bans, the global ACL, parsing, scanners, NAT
stamping), dispatch (the server itself, the registrar, the proxy), the way back of a
response (answers to our own REGISTERs go to the gateway registry, the rest to the
proxy), the call record and the read-only views the management plane shows. Everything
comes through its constructor: the I/O (send, timers, running work), one clock, one
``emit`` for events, the secrets, the data index and the location store. It opens no
socket, resolves no name and reads no other clock.

Wiring::

    bytes, Source --> on_data --guard/ACL/parse/NAT--> Dispatcher --+--> Registrar (REGISTER)
                                                                    +--> Proxy --> Router
    Response ------> on_response --> GatewayRegistry (our REGISTERs) | Proxy
    Registrar, Guard, GatewayRegistry, Calls --emit(Event)--> the bus (log, NATS, API...)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import Any, Protocol

from routr.core.acl import Acl
from routr.core.auth import (
    AorLimit,
    AuthFailures,
    BoundAddresses,
    PeerAddresses,
    RequestAuthenticator,
    SourceLike,
)
from routr.core.calls import Calls
from routr.core.dispatcher import Dispatcher
from routr.core.droplog import DropLog
from routr.core.gateway_auth import credentials_at
from routr.core.gateways import GatewayRegistry
from routr.core.guard import Guard
from routr.core.identity import Identity
from routr.core.limits import ServerTable
from routr.core.nat import fix_contact, reply_address, stamp_via
from routr.core.proxy import Proxy
from routr.core.registrar import Registrar
from routr.core.router import Router
from routr.core.routing import Hop, TimerHandle
from routr.core.stats import SipStats
from routr.core.trace import Traces
from routr.data.index import Index
from routr.data.secrets import Secrets
from routr.events import Event
from routr.location import LocationStore
from routr.models.config import Config
from routr.sip.address import Via, parse_via
from routr.sip.digest import NonceIssuer
from routr.sip.errors import LimitExceeded, MessageTooLarge, ParseError, VersionNotSupported
from routr.sip.limits import LimitHits, MessageLimits
from routr.sip.message import Message, Request, Response, parse_message
from routr.sip.transaction import server_key
from routr.sip.uri import SipURI

_log = logging.getLogger("routr.sip")
#: Seconds a source over maxTransactionsPerSource is asked to wait (503 Retry-After).
RETRY_AFTER = 5
#: Never refused by maxTransactionsPerSource: ACK opens no transaction, CANCEL ends one.
_UNLIMITED = frozenset({"ACK", "CANCEL"})


class ServiceIO(Protocol):
    """What the service needs of the I/O layer (``routr.server.io`` over the transports)."""

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle: ...

    def send(self, message: Message, hop: Hop, on_error: Callable[[], None]) -> None:
        """Send towards ``hop``; call ``on_error`` if it cannot go."""

    def send_back(self, data: bytes, source: Any, dest: tuple[str, int] | None) -> None:
        """Send a reply down ``source``'s flow, or over UDP to ``dest``."""

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run async work (routing, location, registrar) on its own."""

    def via_for(self, hop: Hop) -> tuple[str, str, int]:
        """(transport, host, port) to show ``hop`` in our Via and Record-Route."""

    def inbound_via(self, source: Any) -> tuple[str, str, int]:
        """(transport, host, port) of the interface ``source``'s message arrived on."""


class Counters:
    """Packets in, by what became of them."""

    __slots__ = ("dropped", "rejected", "requests", "responses")

    def __init__(self) -> None:
        self.requests = 0
        self.responses = 0
        self.rejected = 0  # answered with an error before dispatch (400, 403, 513...)
        self.dropped = 0  # banned, scanners, unanswerable

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class SipService:
    """The whole SIP application over one :class:`ServiceIO`."""

    def __init__(
        self,
        config: Config,
        io: ServiceIO,
        *,
        clock: Callable[[], float],
        emit: Callable[[Event], None],
        secrets: Secrets,
        index: Callable[[], Index],
        location: LocationStore,
        identity: Identity,
        limit_hits: LimitHits | None = None,
    ) -> None:
        spec = config.spec
        security = spec.security
        self.io = io
        self.clock = clock
        self.emit = emit
        self.index = index
        self.location = location
        self.identity = identity
        self.user_agent = config.user_agent
        self.max_message_size = security.max_message_size
        acl = spec.access_control_list
        #: The global ACL: every packet. Raises AclError on a bad entry.
        self.acl = Acl.from_lists(acl.allow, acl.deny) if acl is not None else None
        self.counters = Counters()
        #: refused and dropped messages, logged once per source and reason a while
        self.drops = DropLog(_log, clock)
        #: By method, status class, parse error and handling time (``GET /metrics``).
        self.stats = SipStats(limit_hits)
        limits = security.limits
        self.message_limits = MessageLimits(
            headers=limits.max_headers,
            vias=limits.max_vias,
            routes=limits.max_routes,
            contacts=limits.max_contacts,
        )
        trace = spec.trace
        #: The SIP messages of recent calls (``GET /calls/{id}/trace``).
        self.traces = Traces(
            trace.mode, trace.calls, trace.messages, trace.sample, max_bytes=trace.max_bytes
        )
        failures = AuthFailures(
            security.auth_failure_ban.failures, security.auth_failure_ban.seconds
        )
        #: Shared by the registrar and the request authenticator: ``total`` is every
        #: wrong answer to a challenge.
        self.auth_failures = failures
        #: Every current binding's source address, from the location store's events.
        self.bound = BoundAddresses()
        self.guard = Guard(
            security.trusted,
            flood_requests=security.flood_ban.requests,
            flood_seconds=security.flood_ban.seconds,
            flood_ban=security.flood_ban.ban_seconds,
            failures=failures,
            auth_ban=security.auth_failure_ban.ban_seconds,
            block_scanners=security.block_scanners,
            emit=emit,
            known=self._known_source,
        )
        per_aor = security.auth_failure_ban.per_aor
        #: Failures per AOR from any address (the registrar's and the authenticator's).
        self.aor_limit = AorLimit(
            per_aor.failures, per_aor.seconds, per_aor.lock_seconds,
            trusted=self.guard.trusted, bound=self.bound.holds,
        )  # fmt: skip
        nonces = NonceIssuer(
            secrets.nonce_key, security.nonce_lifetime, algorithms=security.digest_algorithms
        )
        self.registrar = Registrar(
            index,
            location,
            spec.registrar,
            nonces,
            internal=spec.registrar_intf == "Internal",
            emit=self._registrar_event,
            failures=failures,
            limit=self.aor_limit,
        )
        self.peers = PeerAddresses()
        auth = RequestAuthenticator(
            index,
            nonces,
            is_peer_address=self.peers,
            enabled=security.authenticate_requests,
            failures=failures,
            limit=self.aor_limit,
        )
        self.calls = Calls(clock, emit, recent=config.spec.events.call_history)
        self.router = Router(
            index,
            location,
            use_to_as_aor=spec.use_to_as_aor,
            auth=auth,
            clock=clock,
            calls=self.calls,
            acls=self.registrar.acls,  # one compiled set of domain ACLs for both
        )
        #: The proxy's server transactions, counted per source (maxTransactionsPerSource).
        self.transactions = ServerTable(limits.max_transactions_per_source)
        self.proxy = Proxy(
            self,
            self.router,
            record_route=spec.record_route,
            secret=secrets.route_key,
            server_header=self.user_agent,
            timer_c=spec.proxy.timer_c,
            gateway_credentials=lambda hop: credentials_at(index(), hop.host, hop.port),
            calls=self.calls,
            servers=self.transactions,
        )
        self.gateways = GatewayRegistry(self, Hop, user_agent=self.user_agent, emit=emit)
        self.dispatcher = Dispatcher(
            identity, self.user_agent, self.reply, proxy=self.proxy.on_request,
            registrar=self._register,
        )  # fmt: skip

    # -- life ---------------------------------------------------------------------------

    async def load_peers(self) -> None:
        """Learn the Peers' addresses (trusted sources) and every binding's (admitted
        through an AOR lock, never banned as a scanner) before the first packet; follow
        the store from before the load, so a registration meanwhile is not missed."""
        self.location.on_event(self.peers.on_event)
        self.location.on_event(self.bound.on_event)
        bindings = await self.location.list()
        self.peers.load(bindings)
        self.bound.load(bindings)

    def start(self) -> None:
        """Start outbound registrations (the transports are up)."""
        self.gateways.start(self.index())

    def data_changed(self) -> None:
        """The index was rebuilt: outbound registrations follow the Gateway resources."""
        self.gateways.sync(self.index())

    async def sweep(self) -> None:
        """Expire bindings (``endpoint.expired`` each); the server calls it every few s."""
        await self.registrar.sweep(self.clock())

    def pending(self) -> int:
        """Requests still waiting for their final response (for a graceful stop)."""
        return self.proxy.pending()

    # -- incoming -----------------------------------------------------------------------

    def on_data(self, data: bytes, source: SourceLike) -> None:
        """Every complete message from any transport comes here (and is timed for the
        handling-time histogram)."""
        started = perf_counter()
        self._receive(data, source)
        self.stats.observe(perf_counter() - started)

    def _receive(self, data: bytes, source: SourceLike) -> None:
        if not self.guard.admit(source.ip, self.clock()):
            self.counters.dropped += 1
            return  # banned: not even a parse
        denied = self.acl is not None and not self.acl.allowed(source.ip)
        try:
            if len(data) > self.max_message_size:
                raise MessageTooLarge("Message Too Large", message=_salvage(data))
            message = parse_message(
                data, datagram=source.protocol == "udp", limits=self.message_limits
            )
            if isinstance(message, Response):
                self.counters.responses += 1
                self.stats.responses_received[message.status // 100] += 1
                if not denied:
                    self._trace_in(message, data, source)
                    self.on_response(message, source)
                return
            assert isinstance(message, Request)
            self.counters.requests += 1
            self.stats.request(message.method)
            if self.guard.scanner(source.ip, source.port, message.get("user-agent"),
                                  self.clock(), connected=source.protocol != "udp"):  # fmt: skip
                self.counters.dropped += 1
                _log.debug("dropped a scanner's %s from %s", message.method, source.ip)
                return
            message.check()
            if denied:
                raise ParseError("Forbidden By ACL", status=403, message=message)
            if (
                self.transactions.full(source.ip)
                and not self._continues(message)
                and not self.guard.trusted(source.ip)
            ):
                raise LimitExceeded("Too Many Transactions", limit="transactions", status=503,
                                    message=message, retry_after=RETRY_AFTER)  # fmt: skip
            self._trace_in(message, data, source)  # past the guard, the ACL and the scanners
            stamp_via(message, source.ip, source.port)
            if message.method != "REGISTER":
                fix_contact(message, source.protocol, source.ip, source.port)
        except ParseError as exc:
            if isinstance(exc, LimitExceeded):
                self.stats.limit_hits.hit(exc.limit)
            if not denied or exc.status != 403:  # the ACL's 403 is no parse error
                self.stats.parse_error(exc.status)
            self._reject(exc, source)
            return
        work = self.dispatcher.on_request(message, source)
        if work is not None:
            self.io.spawn(work)  # type: ignore[arg-type]

    def _continues(self, request: Request) -> bool:
        """An ACK or a retransmission: no new transaction, so never refused by the limit;
        a CANCEL, which ends one (a trunk at its limit must still be able to free it)."""
        return request.method in _UNLIMITED or server_key(request) in self.transactions

    def _known_source(self, ip: str, port: int) -> bool:
        """A Gateway's address or one holding a binding: not banned for a User-Agent."""
        return self.bound.any(ip) or self.index().gateway_from(ip, port) is not None

    def _registrar_event(self, event: Event) -> None:
        # A binding pushed out by ex_maxContact is the bindings-per-AOR limit's hit.
        if getattr(event, "reason", None) == "replaced":
            self.stats.limit_hits.hit("bindings")
        self.emit(event)

    def _trace_in(self, message: Message, data: bytes, source: SourceLike) -> None:
        if self.traces.on:
            self.traces.incoming(message, data, source.protocol, (source.ip, source.port),
                                 source.local, self.clock())  # fmt: skip

    def on_response(self, response: Response, source: SourceLike) -> None:
        """Answers to our own REGISTERs go to the gateway registry, the rest to the proxy."""
        if self.gateways.on_response(response):
            return
        try:
            fix_contact(response, source.protocol, source.ip, source.port)
        except ParseError:
            pass  # a Contact we cannot read is passed on as it is
        self.proxy.on_response(response, source)

    async def _register(self, request: Request, source: Any) -> None:
        await self.proxy.serve(
            request, source, lambda: self.registrar.handle(request, source, self.clock())
        )

    def _reject(self, exc: ParseError, source: SourceLike) -> None:
        request = exc.message
        if not isinstance(request, Request) or request.method == "ACK":
            self._dropped(source, exc.reason)
            return
        dest = None
        try:
            request.via  # noqa: B018 - a reply needs a Via to travel back on
            stamp_via(request, source.ip, source.port)
        except ParseError:
            # SIP/7.0 in the request line comes with a SIP/7.0 Via, which no 2.0 parse
            # accepts: read its sent-by anyway so that the 505 goes back (RFC 4475 §3.1.2.16).
            via = _other_version_via(request) if isinstance(exc, VersionNotSupported) else None
            if via is None:
                self._dropped(source, f"{exc.reason} (no route back)")
                return
            dest = source.ip, (source.port if "rport" in via.params else via.port or 5060)
        try:
            extra = [("Server", self.user_agent)]
            if isinstance(exc, LimitExceeded) and exc.retry_after is not None:
                extra.append(("Retry-After", str(exc.retry_after)))
            response = request.response(exc.status, exc.reason, headers=extra)
        except ParseError:
            self._dropped(source, f"{exc.reason} (no route back)")
            return
        self.counters.rejected += 1
        self.drops.note(source.ip, str(exc.status), f"answered {exc.status} {exc.reason} to "
                        f"{source.protocol} {source.ip}:{source.port}")  # fmt: skip
        if dest is None:
            self.reply(request, response, source)
        else:
            self.stats.responses_sent[response.status // 100] += 1
            self.io.send_back(response.to_bytes(), source, dest)

    def _dropped(self, source: SourceLike, why: str) -> None:
        self.counters.dropped += 1
        self.drops.note(source.ip, why, f"dropped a message from {source.protocol} "
                        f"{source.ip}:{source.port}: {why}")  # fmt: skip

    # -- ProxyIO and RegistryIO: the core's view of the world -----------------------------

    def now(self) -> float:
        return self.clock()

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        return self.io.call_at(when, callback)

    def reply(self, request: Request, response: Response, source: Any) -> None:
        """Send a response back along the request's flow (RFC 3261 §18.2.2)."""
        dest = reply_address(request, source.ip, source.port) if source.conn is None else None
        self.stats.responses_sent[response.status // 100] += 1
        data = response.to_bytes()
        if self.traces.on:
            self.traces.outgoing(response, lambda: data, source.protocol, source.local,
                                 dest or (source.ip, source.port), self.clock())  # fmt: skip
        self.io.send_back(data, source, dest)

    def send(self, message: Message, hop: Hop, on_error: Callable[[], None]) -> None:
        # only a traced call's messages pay for the local address and a second serialization
        if self.traces.on and self.traces.traced(message):
            _, host, port = self.io.via_for(hop)
            self.traces.outgoing(message, message.to_bytes, hop.transport, (host, port),
                                 (hop.host, hop.port), self.clock())  # fmt: skip
        self.io.send(message, hop, on_error)

    def via_for(self, hop: Hop) -> tuple[str, str, int]:
        return self.io.via_for(hop)

    def inbound_via(self, source: Any) -> tuple[str, str, int]:
        return self.io.inbound_via(source)

    def is_self(self, uri: SipURI) -> bool:
        return self.identity.is_self(uri)

    # -- read-only views: plain data for the management plane ----------------------------

    async def bindings(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [b.to_dict(now) for b in await self.location.list()]

    def registrations(self) -> list[dict[str, Any]]:
        return self.gateways.status()

    def calls_in_progress(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [c.to_dict(now) for c in self.calls.in_progress()]

    def recent_calls(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [c.to_dict(now) for c in self.calls.recent()]

    def bans(self) -> list[dict[str, Any]]:
        left = self.guard.banned(self.clock())
        return [{"ip": ip, "secondsLeft": round(s)} for ip, s in sorted(left.items())]


def _other_version_via(request: Request) -> Via | None:
    """The top Via of a request of another SIP version (``SIP/7.0/UDP host``) read as if
    it were 2.0: only to know where its 505 goes."""
    raw = request.get("via")
    parts = raw.split(",", 1)[0].split("/", 2) if raw else []
    if len(parts) != 3 or parts[0].strip().upper() != "SIP":
        return None
    try:
        return parse_via("SIP/2.0/" + parts[2].lstrip())
    except ParseError:
        return None


def _salvage(data: bytes) -> Request | None:
    """The headers of an oversize request, when they parse, so a 513 can be routed back."""
    try:
        message = parse_message(data, datagram=False)
    except ParseError:
        return None
    return message if isinstance(message, Request) else None
