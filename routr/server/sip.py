"""The SIP side of the server: bytes from the transports -> the sans-IO core -> sockets.

:class:`SipService` is the :class:`routr.core.proxy.ProxyIO` of the proxy: it knows the
clock (the one timer heap), the listeners, the advertised addresses and how to send.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from routr.core.acl import Acl
from routr.core.dispatcher import Dispatcher
from routr.core.guard import Guard
from routr.core.identity import Identity
from routr.core.nat import fix_contact, reply_address, stamp_via
from routr.core.proxy import Proxy
from routr.core.routing import Hop, TimerHandle
from routr.models.fields import is_ip
from routr.sip.address import Via, parse_via
from routr.sip.errors import MessageTooLarge, ParseError, VersionNotSupported
from routr.sip.message import Message, Request, Response, parse_message
from routr.sip.uri import SipURI
from routr.transport.base import Source
from routr.transport.manager import TransportManager
from routr.transport.routes import local_ip_for
from routr.transport.scheduler import Scheduler

_log = logging.getLogger("routr.sip")
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})
# A TEST-NET address: asking the kernel for its route sends nothing and tells which local
# address the default route uses (for peers known only by name).
_DEFAULT_ROUTE_PROBE = "192.0.2.1"


class SipService:
    """Glue between the transports and the sans-IO dispatcher, registrar and proxy."""

    def __init__(
        self,
        identity: Identity,
        user_agent: str,
        max_message_size: int,
        scheduler: Scheduler,
        *,
        extern_addr: str | None = None,
        localnets: list[str] | None = None,
        acl: Acl | None = None,
    ) -> None:
        self.identity = identity
        self.user_agent = user_agent
        self.max_message_size = max_message_size
        self.scheduler = scheduler
        self.extern_addr = extern_addr
        self.localnets = [ipaddress.ip_network(n, strict=False) for n in localnets or []]
        self.acl = acl  # the global ACL: every packet
        self.guard: Guard | None = None  # bans: floods, password guessing, scanners
        self.transports: TransportManager | None = None
        self.proxy: Proxy | None = None
        self.dispatcher = Dispatcher(identity, user_agent, self.reply)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- incoming -----------------------------------------------------------------------

    def on_data(self, data: bytes, source: Source) -> None:
        """Every complete message from any transport comes here."""
        guard = self.guard
        if guard is not None and not guard.admit(source.ip, time.time()):
            return  # banned: not even a parse
        denied = self.acl is not None and not self.acl.allowed(source.ip)
        try:
            if len(data) > self.max_message_size:
                raise MessageTooLarge("Message Too Large", message=_salvage(data))
            message = parse_message(data, datagram=source.protocol == "udp")
            if isinstance(message, Response):
                if not denied:
                    self.on_response(message, source)
                return
            assert isinstance(message, Request)
            if guard is not None and guard.is_scanner(message.get("user-agent")):
                _log.debug("dropped a scanner's %s from %s", message.method, source.ip)
                return
            message.check()
            if denied:
                raise ParseError("Forbidden By ACL", status=403, message=message)
            stamp_via(message, source.ip, source.port)
            if message.method != "REGISTER":
                fix_contact(message, source.protocol, source.ip, source.port)
        except ParseError as exc:
            self._reject(exc, source)
            return
        work = self.dispatcher.on_request(message, source)
        if work is not None:
            self.spawn(work)

    def on_response(self, response: Response, source: Source) -> None:
        try:
            fix_contact(response, source.protocol, source.ip, source.port)
        except ParseError:
            pass  # a Contact we cannot read is passed on as it is
        if self.proxy is not None:
            self.proxy.on_response(response, source)

    def spawn(self, work: Awaitable[None]) -> None:
        """Run the core's async work (router, location, registrar) as a task."""
        assert isinstance(work, Coroutine)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("request handling failed", exc_info=task.exception())

    def _reject(self, exc: ParseError, source: Source) -> None:
        request = exc.message
        if not isinstance(request, Request) or request.method == "ACK":
            _log.info("dropped a message from %s %s:%s: %s", source.protocol, source.ip,
                      source.port, exc.reason)  # fmt: skip
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
                _log.info("dropped a message from %s %s:%s: %s (no route back)",
                          source.protocol, source.ip, source.port, exc.reason)  # fmt: skip
                return
            dest = source.ip, (source.port if "rport" in via.params else via.port or 5060)
        try:
            response = request.response(
                exc.status, exc.reason, headers=[("Server", self.user_agent)]
            )
        except ParseError:
            _log.info("dropped a message from %s %s:%s: %s (no route back)", source.protocol,
                      source.ip, source.port, exc.reason)  # fmt: skip
            return
        _log.info("answered %d %s to %s %s:%s", exc.status, exc.reason, source.protocol,
                  source.ip, source.port)  # fmt: skip
        if dest is None:
            self.reply(request, response, source)
        else:
            self._send_back(response.to_bytes(), source, dest)

    # -- ProxyIO ------------------------------------------------------------------------

    def now(self) -> float:
        return self.scheduler.now()

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        return self.scheduler.call_at(when, callback)

    def reply(self, request: Request, response: Response, source: Any) -> None:
        """Send a response back along the request's flow (RFC 3261 §18.2.2)."""
        assert isinstance(source, Source)
        dest = reply_address(request, source.ip, source.port) if source.conn is None else None
        self._send_back(response.to_bytes(), source, dest)

    def _send_back(self, data: bytes, source: Source, dest: tuple[str, int] | None) -> None:
        """Send a reply down the source's flow, or over UDP to ``dest``."""
        assert self.transports is not None
        if source.conn is not None:
            if not source.conn.closed:
                source.conn.send(data)
                return
            # The flow is gone: a TCP/TLS client may be reached on a new connection.
            conn = self.transports.connection_to(source.protocol, source.ip, source.port)
            if conn is not None:
                conn.send(data)
            else:
                _log.info("cannot answer %s:%s: its %s connection is gone", source.ip,
                          source.port, source.protocol)  # fmt: skip
            return
        assert dest is not None
        self.transports.send_udp(source.local, dest, data)

    def send(self, message: Message, hop: Hop, on_error: Callable[[], None]) -> None:
        assert self.transports is not None
        data = message.to_bytes()
        transports = self.transports
        if hop.conn_id is not None:
            conn = transports.connections.get(hop.conn_id)
            # Connection ids are per process: a binding from another node or an earlier
            # run may name a live connection of someone else. Only its own flow will do.
            if (
                conn is not None
                and not conn.closed
                and conn.protocol == hop.transport
                and conn.remote == (hop.host, hop.port)
            ):
                conn.send(data)
                return
        if hop.transport == "udp" and is_ip(hop.host):
            if not transports.send_udp(self._udp_local(hop.host), (hop.host, hop.port), data):
                self.scheduler.call_later(0, on_error)
            return
        conn = transports.connection_to(hop.transport, hop.host, hop.port)
        if conn is not None:
            conn.send(data)
            return
        self.spawn(self._send_slow(data, hop, on_error))

    async def _send_slow(self, data: bytes, hop: Hop, on_error: Callable[[], None]) -> None:
        """Name resolution and connection set-up, off the hot path."""
        assert self.transports is not None
        host = hop.host
        if not is_ip(host):
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, hop.port)
            except OSError as exc:
                _log.info("cannot resolve %s: %s", host, exc)
                on_error()
                return
            host = str(infos[0][4][0])
        local = self._udp_local(host) if hop.transport == "udp" else None
        sent = await self.transports.send(
            hop.transport, (host, hop.port), data, local=local, server_name=hop.host
        )
        if not sent:
            on_error()

    def _listener(self, protocol: str) -> tuple[str, str, int]:
        assert self.transports is not None
        listeners = self.transports.listeners
        for listener in listeners:
            if listener.protocol == protocol:
                return listener.protocol, listener.host, listener.port
        first = listeners[0]
        return first.protocol, first.host, first.port

    def _udp_local(self, dest_ip: str) -> tuple[str, int]:
        """The UDP socket to send to ``dest_ip`` from: one of its address family."""
        assert self.transports is not None
        v6 = ":" in dest_ip
        for listener in self.transports.listeners:
            if listener.protocol == "udp" and (":" in listener.host) == v6:
                return listener.host, listener.port
        _, host, port = self._listener("udp")
        return host, port

    def _advertised(self, bound: str, peer: str) -> str:
        """The address to show ``peer``: externAddr outside localnets (a peer known by
        name is outside), else the bound address, or the routed local address when bound
        to a wildcard. Whatever we advertise is ours: Routes naming it come back to us."""
        if self.extern_addr and (not is_ip(peer) or not self._is_local(peer)):
            return self.extern_addr
        if bound not in _WILDCARDS:
            return bound
        address = local_ip_for(peer if is_ip(peer) else _DEFAULT_ROUTE_PROBE)
        if address not in self.identity.hosts:
            self.identity.hosts.add(address)
        return address

    def _is_local(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        return addr.is_loopback or any(addr in net for net in self.localnets)

    def via_for(self, hop: Hop) -> tuple[str, str, int]:
        _, host, port = self._listener(hop.transport)
        return hop.transport, self._advertised(host, hop.host), port

    def inbound_via(self, source: Any) -> tuple[str, str, int]:
        assert isinstance(source, Source)
        _, host, port = self._listener(source.protocol)
        return source.protocol, self._advertised(host, source.ip), port

    def is_self(self, uri: SipURI) -> bool:
        return self.identity.is_self(uri)

    async def drain(self, seconds: float) -> None:
        """Let open transactions finish, for up to ``seconds``."""
        deadline = self.scheduler.now() + seconds
        while self.scheduler.now() < deadline:
            busy = (self.proxy.pending() if self.proxy is not None else 0) + len(self._tasks)
            if not busy:
                return
            await asyncio.sleep(0.05)


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
