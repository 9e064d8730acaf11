"""Listeners of every transport, the connection table, and sending.

Replies follow RFC 3261 §18.2.2: over the connection the request came on for stream
transports; for UDP to the source address (``received``) and the ``rport`` or Via port.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from routr.core.droplog import DropLog
from routr.sip.limits import LimitHits
from routr.transport.base import STREAM_PROTOCOLS, Connection, MessageHandler, Source
from routr.transport.scheduler import Scheduler, Timer
from routr.transport.stream import StreamConnection, stream_factory
from routr.transport.udp import UdpProtocol
from routr.transport.ws import serve_ws

_log = logging.getLogger("routr.transport")


class BindError(Exception):
    """A listener could not be bound; the text names protocol, address and reason."""


_BIND_FAILURES = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
    errno.EADDRNOTAVAIL: "cannot bind: no interface of this host has that address",
}


def bind_failure(exc: OSError) -> str:
    """Why a bind failed, in words. uvloop reports a UDP bind failure as "could not bind to
    local_addr" without an errno; the errno is on the error it was raised from."""
    cause = exc.__cause__
    code = exc.errno if exc.errno is not None or not isinstance(cause, OSError) else cause.errno
    if code is None:
        return f"cannot bind: {exc}"
    return _BIND_FAILURES.get(code) or f"cannot bind: {os.strerror(code).lower()}"


def _unstarted(_data: bytes, _source: Source) -> None:
    raise RuntimeError("TransportManager.start() gives the message handler")


@dataclass(frozen=True)
class ListenerSpec:
    protocol: str
    host: str
    port: int


@dataclass
class Listener:
    """A bound listener; ``port`` is the real one (useful when 0 was asked for)."""

    protocol: str
    host: str
    port: int
    server: Any = None


