"""Start, run and stop the whole server on one event loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import signal
import time
from typing import ClassVar

from routr import __version__
from routr.core.acl import Acl, AclError
from routr.core.auth import AuthFailures, PeerAddresses, RequestAuthenticator
from routr.core.gateway_auth import credentials_at
from routr.core.gateways import GatewayRegistry
from routr.core.guard import Guard
from routr.core.identity import Identity
from routr.core.proxy import Proxy
from routr.core.registrar import EndpointEvent, Registrar
from routr.core.router import Router, Sessions
from routr.core.routing import Hop
from routr.data import DataError, FilesProvider, LiveIndex, open_provider
from routr.data.provider import DataProvider
from routr.data.secrets import load_secrets
from routr.location import LocationStore, open_store
from routr.models.config import Config
from routr.models.resources import User
from routr.server.sip import SipService
from routr.sip.digest import NonceIssuer
from routr.sip.message import Request, Response
from routr.transport.base import Source
from routr.transport.manager import BindError, ListenerSpec, TransportManager
from routr.transport.routes import host_addresses
from routr.transport.scheduler import Scheduler
from routr.transport.tls import TlsConfigError, server_context

_log = logging.getLogger("routr.server")

DRAIN_SECONDS = 5.0
UNREGISTER_SECONDS = 2.0  # the most a stop waits for gateways' un-REGISTERs (in the drain)
SWEEP_SECONDS = 5.0


class StartError(Exception):
    """The server cannot start; the text is the one line to print. The environment is at
    fault (a port in use, Redis unreachable): the same configuration may work later."""

    exit_code: ClassVar[int] = 1


class ConfigProblem(StartError):
    """The configuration is at fault (a certificate file or data folder that does not
    exist, a bad ACL): exit 2, like a config.yml that does not validate."""

    exit_code = 2


class _SipService(SipService):
    """Responses go to the gateway registry first (answers to our own REGISTERs), and
    finals to INVITEs are counted by the router's call table (least-sessions)."""

    registry: GatewayRegistry | None = None
    sessions: Sessions | None = None

    def on_response(self, response: Response, source: Source) -> None:
        if self.registry is not None and self.registry.on_response(response):
            return
        if self.sessions is not None:
            self.sessions.on_response(response)
        super().on_response(response, source)


