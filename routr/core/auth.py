"""Digest authentication of requests other than REGISTER (``security.authenticateRequests``).

Sans-IO and synchronous: everything it needs is in memory. Registered Peers' addresses come
from :class:`PeerAddresses`, a set kept up to date from location store events (the store
itself is async, and a lookup per request would cost a Redis round trip).
"""

from __future__ import annotations

import logging
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
    "AorLimit",
    "AuthFailures",
    "BoundAddresses",
    "ConnectionLike",
    "PeerAddresses",
    "RequestAuthenticator",
    "SourceLike",
    "aor_key",
    "find_credentials",
    "refusal_realm",
    "settle",
]

_log = logging.getLogger("routr.security")

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


def aor_key(username: str, realm: str, local: bool = True) -> str:
    """What :class:`AorLimit` counts failures of: the identity the credentials name. An
    Agent is its user at the realm; a Peer (a REGISTER to a host we do not serve) is its
    username alone, so guessing under many To hosts adds up to one count."""
    return f"sip:{username}@{realm}" if local else f"peer:{username}"


class AorLimit:
    """Failed authentications per AOR from any address (``authFailureBan.perAor``).

    ``failures`` within ``seconds`` lock the AOR for ``lock_seconds``. While it is locked
    only its known addresses may still authenticate: trusted networks, addresses that
    authenticated as it lately (:meth:`succeeded`), and those holding a binding of it
    (``bound``, from the location store's events; the registrar also asks the store).
    Any other address is answered as if its password were wrong, after the same digest
    work. Unknown AORs are counted and locked like known ones, so a lock tells nothing
    about who exists. Memory only, per node (see the README).
    """

    __slots__ = ("_counts", "_good", "_locked", "bound", "failures", "lock_seconds",
                 "locks", "max_aors", "refused", "remember", "seconds", "trusted")  # fmt: skip

    #: Addresses remembered per AOR (a phone's IPv4 and IPv6, a roaming handset...).
    MAX_ADDRESSES = 8

    def __init__(
        self,
        failures: int = 20,
        seconds: float = 600.0,
        lock_seconds: float = 900.0,
        *,
        trusted: Callable[[str], bool] | None = None,
        bound: Callable[[str, str], bool] | None = None,
        max_aors: int = 100_000,
    ) -> None:
        self.failures = failures
        self.seconds = seconds
        self.lock_seconds = lock_seconds
        #: How long a successful authentication keeps its address admitted (a
        #: registration says for itself: the registrar passes its binding's lifetime).
        self.remember = max(seconds, lock_seconds)
        self.trusted = trusted if trusted is not None else _nobody_trusted
        #: ``(aor, ip)``: ``ip`` holds a current binding of ``aor``
        self.bound = bound if bound is not None else _nothing_bound
        self.max_aors = max_aors
        self._counts = AuthFailures(failures, seconds, max_sources=max_aors)
        self._locked: dict[str, float] = {}  # AOR -> locked until
        self._good: dict[str, dict[str, float]] = {}  # AOR -> address -> admitted until
        self.locks = 0  # locks begun since start (``GET /metrics``)
        self.refused = 0  # authentications refused by a lock

    def locked(self, key: str, now: float) -> bool:
        until = self._locked.get(key)
        if until is None:
            return False
        if until > now:
            return True
        del self._locked[key]
        return False

    def known(self, key: str, ip: str, now: float) -> bool:
        """``ip`` authenticated as ``key`` lately, holds a binding of it, or is in a
        trusted network."""
        good = self._good.get(key)
        if good is not None and good.get(ip, 0.0) > now:
            return True
        return self.bound(key, ip) or self.trusted(ip)

    def admits(self, key: str, ip: str, now: float) -> bool:
        """Whether ``ip`` may try to authenticate as ``key``."""
        return not self.locked(key, now) or self.known(key, ip, now)

    def refuse(self) -> None:
        """Count one authentication refused by a lock."""
        self.refused += 1

    def failed(self, key: str, now: float) -> None:
        """One wrong answer for ``key``; the one that reaches the limit starts the lock."""
        if self.lock_seconds <= 0 or self.locked(key, now):
            return  # a lock runs its course: failures meanwhile do not stretch it
        if self._counts.record(key, now) < self.failures:
            return
        self._counts.clear(key)
        if len(self._locked) >= self.max_aors:
            self._locked = {k: v for k, v in self._locked.items() if v > now}
            if len(self._locked) >= self.max_aors:
                self._locked.pop(next(iter(self._locked)))
        self._locked[key] = now + self.lock_seconds
        self.locks += 1
        # Once per lock, not per attempt: the attempts are counted, not logged.
        _log.warning(
            "%s locked for %g s after %d failed authentications in %g s: only addresses "
            "it is registered or authenticated from may authenticate as it meanwhile",
            key, self.lock_seconds, self.failures, self.seconds,
        )  # fmt: skip

    def succeeded(self, key: str, ip: str, now: float, seconds: float | None = None) -> None:
        """``ip`` authenticated as ``key``: admitted for ``seconds`` (``remember``) even
        through a lock."""
        until = now + (self.remember if seconds is None else max(seconds, self.remember))
        good = self._good.get(key)
        if good is None:
            if len(self._good) >= self.max_aors:
                self._good.pop(next(iter(self._good)))  # the AOR remembered longest ago
            good = self._good[key] = {}
        elif ip not in good and len(good) >= self.MAX_ADDRESSES:
            del good[min(good, key=good.__getitem__)]  # the one that expires first
        if good.get(ip, 0.0) < until:
            good[ip] = until

    def locked_now(self, now: float) -> int:
        """AORs locked at ``now`` (``GET /metrics``)."""
        return sum(1 for until in self._locked.values() if until > now)


