"""Digest authentication of requests other than REGISTER (``security.authenticateRequests``).

Sans-IO and synchronous: everything it needs is in memory. Registered Peers' addresses come
from :class:`PeerAddresses`, a set kept up to date from location store events (the store
itself is async, and a lookup per request would cost a Redis round trip).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final, Protocol

from routr.location import STREAM_TRANSPORTS, Binding, LocationEvent
from routr.sip.digest import Credentials, DigestError, NonceIssuer, parse_credentials
from routr.sip.message import Request, Response
from routr.sip.uri import SipURI

if TYPE_CHECKING:
    from routr.data.index import Index

__all__ = [
    "AuthFailures",
    "ConnectionLike",
    "PeerAddresses",
    "RequestAuthenticator",
    "SourceLike",
    "find_credentials",
]

#: Never challenged: ACK cannot be answered, CANCEL must not be (RFC 3261 §22.1), and
#: REGISTER is the registrar's to authenticate.
EXEMPT_METHODS: Final = frozenset({"ACK", "CANCEL", "REGISTER"})


class ConnectionLike(Protocol):
    @property
    def id(self) -> int: ...


class SourceLike(Protocol):
    """What the core reads of ``routr.transport.base.Source`` (core never imports it)."""

    @property
    def protocol(self) -> str: ...
    @property
    def ip(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def local(self) -> tuple[str, int]: ...
    @property
    def conn(self) -> ConnectionLike | None: ...


def find_credentials(request: Request, key: str, realm: str) -> Credentials | None:
    """The Digest credentials of header ``key`` for ``realm`` (else the first Digest ones).

    Values are read raw: credentials hold commas, so the comma-splitting ``get_all`` would
    cut them apart. Malformed values are skipped (the caller answers with a challenge).
    """
    first: Credentials | None = None
    for k, _, value in request.headers:
        if k != key:
            continue
        try:
            creds = parse_credentials(value)
        except DigestError:
            continue
        if not creds.is_digest:
            continue
        if creds.realm == realm:
            return creds
        first = first or creds
    return first


class AuthFailures:
    """Failed authentications per source IP over a sliding window (for authFailureBan).

    Only wrong credentials count, not the first challenge every client gets.
    """

    __slots__ = ("_events", "failures", "max_sources", "seconds", "total")

    def __init__(self, failures: int = 10, seconds: float = 600.0, max_sources: int = 100_000):
        self.failures = failures
        self.seconds = seconds
        self.max_sources = max_sources
        self._events: dict[str, deque[float]] = {}
        self.total = 0  # every failure since start, for ``GET /metrics``

    def _trim(self, ip: str, now: float) -> deque[float] | None:
        events = self._events.get(ip)
        if events is None:
            return None
        limit = now - self.seconds
        while events and events[0] <= limit:
            events.popleft()
        if not events:
            del self._events[ip]
            return None
        return events

    def record(self, ip: str, now: float) -> int:
        """Count one failure from ``ip``; the failures in the window, this one included."""
        self.total += 1
        events = self._trim(ip, now)
        if events is None:
            if len(self._events) >= self.max_sources:
                # Many sources at once (a scan): forget the oldest source, do not grow.
                self._events.pop(next(iter(self._events)))
            events = self._events[ip] = deque(maxlen=max(1, self.failures * 2))
        events.append(now)
        return len(events)

    def count(self, ip: str, now: float) -> int:
        events = self._trim(ip, now)
        return 0 if events is None else len(events)

    def exceeded(self, ip: str, now: float) -> bool:
        """``ip`` reached the failure limit within the window."""
        return self.count(ip, now) >= self.failures

    def clear(self, ip: str) -> None:
        self._events.pop(ip, None)


class PeerAddresses:
    """Source addresses of registered Peers, answering ``(ip, port) -> bool`` synchronously.

    Fed by :meth:`load` (the store's current bindings, at start) and :meth:`on_event` (pass
    it to ``store.on_event``). A Peer registered over a stream is trusted by IP alone: a new
    connection from it comes from another ephemeral port.
    """

    __slots__ = ("_by_binding", "_counts")

    def __init__(self) -> None:
        self._by_binding: dict[tuple[str, str], tuple[str, int | None]] = {}
        self._counts: dict[tuple[str, int | None], int] = {}

    def load(self, bindings: Iterable[Binding]) -> None:
        for binding in bindings:
            self._set(binding)

    def on_event(self, event: LocationEvent) -> None:
        if event.type in ("ADDED", "MODIFIED"):
            self._set(event.binding)
        else:
            self._drop((event.binding.aor, event.binding.contact))

    def _set(self, binding: Binding) -> None:
        key = (binding.aor, binding.contact)
        self._drop(key)
        if binding.kind != "Peer":
            return
        port = None if binding.transport in STREAM_TRANSPORTS else binding.source_port
        address = (binding.source_ip, port)
        self._by_binding[key] = address
        self._counts[address] = self._counts.get(address, 0) + 1

    def _drop(self, key: tuple[str, str]) -> None:
        address = self._by_binding.pop(key, None)
        if address is None:
            return
        left = self._counts[address] - 1
        if left:
            self._counts[address] = left
        else:
            del self._counts[address]

    def __call__(self, ip: str, port: int) -> bool:
        return (ip, port) in self._counts or (ip, None) in self._counts

    def __len__(self) -> int:
        return len(self._by_binding)


class RequestAuthenticator:
    """Decides whether a request may go on or gets a 407 challenge.

    In order: exempt methods and in-dialog requests (To tag) pass; requests from a
    Gateway's address or a registered Peer's address pass; a request whose From is in a
    local domain must carry valid Proxy-Authorization of the Agent it names (realm = that
    domain), whether or not that Agent exists, so unknown and known users look alike; any
    other request passes here (the router refuses what is neither from nor to us).
    """

    def __init__(
        self,
        index: Callable[[], Index],
        nonces: NonceIssuer,
        *,
        is_peer_address: Callable[[str, int], bool] | None = None,
        enabled: bool = True,
        failures: AuthFailures | None = None,
    ) -> None:
        self.index = index
        self.nonces = nonces
        self.is_peer_address = is_peer_address if is_peer_address is not None else _nobody
        self.enabled = enabled
        self.failures = failures

    def check(self, request: Request, source: SourceLike, now: float) -> Response | None:
        """``None`` to go on, or the 407 to answer with."""
        if not self.enabled or request.method in EXEMPT_METHODS or request.to.tag:
            return None
        index = self.index()
        if index.gateway_from(source.ip, source.port) is not None:
            return None
        if self.is_peer_address(source.ip, source.port):
            return None
        uri = request.from_.uri
        if not isinstance(uri, SipURI) or not index.is_local_domain(uri.host_key):
            return None
        realm = uri.host_key
        user = uri.user_unescaped
        creds = find_credentials(request, "proxy-authorization", realm)
        if creds is None:
            return self._challenge(request, realm, now, stale=False)
        agent = index.agent(user, realm) if user else None
        password = None
        if agent is not None and creds.username == user:
            password = agent.spec.credentials.secret
        result = self.nonces.verify(creds, request.method, now=now, password=password, realm=realm)
        if result == "ok":
            _consume(request, creds)
            return None
        if result != "stale" and self.failures is not None:
            self.failures.record(source.ip, now)
        return self._challenge(request, realm, now, stale=result == "stale")

    def _challenge(self, request: Request, realm: str, now: float, *, stale: bool) -> Response:
        challenges = self.nonces.challenges(realm, now, stale)
        return request.response(407, headers=[("Proxy-Authenticate", c) for c in challenges])


def _consume(request: Request, creds: Credentials) -> None:
    """Drop the credentials for our realm: they are not forwarded (RFC 3261 §22.3)."""
    for entry in request.headers:
        if entry[0] == "proxy-authorization":
            try:
                parsed = parse_credentials(entry[2])
            except DigestError:
                continue
            if parsed.params == creds.params:
                request.headers.remove(entry)
                return


def _nobody(ip: str, port: int) -> bool:
    return False
