"""Start, run and stop the whole server on one event loop."""

from __future__ import annotations

import asyncio
import logging
import signal

from routr import __version__
from routr.core.identity import Identity
from routr.models.config import Config
from routr.server.sip import SipService
from routr.transport.manager import BindError, ListenerSpec, TransportManager
from routr.transport.scheduler import Scheduler
from routr.transport.tls import TlsConfigError, server_context

_log = logging.getLogger("routr.server")

DRAIN_SECONDS = 5.0


class StartError(Exception):
    """The server cannot start; the text is the one line to print."""


class Server:
    """routr-server: SIP transports (and, as they land, the REST API and the rest)."""

    def __init__(self, config: Config, *, data_dir: str | None = None) -> None:
        self.config = config
        self.data_dir = data_dir
        self.transports: TransportManager | None = None
        self._stop = asyncio.Event()

    def listener_specs(self) -> list[ListenerSpec]:
        spec = self.config.spec
        return [
            ListenerSpec(t.protocol, t.bind_addr or spec.bind_addr, t.port) for t in spec.transport
        ]

    async def start(self) -> None:
        spec = self.config.spec
        loop = asyncio.get_running_loop()
        ssl_context = None
        if any(t.protocol in ("tls", "wss") for t in spec.transport):
            try:
                ssl_context = server_context(spec.security_context)
            except TlsConfigError as exc:
                raise StartError(str(exc)) from None
        specs = self.listener_specs()
        identity = Identity.discover(
            {s.host for s in specs},
            {s.port for s in specs},
            {spec.extern_addr} if spec.extern_addr else set(),
        )
        self.sip = SipService(identity, self.config.user_agent, spec.security.max_message_size)
        self.scheduler = Scheduler(loop)
        self.transports = TransportManager(
            self.sip.on_data,
            self.scheduler,
            max_message_size=spec.security.max_message_size,
            max_connections_per_source=spec.security.max_connections_per_source,
            idle_timeout=spec.security.idle_timeout,
            ssl_context=ssl_context,
        )
        self.sip.transports = self.transports
        try:
            await self.transports.start(specs)
        except BindError as exc:
            raise StartError(str(exc)) from None
        # Ports asked as 0 are known now: the identity must answer to the real ones.
        identity.ports |= {listener.port for listener in self.transports.listeners}
        bound = ", ".join(f"{x.protocol} {x.host}:{x.port}" for x in self.transports.listeners)
        source = spec.data_source
        _log.info(
            "routr %s listening on %s; data source %s (%s)",
            __version__,
            bound,
            source.provider,
            self.data_dir or source.parameters,
        )

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        await self._stop.wait()
        _log.info("stopping: no new connections, draining for up to %.0f s", DRAIN_SECONDS)
        await self.stop()

    async def stop(self) -> None:
        if self.transports is None:
            return
        await self.transports.stop_accepting()
        # Transactions (when the proxy lands) get up to DRAIN_SECONDS to finish here.
        await self.transports.stop()
        self.scheduler.close()
        _log.info("stopped")