def settle(
    nonces: NonceIssuer,
    creds: Credentials,
    method: str,
    now: float,
    *,
    realm: str,
    password: str | None,
    key: str,
    ip: str,
    failures: AuthFailures | None,
    limit: AorLimit | None,
    admitted: bool = True,
    remember: float | None = None,
) -> str:
    """Check the answer to a challenge and count its outcome: ``"ok"``, ``"stale"`` or
    what else :meth:`NonceIssuer.verify` says (a wrong answer).

    Every path does the same digest work, so neither the answer nor its time tells why
    it failed. ``admitted`` False: ``key``'s lock refused ``ip`` -- answered as a wrong
    password, counted as a refusal and not against ``ip`` (a locked user's phone with the
    right password must not get its office's address banned). ``password`` None: nothing
    can succeed. ``failures`` None: nothing is counted against ``ip``.
    ``remember``: how long a success keeps ``ip`` admitted through a lock.
    """
    if not admitted:
        if limit is not None:
            limit.refuse()
        password = None
    verdict = nonces.verify(creds, method, now=now, password=password, realm=realm)
    if verdict == "ok":
        if limit is not None:
            limit.succeeded(key, ip, now, remember)
    elif verdict != "stale":
        if failures is not None and admitted:
            failures.record(ip, now)
        if limit is not None:
            limit.failed(key, now)
    return verdict


class _BindingKeys:
    """Keys derived from the location store's bindings, each with the number of current
    bindings behind it, answered synchronously (the store is async; a lookup per request
    would cost a Redis round trip). Fed by :meth:`load` (the store's current bindings, at
    start) and :meth:`on_event` (pass it to ``store.on_event``)."""

    __slots__ = ("_by_binding", "_counts")

    def __init__(self) -> None:
        self._by_binding: dict[tuple[str, str], tuple[object, ...]] = {}
        self._counts: dict[object, int] = {}

    def _keys(self, binding: Binding) -> tuple[object, ...]:
        raise NotImplementedError

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
        keys = self._keys(binding)
        if not keys:
            return
        self._by_binding[key] = keys
        counts = self._counts
        for k in keys:
            counts[k] = counts.get(k, 0) + 1

    def _drop(self, key: tuple[str, str]) -> None:
        keys = self._by_binding.pop(key, None)
        if keys is None:
            return
        counts = self._counts
        for k in keys:
            left = counts[k] - 1
            if left:
                counts[k] = left
            else:
                del counts[k]

    def __len__(self) -> int:
        return len(self._by_binding)


class PeerAddresses(_BindingKeys):
    """Source addresses of registered Peers, answering ``(ip, port) -> bool``. A Peer
    registered over a stream is trusted by IP alone: a new connection from it comes from
    another ephemeral port."""

    __slots__ = ()

    def _keys(self, binding: Binding) -> tuple[object, ...]:
        if binding.kind != "Peer":
            return ()
        port = None if binding.transport in STREAM_TRANSPORTS else binding.source_port
        return ((binding.source_ip, port),)

    def __call__(self, ip: str, port: int) -> bool:
        return (ip, port) in self._counts or (ip, None) in self._counts


