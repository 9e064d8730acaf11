"""Gateways as a client sees them: outbound registration.

:class:`Registration` is the sans-IO protocol of one REGISTER binding at one registrar: it
is fed responses, timeouts and ``now``, and gives back requests to send and a deadline.
:class:`GatewayRegistry` keeps one per (Gateway, registrar) in step with the resources and
drives them with an injected I/O (the server's ``SipService``: send, timers, Via address).
A registration that goes away (its Gateway removed or no longer registering, the server
stopping) while registered is un-REGISTERed (Expires: 0). A registrar's challenge is
answered the way the proxy answers a Gateway's (:mod:`routr.core.gateway_auth`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any, Final, Protocol

from routr.core.gateway_auth import authorize
from routr.core.routing import STREAM, Hop, TimerHandle
from routr.data.index import Index
from routr.events import (
    Event,
    GatewayEvent,
    GatewayRegistered,
    GatewayRegistrationFailed,
    GatewayUnregistered,
    GatewayUnregistrationFailed,
)
from routr.models.resources import Gateway
from routr.sip.errors import ParseError
from routr.sip.message import Message, Request, Response, make_request
from routr.sip.transaction import (
    Action,
    ClientTransaction,
    Deliver,
    Send,
    Terminated,
    Timeout,
    client_key,
    client_transaction,
)
from routr.sip.uri import hostport

_log = logging.getLogger("routr.gateways")

REFRESH_AT: Final = 0.9  # of the granted expires
RETRY_BASE: Final = 2.0
RETRY_CAP: Final = 300.0


# -- outbound registration: the protocol --------------------------------------------------


class Registration:
    """One Gateway registered at one registrar (RFC 3261 §10.2), sans-IO.

    States: ``idle`` (not yet tried), ``registering``, ``registered``, ``failed``; once
    :meth:`unregister` was called: ``unregistering``, then ``unregistered`` or ``failed``
    (:attr:`done`), never to register again.
    """

    def __init__(
        self,
        gateway: Gateway,
        registrar: tuple[str, int],
        *,
        user_agent: str = "routr",
        retry_base: float = RETRY_BASE,
        retry_cap: float = RETRY_CAP,
    ) -> None:
        spec = gateway.spec
        assert spec.credentials is not None
        self.gateway = gateway
        self.ref = gateway.ref
        self.registrar = registrar
        self.transport = spec.transport
        self.username = spec.credentials.username
        self.secret = spec.credentials.secret
        self.domain = spec.host
        self.requested = spec.expires
        self.user_agent = user_agent
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.call_id = f"{secrets.token_hex(12)}@routr"
        self.tag = secrets.token_hex(6)
        self.cseq = 0
        self.state = "idle"
        self.failures = 0
        self.expires = 0  # granted
        self.next_at: float | None = 0.0  # act at once
        self.last_status: int | None = None
        self.last_reason: str | None = None
        self.registered_at: float | None = None
        self.contact: tuple[str, int] | None = None  # host, port in our Contact
        self.nat_contact: tuple[str, int] | None = None  # from received/rport of a 200
        self.leaving = False  # un-REGISTERing: one last transaction, no retry
        self.done = False  # the un-REGISTER got its answer (or none will come)
        self._auth_answered = False
        self._last: Request | None = None

    # -- inputs ---------------------------------------------------------------------------

    def deadline(self) -> float | None:
        """When :meth:`due` has a request to send (None while one is in flight)."""
        return self.next_at

    def due(self, now: float, via: tuple[str, str, int]) -> Request | None:
        """The REGISTER to send at ``now``; ``via`` is (transport, host, port) of ours."""
        if self.next_at is None or now < self.next_at or self.leaving:
            return None
        self.next_at = None
        self.state = "registering" if self.state != "registered" else self.state
        self._auth_answered = False
        return self._request(via, self.requested)

    def unregister(self, now: float, via: tuple[str, str, int]) -> Request | None:
        """The REGISTER with Expires: 0 for the Contact we registered; None (and done) when
        no binding of ours can be left: never registered, or its expires ran out."""
        self.leaving = True
        self.next_at = None
        bound = self.registered_at is not None and now < self.registered_at + self.expires
        if not bound or self.contact is None:
            self.done = True
            return None
        self.state = "unregistering"
        self._auth_answered = False
        return self._request(via, 0, self.nat_contact or self.contact)

    def on_response(self, response: Response, now: float) -> tuple[Request | None, Event | None]:
        """A final response to our REGISTER: a request to send at once, and/or an event."""
        status = response.status
        if status < 200:
            return None, None
        self.last_status, self.last_reason = status, response.reason
        last = self._last
        if status in (401, 407) and last is not None and not self._auth_answered:
            self._auth_answered = True
            out = authorize(last, response, (self.username, self.secret))
            if out is not None:
                out.add("Via", last.get("via") or "", first=True)  # the driver re-branches
                self._last = out
                self.cseq = out.cseq.number
                return out, None
        if self.leaving:
            return None, self._left(now, 200 <= status < 300, f"{status} {response.reason}")
        if status == 423 and last is not None:
            minimum = _int(response.get("min-expires"))
            if minimum and minimum > self.requested:
                self.requested = minimum
                self.next_at = now
                return None, None
        if 200 <= status < 300 and last is not None:
            return self._registered(response, last, now)
        return None, self._failed(now, f"{status} {response.reason}")

    def on_timeout(self, now: float, reason: str = "timeout") -> Event:
        """No response (Timer F) or it could not be sent."""
        self.last_status, self.last_reason = None, reason
        if self.leaving:
            return self._left(now, False, reason)
        return self._failed(now, reason)

    # -- steps ----------------------------------------------------------------------------

    def _registered(
        self, response: Response, last: Request, now: float
    ) -> tuple[Request | None, Event | None]:
        via = response.vias[0] if response.vias else None
        if via is not None and self.contact is not None and self.nat_contact is None:
            seen = (via.received or self.contact[0], via.rport or self.contact[1])
            if seen != self.contact:
                # Behind NAT: the registrar must reach us where it saw us, not where we think.
                self.nat_contact = seen
                self.next_at = now
                return None, None
        self.expires = (
            _granted(response, self.contact) or _int(response.get("expires")) or (self.requested)
        )
        self.state = "registered"
        self.failures = 0
        self.registered_at = now
        self.next_at = now + max(1.0, self.expires * REFRESH_AT)
        return None, self._event(GatewayRegistered, now)

    def _failed(self, now: float, reason: str) -> Event:
        self.state = "failed"
        delay = min(self.retry_cap, self.retry_base * (2**self.failures))
        self.failures += 1
        self.next_at = now + delay
        _log.info("gateway %s registration at %s:%s failed (%s); retry in %.0f s", self.ref,
                  *self.registrar, reason, delay)  # fmt: skip
        return self._event(GatewayRegistrationFailed, now, reason)

    def _left(self, now: float, ok: bool, reason: str) -> Event:
        self.state = "unregistered" if ok else "failed"
        self.done = True
        if ok:
            return self._event(GatewayUnregistered, now)
        _log.info("gateway %s un-registration at %s:%s failed (%s)", self.ref, *self.registrar,
                  reason)  # fmt: skip
        return self._event(GatewayUnregistrationFailed, now, reason)

    def _request(
        self, via: tuple[str, str, int], expires: int, contact: tuple[str, int] | None = None
    ) -> Request:
        transport, host, port = via
        if contact is None:
            contact = self.nat_contact or (host, port)
            self.contact = (host, port) if self.nat_contact is None else self.contact
        self.cseq += 1
        reg_host, reg_port = self.registrar
        tparam = f";transport={self.transport}" if self.transport != "udp" else ""
        headers = [
            ("Via", f"SIP/2.0/{transport.upper()} {hostport(host, port)};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{self.username}@{self.domain}>;tag={self.tag}"),
            ("To", f"<sip:{self.username}@{self.domain}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} REGISTER"),
            ("Contact", f"<sip:{self.username}@{hostport(*contact)}{tparam}>"),
            ("Expires", str(expires)),
            ("User-Agent", self.user_agent),
        ]
        request = make_request("REGISTER", f"sip:{hostport(reg_host, reg_port)}", headers)
        self._last = request
        return request

    def _event(self, kind: type[GatewayEvent], now: float, why: str | None = None) -> Event:
        return kind(
            timestamp=now,
            ref=self.ref,
            registrar=hostport(*self.registrar),
            expires=self.expires,
            status=self.last_status,
            # a response's own phrase, else why none came (a timeout, a send failure)
            reason=self.last_reason if self.last_status is not None or why is None else why,
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.gateway.metadata.name,
            "registrar": hostport(*self.registrar),
            "username": self.username,
            "expires": self.expires,
        }

    def status(self, now: float) -> dict[str, Any]:
        """For ``/registry``: where it stands and what comes next."""
        return {
            **self._describe(),
            "transport": self.transport,
            "state": self.state,
            "registered": self.state == "registered",
            "lastResponse": (
                f"{self.last_status} {self.last_reason}" if self.last_status else self.last_reason
            ),
            "registeredSecondsAgo": (
                None if self.registered_at is None else round(now - self.registered_at)
            ),
            "nextAttemptIn": None if self.next_at is None else max(0, round(self.next_at - now)),
            "failures": self.failures,
        }


def _granted(response: Response, contact: tuple[str, int] | None) -> int | None:
    """The expires the registrar gave our Contact (any Contact if ours is not listed)."""
    best: int | None = None
    try:
        contacts = response.contacts
    except ParseError:
        return None
    for address in contacts:
        expires = address.expires
        if expires is None:
            continue
        uri = getattr(address, "uri", None)
        if contact is not None and getattr(uri, "host_key", None) == contact[0].lower():
            return expires
        best = expires if best is None else best
    return best


def _binding(spec: Any) -> tuple[Any, ...]:
    """What makes the AOR and the Contact a registration binds."""
    username = spec.credentials.username if spec.credentials is not None else None
    return username, spec.host.lower(), spec.transport


def _int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value else None
    except ValueError:
        return None


# -- outbound registration: the driver ----------------------------------------------------


class RegistryIO(Protocol):
    """What the registry needs of the server (``SipService`` has it all)."""

    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle: ...

    def send(self, message: Message, hop: Hop, on_error: Callable[[], None]) -> None: ...

    def via_for(self, hop: Hop) -> tuple[str, str, int]: ...


HopFactory = Callable[[str, str, int], Hop]


class GatewayRegistry:
    """Every Gateway with ``sendRegister`` and credentials, registered and kept so."""

    def __init__(
        self,
        io: RegistryIO,
        hop: HopFactory,
        *,
        user_agent: str = "routr",
        emit: Callable[[Event], None] | None = None,
        retry_base: float = RETRY_BASE,
        retry_cap: float = RETRY_CAP,
    ) -> None:
        self.io = io
        self.hop = hop
        self.user_agent = user_agent
        self.emit = emit
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.registrations: dict[tuple[str, str, int], Registration] = {}
        self._specs: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str, int], TimerHandle] = {}
        self._txs: dict[str, tuple[ClientTransaction, Registration, Hop]] = {}
        self._tx_timers: dict[str, TimerHandle] = {}
        self._leaving: set[Registration] = set()  # un-REGISTERs waiting for their answer
        self._branches = 0
        self.running = False

    def sync(self, index: Index) -> None:
        """Follow the Gateway resources: add, replace (spec changed) and drop."""
        wanted: dict[tuple[str, str, int], Gateway] = {}
        for gateway in index.gateways:
            if not gateway.registers:
                continue
            spec = gateway.spec
            default = 5061 if spec.transport in ("tls", "wss") else 5060
            wanted[(gateway.ref, spec.host.lower(), spec.port or default)] = gateway
            for registry in spec.registries:
                host, _, port = registry.rpartition(":")
                if not host or not port.isdigit():
                    host, port = registry, str(default)
                wanted[(gateway.ref, host.strip("[]").lower(), int(port))] = gateway
        for key in list(self.registrations):
            if key not in wanted:
                self._drop(key, unregister=True)
            elif self._specs[key] != wanted[key].spec:
                # Replaced. The same binding (AOR and Contact) is simply registered again;
                # only a binding the new spec no longer makes is removed.
                old, new = self._specs[key], wanted[key].spec
                self._drop(key, unregister=_binding(old) != _binding(new))
        for key, gateway in wanted.items():
            if key not in self.registrations:
                self.registrations[key] = Registration(
                    gateway, key[1:], user_agent=self.user_agent,
                    retry_base=self.retry_base, retry_cap=self.retry_cap,
                )  # fmt: skip
                self._specs[key] = gateway.spec
                if self.running:
                    self._arm(key)

    def start(self, index: Index) -> None:
        self.running = True
        self.sync(index)
        for key in self.registrations:
            self._arm(key)

    def stop(self) -> None:
        """Stop registering and un-REGISTER every binding; :meth:`unregistering` tells how
        many still wait for an answer, :meth:`close` gives up on them."""
        self.running = False
        for key in list(self.registrations):
            self._drop(key, unregister=True)

    def unregistering(self) -> int:
        """How many un-REGISTERs have not had their final answer yet."""
        return len(self._leaving)

    def close(self) -> None:
        """Forget every transaction and timer (the transports are going away)."""
        self.running = False
        for key in list(self.registrations):
            self._drop(key, unregister=False)
        for handle in self._tx_timers.values():
            handle.cancel()
        self._tx_timers.clear()
        self._txs.clear()
        self._leaving.clear()

    def status(self) -> list[dict[str, Any]]:
        now = self.io.now()
        return [r.status(now) for r in self.registrations.values()]

    def on_response(self, response: Response) -> bool:
        """A response from the network: True when it answers one of our REGISTERs."""
        if not self._txs:
            return False
        try:
            key = client_key(response)
        except ParseError:
            return False
        entry = self._txs.get(key)
        if entry is None:
            return False
        tx, _, _ = entry
        self._run(key, tx.on_response(response, self.io.now()))
        return True

    # -- driving --------------------------------------------------------------------------

    def _drop(self, key: tuple[str, str, int], *, unregister: bool) -> None:
        """Forget a registration (gone from :meth:`status` at once), after sending its
        un-REGISTER when asked to."""
        reg = self.registrations.pop(key, None)
        self._specs.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if reg is None:
            return
        for branch, (_, owner, _) in list(self._txs.items()):
            if owner is reg:
                self._txs.pop(branch, None)
                handle = self._tx_timers.pop(branch, None)
                if handle is not None:
                    handle.cancel()
        if not unregister:
            return
        hop = self.hop(reg.transport, *reg.registrar)
        request = reg.unregister(self.io.now(), self.io.via_for(hop))
        if request is None:
            return
        _log.info("gateway %s un-registering at %s:%s", reg.ref, *reg.registrar)
        self._leaving.add(reg)
        self._send(reg, request, hop)

    def _arm(self, key: tuple[str, str, int]) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        reg = self.registrations.get(key)
        if reg is None or not self.running:
            return
        when = reg.deadline()
        if when is not None:
            self._timers[key] = self.io.call_at(max(when, self.io.now()), lambda: self._due(key))

    def _due(self, key: tuple[str, str, int]) -> None:
        self._timers.pop(key, None)
        reg = self.registrations.get(key)
        if reg is None:
            return
        hop = self.hop(reg.transport, *reg.registrar)
        request = reg.due(self.io.now(), self.io.via_for(hop))
        if request is not None:
            self._send(reg, request, hop)
        self._arm(key)

    def _send(self, reg: Registration, request: Request, hop: Hop) -> None:
        self._branches += 1
        branch = f"z9hG4bK-gw{secrets.token_hex(6)}{self._branches:x}"
        via = request.pop_first("via") or ""
        via = via.split(";branch=", 1)[0].split(";rport", 1)[0]
        request.add("Via", f"{via};branch={branch};rport", first=True)
        tx = client_transaction(request, hop.transport in STREAM)
        self._txs[tx.key] = (tx, reg, hop)
        self._run(tx.key, tx.start(self.io.now()))

    def _run(self, key: str, actions: list[Action]) -> None:
        entry = self._txs.get(key)
        if entry is None:
            return
        tx, reg, hop = entry
        now = self.io.now()
        for action in actions:
            if isinstance(action, Send):
                self.io.send(action.message, hop, lambda: self._send_failed(key))
            elif isinstance(action, Deliver):
                assert isinstance(action.message, Response)
                follow, event = reg.on_response(action.message, now)
                if follow is not None:
                    self._send(reg, follow, hop)
                self._emit(event)
                self._next(reg)
            elif isinstance(action, Timeout):
                self._emit(reg.on_timeout(now))
                self._next(reg)
            elif isinstance(action, Terminated):
                self._txs.pop(key, None)
                handle = self._tx_timers.pop(key, None)
                if handle is not None:
                    handle.cancel()
                return
        handle = self._tx_timers.pop(key, None)
        if handle is not None:
            handle.cancel()
        when = tx.deadline()
        if when is not None:
            self._tx_timers[key] = self.io.call_at(
                when, lambda: self._run(key, tx.on_timer(self.io.now()))
            )

    def _send_failed(self, key: str) -> None:
        entry = self._txs.pop(key, None)
        if entry is None:
            return
        handle = self._tx_timers.pop(key, None)
        if handle is not None:
            handle.cancel()
        _, reg, _ = entry
        self._emit(reg.on_timeout(self.io.now(), "cannot send"))
        self._next(reg)

    def _next(self, reg: Registration) -> None:
        """After an answer or a failure: a leaving one may be done, a current one re-armed
        (a replaced one, still answering, must not arm its successor's timer)."""
        if reg.leaving:
            if reg.done:
                self._leaving.discard(reg)
            return
        key = (reg.ref, *reg.registrar)
        if self.registrations.get(key) is reg:
            self._arm(key)

    def _emit(self, event: Event | None) -> None:
        if event is None:
            return
        if self.emit is not None:
            self.emit(event)