class TransportManager:
    """Owns every socket of the SIP side."""

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        max_message_size: int = 65535,
        max_connections_per_source: int = 256,
        idle_timeout: float = 600.0,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 10.0,
        message_timeout: float = 20.0,
        max_ws_frame_size: int = 65535,
        limit_hits: LimitHits | None = None,
        drops: DropLog | None = None,
    ) -> None:
        self.handler: MessageHandler = _unstarted
        self.scheduler = scheduler
        self.max_message_size = max_message_size
        self.max_connections_per_source = max_connections_per_source
        self.idle_timeout = idle_timeout
        self.ssl_context = ssl_context
        #: TLS handshake and WebSocket upgrade, from accept (spec.security.limits)
        self.handshake_timeout = handshake_timeout
        #: from a message's first byte to its last, on accepted stream connections
        self.message_timeout = message_timeout
        self.max_ws_frame_size = max_ws_frame_size
        self.limit_hits = limit_hits if limit_hits is not None else LimitHits()
        #: lines about cut-off connections and failed sends, once per source and reason a
        #: while: a scan makes one per connect, a flood one per message
        self.drops = drops if drops is not None else DropLog(_log, scheduler.monotonic)
        self.listeners: list[Listener] = []
        self.connections: dict[int, Connection] = {}
        self._by_remote: dict[tuple[str, str, int], Connection] = {}
        self._per_source: dict[str, int] = {}
        self._udp: dict[tuple[str, int], UdpProtocol] = {}
        self._sweeper: Timer | None = None
        self._refused_logged: set[str] = set()

    # -- listeners ----------------------------------------------------------------------

    async def start(self, specs: list[ListenerSpec], handler: MessageHandler) -> None:
        """Bind every listener, each message to ``handler``; on any failure, close what
        was bound and raise BindError."""
        self.handler = handler
        try:
            for spec in specs:
                self.listeners.append(await self._bind(spec))
        except BindError:
            await self.stop()
            raise
        self._sweeper = self.scheduler.call_later(self._sweep_period(), self._sweep)

    async def _bind(self, spec: ListenerSpec) -> Listener:
        loop = asyncio.get_running_loop()
        where = f"{spec.protocol} {spec.host}:{spec.port}"
        try:
            if spec.protocol == "udp":
                transport, proto = await loop.create_datagram_endpoint(
                    lambda: UdpProtocol(self.handler),
                    local_addr=(spec.host, spec.port),
                    reuse_port=False,
                )
                self._enlarge_buffers(transport.get_extra_info("socket"))
                self._udp[proto.local] = proto
                return Listener("udp", spec.host, proto.local[1], transport)
            if spec.protocol in ("tcp", "tls"):
                ctx = self.ssl_context if spec.protocol == "tls" else None
                server = await loop.create_server(
                    stream_factory(spec.protocol, self, self.handler, accepted=True),
                    spec.host,
                    spec.port,
                    ssl=ctx,
                    ssl_handshake_timeout=self.handshake_timeout if ctx is not None else None,
                    reuse_address=True,
                    backlog=1024,
                )
                port = server.sockets[0].getsockname()[1]
                return Listener(spec.protocol, spec.host, port, server)
            if spec.protocol in ("ws", "wss"):
                ctx = self.ssl_context if spec.protocol == "wss" else None
                ws_server = await serve_ws(spec.protocol, spec.host, spec.port, self,
                                           self.handler, ctx)  # fmt: skip
                port = next(iter(ws_server.sockets)).getsockname()[1]
                return Listener(spec.protocol, spec.host, port, ws_server)
        except OSError as exc:
            raise BindError(f"{where}: {bind_failure(exc)}") from None
        raise BindError(f"{where}: unknown protocol")

    @staticmethod
    def _enlarge_buffers(sock: socket.socket | None) -> None:
        if sock is None:
            return
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
            except OSError:
                pass

    async def stop_accepting(self) -> None:
        """Close listening sockets; established flows stay up to finish their work."""
        for listener in self.listeners:
            if listener.protocol in STREAM_PROTOCOLS and listener.server is not None:
                listener.server.close()

    async def stop(self) -> None:
        """Close every listener and connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections.values()):
            conn.close()
        for listener in self.listeners:
            server = listener.server
            if server is None:
                continue
            server.close()
            if listener.protocol in STREAM_PROTOCOLS:
                try:
                    await asyncio.wait_for(server.wait_closed(), 2.0)
                except TimeoutError:
                    pass
        self.listeners.clear()
        self._udp.clear()

    # -- connection table ---------------------------------------------------------------

    def register(self, conn: Connection) -> bool:
        """Admit a new connection, or refuse it when its source has too many."""
        ip = conn.remote[0]
        count = self._per_source.get(ip, 0)
        if count >= self.max_connections_per_source:
            self.limit_hits.hit("connections")
            if ip not in self._refused_logged:
                self._refused_logged.add(ip)
                _log.warning(
                    "refusing %s connections from %s: limit of %d reached",
                    conn.protocol, ip, self.max_connections_per_source,
                )  # fmt: skip
            return False
        self._per_source[ip] = count + 1
        self.connections[conn.id] = conn
        self._by_remote[(conn.protocol, ip, conn.remote[1])] = conn
        return True

    def unregister(self, conn: Connection) -> None:
        if self.connections.pop(conn.id, None) is None:
            return
        ip = conn.remote[0]
        left = self._per_source.get(ip, 1) - 1
        if left > 0:
            self._per_source[ip] = left
        else:
            self._per_source.pop(ip, None)
            self._refused_logged.discard(ip)
        key = (conn.protocol, ip, conn.remote[1])
        if self._by_remote.get(key) is conn:
            del self._by_remote[key]

    def deadline_passed(self, limit: str, ip: str, detail: str) -> None:
        """A connection from ``ip`` missed the deadline of ``limit`` (``handshake``,
        ``message_timeout``): count the hit and log ``detail``, rate-limited."""
        self.limit_hits.hit(limit)
        self.drops.note(ip, limit, detail)

    def connection_to(self, protocol: str, ip: str, port: int) -> Connection | None:
        conn = self._by_remote.get((protocol, ip, port))
        return conn if conn is not None and not conn.closed else None

    def _sweep_period(self) -> float:
        return max(1.0, min(30.0, self.idle_timeout / 4))

    def _sweep(self) -> None:
        deadline = self.scheduler.monotonic() - self.idle_timeout
        for conn in list(self.connections.values()):
            if conn.last_seen < deadline:
                _log.info("closing idle %r", conn)
                conn.close()
        self._sweeper = self.scheduler.call_later(self._sweep_period(), self._sweep)

    # -- sending ------------------------------------------------------------------------

    def send_udp(self, local: tuple[str, int], dest: tuple[str, int], data: bytes) -> bool:
        proto = self._udp.get(local) or next(iter(self._udp.values()), None)
        if proto is None:
            return False
        proto.send(data, dest)
        return True

    async def send(
        self,
        protocol: str,
        dest: tuple[str, int],
        data: bytes,
        *,
        conn_id: int | None = None,
        local: tuple[str, int] | None = None,
        server_name: str | None = None,
    ) -> bool:
        """Send over the given flow, an open connection to ``dest``, or a new one.

        WebSocket flows cannot be opened from this side: without a live connection the
        message is not sent and ``False`` tells the caller to answer 480/408.
        """
        if protocol == "udp":
            return self.send_udp(local or next(iter(self._udp), ("", 0)), dest, data)
        conn = self.connections.get(conn_id) if conn_id is not None else None
        if conn is None or conn.closed:
            conn = self.connection_to(protocol, dest[0], dest[1])
        if conn is None and protocol in ("tcp", "tls"):
            conn = await self._connect(protocol, dest, server_name)
        if conn is None or conn.closed:
            return False
        conn.send(data)
        return True

    async def _connect(
        self, protocol: str, dest: tuple[str, int], server_name: str | None = None
    ) -> Connection | None:
        """Open a TCP/TLS connection; TLS verifies the certificate against ``server_name``
        (the host name the route named), not the address it resolved to."""
        loop = asyncio.get_running_loop()
        ctx: ssl.SSLContext | None = None
        if protocol == "tls":
            ctx = ssl.create_default_context()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    stream_factory(protocol, self, self.handler),
                    dest[0],
                    dest[1],
                    ssl=ctx,
                    server_hostname=(server_name or dest[0]) if ctx is not None else None,
                ),
                5.0,
            )
        except (OSError, TimeoutError) as exc:
            # once a while per address: every message to a peer that is down fails here
            self.drops.note(dest[0], "connect", f"cannot open {protocol} connection to "
                            f"{dest[0]}:{dest[1]}: {str(exc) or type(exc).__name__}")  # fmt: skip
            return None
        assert isinstance(conn, StreamConnection)
        return conn if not conn.closed else None
