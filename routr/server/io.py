"""The I/O adapter of the SIP service: sockets, timers, tasks and names for the core.

:class:`TransportIO` is the :class:`routr.core.service.ServiceIO`: it sends over the
transports (reusing flows, resolving names and opening connections off the hot path),
runs the timer heap, runs the core's async work as tasks, and knows which of our
addresses to show each peer (``externAddr`` outside ``localnets``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from routr.core.identity import Identity
from routr.core.routing import Hop, TimerHandle
from routr.models.fields import is_ip
from routr.sip.message import Message
from routr.transport.manager import TransportManager
from routr.transport.routes import local_ip_for
from routr.transport.scheduler import Scheduler

_log = logging.getLogger("routr.sip")
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})
# A TEST-NET address: asking the kernel for its route sends nothing and tells which local
# address the default route uses (for peers known only by name).
_DEFAULT_ROUTE_PROBE = "192.0.2.1"


class TransportIO:
    """Sends and times for the core over one :class:`TransportManager`."""

    def __init__(
        self,
        transports: TransportManager,
        scheduler: Scheduler,
        identity: Identity,
        *,
        extern_addr: str | None = None,
        localnets: list[str] | None = None,
        max_pending_lookups: int = 100,
    ) -> None:
        self.transports = transports
        self.scheduler = scheduler
        self.identity = identity
        self.extern_addr = extern_addr
        self.localnets = [ipaddress.ip_network(n, strict=False) for n in localnets or []]
        self._tasks: set[asyncio.Task[None]] = set()
        #: getaddrinfo runs in the loop's few executor threads; lookups past the bound
        #: would only queue there (and hold their messages), so they fail at once instead.
        self.max_pending_lookups = max_pending_lookups
        self.lookups = 0

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        return self.scheduler.call_at(when, callback)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run the core's async work (router, location, registrar) as a task."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("request handling failed", exc_info=task.exception())

    def running(self) -> int:
        return len(self._tasks)

    def send_back(self, data: bytes, source: Any, dest: tuple[str, int] | None) -> None:
        """Send a reply down the source's flow, or over UDP to ``dest``."""
        if source.conn is not None:
            if not source.conn.closed:
                source.conn.send(data)
                return
            # The flow is gone: a TCP/TLS client may be reached on a new connection.
            conn = self.transports.connection_to(source.protocol, source.ip, source.port)
            if conn is not None:
                conn.send(data)
            else:
                line = f"cannot answer {source.ip}:{source.port}: its {source.protocol} "
                self.transports.drops.note(source.ip, "gone", line + "connection is gone")
            return
        assert dest is not None
        self.transports.send_udp(source.local, dest, data)

    def send(self, message: Message, hop: Hop, on_error: Callable[[], None]) -> None:
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
        host = hop.host
        if not is_ip(host):
            if self.lookups >= self.max_pending_lookups:
                self.transports.limit_hits.hit("dns_lookups")
                self.transports.drops.note(host, "dns_lookups", f"not resolving {host}: "
                                           f"{self.lookups} lookups pending already")  # fmt: skip
                on_error()
                return
            self.lookups += 1
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, hop.port)
            except OSError as exc:
                # once a while per name: every message to a name that fails comes here
                self.transports.drops.note(host, "resolve", f"cannot resolve {host}: {exc}")
                on_error()
                return
            finally:
                self.lookups -= 1
            host = str(infos[0][4][0])
        local = self._udp_local(host) if hop.transport == "udp" else None
        sent = await self.transports.send(
            hop.transport, (host, hop.port), data, local=local, server_name=hop.host
        )
        if not sent:
            on_error()

    def _listener(self, protocol: str) -> tuple[str, str, int]:
        listeners = self.transports.listeners
        for listener in listeners:
            if listener.protocol == protocol:
                return listener.protocol, listener.host, listener.port
        first = listeners[0]
        return first.protocol, first.host, first.port

    def _udp_local(self, dest_ip: str) -> tuple[str, int]:
        """The UDP socket to send to ``dest_ip`` from: one of its address family."""
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
        _, host, port = self._listener(source.protocol)
        return source.protocol, self._advertised(host, source.ip), port

    def listeners(self) -> list[dict[str, Any]]:
        """The bound listeners, as plain data."""
        return [
            {"protocol": x.protocol, "host": x.host, "port": x.port}
            for x in self.transports.listeners
        ]