class BoundAddresses(_BindingKeys):
    """The source addresses of every current binding: by AOR (:meth:`holds`, which lets a
    registered phone through its AOR's lock on every node and after a restart) and alone
    (:meth:`any`, an address with a registered client behind it is never banned for a
    scanner's User-Agent, which anyone can forge in a datagram from it)."""

    __slots__ = ()

    def _keys(self, binding: Binding) -> tuple[object, ...]:
        return ((binding.aor, binding.source_ip), binding.source_ip)

    def holds(self, aor: str, ip: str) -> bool:
        return (aor, ip) in self._counts

    def any(self, ip: str) -> bool:
        return ip in self._counts


class RequestAuthenticator:
    """Decides whether a request may go on or gets a 407 challenge.

    In order: exempt methods and in-dialog requests (To tag) pass; requests from a
    Gateway's address or a registered Peer's address pass; a request whose From is in a
    local domain must carry valid Proxy-Authorization of the Agent it names (realm = that
    domain), whether or not that Agent exists, so unknown and known users look alike; any
    other request passes here, and when the router will not deliver it, :meth:`refusal`
    answers it with the same challenge (so whether a challenge comes says nothing about
    which domains are ours).
    """

    def __init__(
        self,
        index: Callable[[], Index],
        nonces: NonceIssuer,
        *,
        is_peer_address: Callable[[str, int], bool] | None = None,
        enabled: bool = True,
        failures: AuthFailures | None = None,
        limit: AorLimit | None = None,
    ) -> None:
        self.index = index
        self.nonces = nonces
        self.is_peer_address = is_peer_address if is_peer_address is not None else _nobody
        self.enabled = enabled
        self.failures = failures
        self.limit = limit

    def trusts(self, source: SourceLike) -> bool:
        """A Gateway's address or a registered Peer's: never challenged."""
        if self.index().gateway_from(source.ip, source.port) is not None:
            return True
        return self.is_peer_address(source.ip, source.port)

    def check(self, request: Request, source: SourceLike, now: float) -> Response | None:
        """``None`` to go on, or the 407 to answer with."""
        if not self.enabled or request.method in EXEMPT_METHODS or request.to.tag:
            return None
        if self.trusts(source):
            return None
        uri = request.from_.uri
        index = self.index()
        if not isinstance(uri, SipURI) or not index.is_local_domain(uri.host_key):
            return None
        realm = uri.host_key
        user = uri.user_unescaped
        agent = index.agent(user, realm) if user else None
        password = agent.spec.credentials.secret if agent is not None else None
        return self._authenticate(request, source, now, realm, user, password)

    def refusal(self, request: Request, source: SourceLike, now: float) -> Response | None:
        """The answer to a stranger's request that will not be delivered: the challenge an
        Agent's request gets, realm from the request alone (:func:`refusal_realm`), and
        credentials checked as an unknown user's: the same digest work, never accepted.
        ``None`` when authentication is off (the router's own answer stands).

        Deliberately not counted, per address or per AOR: the realm is the stranger's own
        (its From host), so a federated PBX's phone answers with its real credentials
        whenever it calls someone offline here, and ten missed calls would ban the PBX.
        Nothing can be guessed here (nothing is accepted); floods are the flood ban's."""
        if not self.enabled:
            return None
        return self._authenticate(
            request, source, now, refusal_realm(request), None, None, count=False
        )

    def _authenticate(
        self,
        request: Request,
        source: SourceLike,
        now: float,
        realm: str,
        user: str | None,
        password: str | None,
        *,
        count: bool = True,
    ) -> Response | None:
        creds = find_credentials(request, "proxy-authorization", realm)
        if creds is None:
            return self._challenge(request, realm, now, stale=False)
        if creds.username != user:
            password = None
        key = aor_key(creds.username, realm)
        limit = self.limit if count else None
        result = settle(
            self.nonces, creds, request.method, now, realm=realm, password=password, key=key,
            ip=source.ip, failures=self.failures if count else None, limit=limit,
            admitted=limit is None or limit.admits(key, source.ip, now),
        )  # fmt: skip
        if result == "ok":
            _consume(request, creds)
            return None
        return self._challenge(request, realm, now, stale=result == "stale")

    def _challenge(self, request: Request, realm: str, now: float, *, stale: bool) -> Response:
        challenges = self.nonces.challenges(realm, now, stale)
        return request.response(407, headers=[("Proxy-Authenticate", c) for c in challenges])


def refusal_realm(request: Request) -> str:
    """The realm of a challenge to a stranger: a function of the request only (its From
    host, else its Request-URI host, else its Via host), never of which domains we serve."""
    for uri in (request.from_.uri, request.uri):
        if isinstance(uri, SipURI):
            return uri.host_key
    return request.via.host_key


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


def _nobody_trusted(ip: str) -> bool:
    return False


def _nothing_bound(aor: str, ip: str) -> bool:
    return False