class Server:
    """routr-server: SIP transports, data, location, registrar, router and proxy."""

    def __init__(self, config: Config, *, data_dir: str | None = None) -> None:
        self.config = config
        self.data_dir = data_dir
        self.transports: TransportManager | None = None
        self.provider: DataProvider | None = None
        self.live: LiveIndex | None = None
        self.store: LocationStore | None = None
        self._stop = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._follower: asyncio.Task[None] | None = None
        self.gateways: GatewayRegistry | None = None

    def listener_specs(self) -> list[ListenerSpec]:
        spec = self.config.spec
        return [
            ListenerSpec(t.protocol, t.bind_addr or spec.bind_addr, t.port) for t in spec.transport
        ]

    async def start(self) -> None:
        spec = self.config.spec
        ssl_context = None
        if any(t.protocol in ("tls", "wss") for t in spec.transport):
            try:
                ssl_context = server_context(spec.security_context)
            except TlsConfigError as exc:
                raise ConfigProblem(str(exc)) from None
        try:
            global_acl = (
                Acl.from_lists(spec.access_control_list.allow, spec.access_control_list.deny)
                if spec.access_control_list is not None
                else None
            )
        except AclError as exc:
            raise ConfigProblem(f"accessControlList: {exc}") from None
        await self._start_data()
        await self._start_location()
        assert self.live is not None and self.store is not None
        live, store = self.live, self.store

        specs = self.listener_specs()
        identity = Identity.of(
            {s.host for s in specs},
            {s.port for s in specs},
            {*([spec.extern_addr] if spec.extern_addr else []), *await host_addresses()},
        )
        self.scheduler = Scheduler(asyncio.get_running_loop())
        sip = _SipService(
            identity,
            self.config.user_agent,
            spec.security.max_message_size,
            self.scheduler,
            extern_addr=spec.extern_addr,
            localnets=spec.localnets,
            acl=global_acl,
        )
        self.sip = sip
        assert self.provider is not None
        keys = await load_secrets(self.provider, spec.security.secret)
        nonces = NonceIssuer(
            keys.nonce_key, spec.security.nonce_lifetime, algorithms=spec.security.digest_algorithms
        )
        failures = AuthFailures(
            spec.security.auth_failure_ban.failures, spec.security.auth_failure_ban.seconds
        )
        security = spec.security
        sip.guard = Guard(
            security.trusted,
            flood_requests=security.flood_ban.requests,
            flood_seconds=security.flood_ban.seconds,
            flood_ban=security.flood_ban.ban_seconds,
            failures=failures,
            auth_ban=security.auth_failure_ban.ban_seconds,
            block_scanners=security.block_scanners,
            on_ban=self._banned,
        )
        self.registrar = Registrar(
            lambda: live.index,
            store,
            spec.registrar,
            nonces,
            internal=spec.registrar_intf == "Internal",
            on_event=self._endpoint_event,
            failures=failures,
        )
        peers = PeerAddresses()
        peers.load(await store.list())
        store.on_event(peers.on_event)
        auth = RequestAuthenticator(
            lambda: live.index,
            nonces,
            is_peer_address=peers,
            enabled=spec.security.authenticate_requests,
            failures=failures,
        )
        router = Router(
            lambda: live.index,
            store,
            use_to_as_aor=spec.use_to_as_aor,
            auth=auth,
            acls=self.registrar.acls,  # one compiled set of domain ACLs for both
        )
        sip.sessions = router.sessions
        proxy = Proxy(
            sip,
            router,
            record_route=spec.record_route,
            secret=keys.route_key,
            server_header=self.config.user_agent,
            timer_c=spec.proxy.timer_c,
            gateway_credentials=lambda hop: credentials_at(live.index, hop.host, hop.port),
        )
        sip.proxy = proxy
        sip.dispatcher.proxy = self._proxy_request
        sip.dispatcher.registrar = self._register

        self.transports = TransportManager(
            sip.on_data,
            self.scheduler,
            max_message_size=spec.security.max_message_size,
            max_connections_per_source=spec.security.max_connections_per_source,
            idle_timeout=spec.security.idle_timeout,
            ssl_context=ssl_context,
        )
        sip.transports = self.transports
        try:
            await self.transports.start(specs)
        except BindError as exc:
            await self._close_stores()
            raise StartError(str(exc)) from None
        # Ports asked as 0 are known now: the identity must answer to the real ones.
        identity.ports |= {listener.port for listener in self.transports.listeners}
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        self.gateways = GatewayRegistry(
            sip, Hop, user_agent=self.config.user_agent, on_event=self._gateway_event
        )
        sip.registry = self.gateways
        self.gateways.start(live.index)
        self._follower = asyncio.get_running_loop().create_task(self._follow_gateways())
        # Everything built so far lives as long as the process: keep it out of the
        # collector's generations so full collections (latency spikes) stay short.
        gc.collect()
        gc.freeze()
        bound = ", ".join(f"{x.protocol} {x.host}:{x.port}" for x in self.transports.listeners)
        _log.info(
            "routr %s listening on %s; data source %s; location %s",
            __version__,
            bound,
            self._data_description(),
            type(store).__name__,
        )

    def _data_description(self) -> str:
        source = self.config.spec.data_source
        if self.data_dir:
            return f"files_data_provider (path={self.data_dir})"
        return f"{source.provider} ({source.parameters})"

    async def _start_data(self) -> None:
        source = self.config.spec.data_source
        provider_name, parameters = source.provider, source.params
        if self.data_dir:
            provider_name, parameters = "files_data_provider", {"path": self.data_dir}
        try:
            self.provider = open_provider(provider_name, parameters)
        except ValueError as exc:
            raise ConfigProblem(str(exc)) from None  # the text names the dataSource key
        self._check_data_folder(self.provider)
        try:
            await self.provider.start()
        except (DataError, OSError) as exc:
            raise StartError(f"dataSource: {exc}") from None
        self.live = LiveIndex(self.provider)
        await self.live.start()
        await self._ensure_admin()

    def _check_data_folder(self, provider: DataProvider) -> None:
        """A data folder that was named but is not there is a mistake (a typo, a relative
        path from another directory), not an empty deployment: running on it would serve no
        domains without a word. Only the default ``config`` may be missing: the first write
        creates it."""
        if not isinstance(provider, FilesProvider):
            return
        source = self.config.spec.data_source
        if self.data_dir:
            key = "--data"
        elif "parameters" in source.model_fields_set and "path" in source.params:
            key = "dataSource.parameters.path"
        else:
            return
        if not provider.path.exists():
            raise ConfigProblem(f"{key}: {provider.path.absolute()}: no such folder")
        if not provider.path.is_dir():
            raise ConfigProblem(f"{key}: {provider.path.absolute()}: not a folder")

    async def _ensure_admin(self) -> None:
        """First start with no User: create ``admin`` (its secret stored hashed)."""
        assert self.provider is not None
        page = await self.provider.list("User", items_per_page=1)
        if page.total:
            return
        secret = os.environ.get("INITIAL_API_SECRET")
        generated = not secret
        secret = secret or secrets.token_urlsafe(12)
        user = User.model_validate(
            {
                "apiVersion": "v1beta1",
                "kind": "User",
                "metadata": {"name": "Admin"},
                "spec": {"credentials": {"username": "admin", "secret": secret}},
            }
        )
        try:
            await self.provider.create(user)
        except DataError as exc:
            _log.warning("could not create the admin user: %s", exc)
            return
        if generated:
            _log.warning("created API user 'admin' with secret %s (shown once)", secret)
        else:
            _log.info("created API user 'admin' with the secret from INITIAL_API_SECRET")

    async def _start_location(self) -> None:
        spec = self.config.spec
        provider = spec.location.provider
        parameters = spec.location.parameters
        if provider is None and spec.data_source.provider in ("redis_data_provider", "redis"):
            provider, parameters = "redis", spec.data_source.params
        try:
            self.store = open_store(provider, parameters)
        except ValueError as exc:
            raise ConfigProblem(f"location: {exc}") from None
        try:
            await self.store.start()
        except Exception as exc:  # redis raises its own ConnectionError, not an OSError
            raise StartError(f"location: {exc}") from None

    async def _register(self, request: Request, source: object) -> None:
        assert self.sip.proxy is not None
        await self.sip.proxy.serve(
            request,
            source,
            lambda: self.registrar.handle(request, source, time.time()),  # type: ignore[arg-type]
        )

    async def _proxy_request(self, request: Request, source: object) -> None:
        assert self.sip.proxy is not None
        await self.sip.proxy.on_request(request, source)

    async def _follow_gateways(self) -> None:
        """Keep outbound registrations in step with the Gateway resources."""
        live = self.live
        assert live is not None and self.gateways is not None
        seen = [live.version]
        while True:
            try:
                await live.wait_for(lambda _: live.version != seen[0], timeout=3600)
            except TimeoutError:
                continue
            seen[0] = live.version
            self.gateways.sync(live.index)

    async def _unregister_gateways(self) -> None:
        """Un-REGISTER every registered Gateway while the transports still run; a registrar
        that does not answer in time keeps the binding until it expires."""
        registry = self.gateways
        if registry is None:
            return
        registry.stop()
        deadline = time.monotonic() + UNREGISTER_SECONDS
        while registry.unregistering() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if registry.unregistering():
            _log.warning("%d gateway un-registration(s) unanswered", registry.unregistering())
        registry.close()

    def _gateway_event(self, name: str, data: dict[str, object]) -> None:
        _log.info("%s %s at %s", name, data.get("ref"), data.get("registrar"))

    def _banned(self, ip: str, reason: str, seconds: float) -> None:
        _log.warning("security.banned %s for %.0f s: %s", ip, seconds, reason)

    def _endpoint_event(self, event: EndpointEvent) -> None:
        # Debug, not info: one line per registration costs ~15% of the REGISTER path, and
        # these events are for the event bus, not the operator's log.
        _log.debug("%s %s -> %s (%s)", event.name, event.binding.aor, event.binding.contact,
                   event.reason)  # fmt: skip

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.registrar.sweep(time.time())
            except Exception:
                _log.exception("location sweep failed")

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
        if self._follower is not None:
            self._follower.cancel()  # no data change may register anything from now on
        if self.transports is not None:
            await self.transports.stop_accepting()
            await asyncio.gather(self.sip.drain(DRAIN_SECONDS), self._unregister_gateways())
            await self.transports.stop()
            self.scheduler.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.gateways is not None:
            self.gateways.close()
        await self._close_stores()
        _log.info("stopped")

    async def _close_stores(self) -> None:
        if self.live is not None:
            await self.live.close()
        if self.provider is not None:
            await self.provider.close()
        if self.store is not None:
            await self.store.close()
