"""Start, run and stop the whole server on one event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
from pathlib import Path
from typing import ClassVar

from routr import __version__, gcwatch
from routr.api.context import ApiContext
from routr.api.logring import LogRing
from routr.api.server import ApiServer, CertificateError
from routr.core.acl import AclError
from routr.core.identity import Identity
from routr.core.service import SipService
from routr.data import Change, DataError, FilesProvider, LiveIndex, open_provider
from routr.data.provider import DataProvider
from routr.data.secrets import load_secrets
from routr.events import (
    Bus,
    Event,
    ResourceCreated,
    ResourceDeleted,
    ResourceEvent,
    ResourceUpdated,
    SecurityBanned,
    log_events,
)
from routr.events.nats import NatsPublisher
from routr.location import LocationStore, open_store
from routr.models.config import Config
from routr.models.resources import User
from routr.server.io import TransportIO
from routr.server.reload import reload_server
from routr.sip.limits import LimitHits
from routr.transport.manager import BindError, ListenerSpec, TransportManager, bind_failure
from routr.transport.routes import host_addresses
from routr.transport.scheduler import Scheduler
from routr.transport.tls import TlsConfigError, server_context

_log = logging.getLogger("routr.server")


DRAIN_SECONDS = 5.0
UNREGISTER_SECONDS = 2.0  # the most a stop waits for gateways' un-REGISTERs (in the drain)
SWEEP_SECONDS = 5.0
_RESOURCE_EVENTS: dict[str, type[ResourceEvent]] = {
    "ADDED": ResourceCreated,
    "MODIFIED": ResourceUpdated,
    "DELETED": ResourceDeleted,
}


#: dataSource parameters fit to show: where the data is, not how to get in.
_SHOWN_PARAMETERS = frozenset({"path", "host", "port", "db", "tls", "baseUrl", "username"})


def _no_userinfo(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else value


class StartError(Exception):
    """The server cannot start; the text is the one line to print. The environment is at
    fault (a port in use, Redis unreachable): the same configuration may work later."""

    exit_code: ClassVar[int] = 1


class ConfigProblem(StartError):
    """The configuration is at fault (a certificate file or data folder that does not
    exist, a bad ACL): exit 2, like a config.yml that does not validate."""

    exit_code = 2


class Server:
    """routr-server: SIP transports, data, location, registrar, router and proxy."""

    def __init__(
        self,
        config: Config,
        *,
        data_dir: str | None = None,
        sweep_seconds: float = SWEEP_SECONDS,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path  # read again by a reload
        self.data_dir = data_dir
        self.sweep_seconds = sweep_seconds
        self.started = time.time()
        #: Every event of the process; the log is its first subscriber.
        self.bus = Bus(node=f"{socket.gethostname()}:{os.getpid()}")
        log_events(self.bus)
        #: The last log records, for the API; attached while the server runs.
        self.logs = LogRing(config.spec.rest_service.log_records)
        self.api: ApiServer | None = None
        nats = config.spec.events.nats
        #: Off unless ``events.nats`` is configured; its queue takes events from the start.
        self.publisher = NatsPublisher(self.bus, nats) if nats is not None else None
        self.transports: TransportManager | None = None
        self.provider: DataProvider | None = None
        self.live: LiveIndex | None = None
        self.store: LocationStore | None = None
        self.sip: SipService | None = None
        self.io: TransportIO | None = None
        self._stop = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._ban_writes: set[asyncio.Task[None]] = set()
        self._kept_bans: set[str] = set()  # the bans the data source held at the last read
        self._follower: asyncio.Task[None] | None = None

    def listener_specs(self) -> list[ListenerSpec]:
        spec = self.config.spec
        return [
            ListenerSpec(t.protocol, t.bind_addr or spec.bind_addr, t.port) for t in spec.transport
        ]

    async def start(self) -> None:
        """Compose: data, location, secrets, transports, the SIP service; then listen."""
        spec = self.config.spec
        ssl_context = None
        if any(t.protocol in ("tls", "wss") for t in spec.transport):
            try:
                ssl_context = server_context(spec.security_context)
            except TlsConfigError as exc:
                raise ConfigProblem(str(exc)) from None
        await self._start_data()
        await self._start_location()
        assert self.provider is not None and self.live is not None and self.store is not None
        live = self.live
        specs = self.listener_specs()
        identity = Identity.of(
            {s.host for s in specs},
            {s.port for s in specs},
            {*([spec.extern_addr] if spec.extern_addr else []), *await host_addresses()},
        )
        self.scheduler = scheduler = Scheduler(asyncio.get_running_loop())
        limits = spec.security.limits
        hits = LimitHits()  # one count of every limit's hits, transports and core alike
        self.transports = TransportManager(
            scheduler,
            max_message_size=spec.security.max_message_size,
            max_connections_per_source=spec.security.max_connections_per_source,
            idle_timeout=spec.security.idle_timeout,
            ssl_context=ssl_context,
            handshake_timeout=limits.handshake_timeout,
            message_timeout=limits.message_timeout,
            max_ws_frame_size=limits.max_ws_frame_size,
            limit_hits=hits,
        )
        self.io = TransportIO(
            self.transports, scheduler, identity,
            extern_addr=spec.extern_addr, localnets=spec.localnets,
            max_pending_lookups=limits.max_pending_lookups,
        )  # fmt: skip
        try:
            keys = await load_secrets(self.provider, spec.security.secret)
        except (OSError, DataError) as exc:
            await self._close_stores()
            raise StartError(f"secret: {exc}") from None
        try:
            self.sip = SipService(
                self.config,
                self.io,
                clock=scheduler.now,
                emit=self.bus.emit,
                secrets=keys,
                index=lambda: live.index,
                location=self.store,
                identity=identity,
                limit_hits=hits,
            )
        except AclError as exc:
            await self._close_stores()
            raise ConfigProblem(f"accessControlList: {exc}") from None
        self.provider.subscribe(self._resource_changed)
        try:
            await self.sip.load_peers()  # before the first packet: Peers are trusted by address
            await self._restore_bans()
            self.bus.subscribe(self._keep_ban, "security.banned", name="ban keeper")
            await self.transports.start(specs, self.sip.on_data)
        except BindError as exc:
            await self._close_stores()
            raise StartError(str(exc)) from None
        except Exception as exc:  # the location store (Redis) may fail here
            await self._close_stores()
            raise StartError(f"location: {exc}") from None
        # Ports asked as 0 are known now: the identity must answer to the real ones.
        identity.ports |= {listener.port for listener in self.transports.listeners}
        await self._start_api(keys.token_key)
        if self.publisher is not None:
            # connects in the background: SIP never waits for NATS; events since the
            # server was made wait in its queue
            self.publisher.start()
        self.sip.start()
        loop = asyncio.get_running_loop()
        self._sweeper = loop.create_task(self._sweep())
        self._follower = loop.create_task(self._follow_data())
        # Everything built so far lives as long as the process: keep it out of the
        # collector's generations so full collections (latency spikes) stay short.
        gcwatch.install()
        bound = ", ".join(f"{x.protocol} {x.host}:{x.port}" for x in self.transports.listeners)
        assert self.api is not None
        _log.info(
            "routr %s listening on %s; api %s; data source %s; location %s",
            __version__,
            bound,
            self.api.address,
            self.data_description(),
            type(self.store).__name__,
        )

    def _suppressed(self) -> int:
        assert self.sip is not None and self.transports is not None
        return self.sip.drops.suppressed + self.transports.drops.suppressed

    async def _start_api(self, token_key: bytes) -> None:
        assert self.sip is not None and self.provider is not None and self.io is not None
        assert self.live is not None and self.store is not None
        logging.getLogger().addHandler(self.logs)
        ctx = ApiContext(
            config=self.config,
            provider=self.provider,
            live=self.live,
            store=self.store,
            sip=self.sip,
            bus=self.bus,
            token_key=token_key,
            logs=self.logs,
            started=self.started,
            data_description=self.data_description(),
            listeners=self.io.listeners,
            reload=self.reload,
            lift_ban=self.lift_ban,
            suppressed=self._suppressed,
        )
        folder = self.provider.path if isinstance(self.provider, FilesProvider) else Path("config")
        self.api = ApiServer(ctx, cert_folder=folder)
        rest = self.config.spec.rest_service
        try:
            await self.api.start()
        except OSError as exc:
            await self.stop()
            where = f"restService {rest.bind_addr}:{rest.port}"
            raise StartError(f"{where}: {bind_failure(exc)}") from None
        except CertificateError as exc:
            await self.stop()
            raise ConfigProblem(str(exc)) from None

    async def lift_ban(self, ip: str) -> bool:
        """End a ban in the data source, where every node reads bans from, then here (in
        that order: a sweep between the two would bring it back)."""
        assert self.sip is not None and self.provider is not None
        kept = ip in await self.provider.load_bans(time.time())
        await self.provider.remove_ban(ip)
        self._kept_bans.discard(ip)
        return self.sip.guard.lift(ip) or kept

    def _keep_ban(self, event: Event) -> None:
        assert isinstance(event, SecurityBanned) and self.provider is not None
        until = event.timestamp + event.seconds
        task = asyncio.get_running_loop().create_task(self.provider.save_ban(event.ip, until))
        self._ban_writes.add(task)
        task.add_done_callback(self._ban_written)

    def _ban_written(self, task: asyncio.Task[None]) -> None:
        self._ban_writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.warning("could not keep a ban in the data source: %s", task.exception())

    async def _restore_bans(self) -> None:
        """Bans kept in the data source (other nodes', or from before a restart)."""
        assert self.sip is not None and self.provider is not None
        try:
            kept = await self.provider.load_bans(time.time())
        except DataError as exc:
            _log.warning("could not read the bans kept in the data source: %s", exc)
            return
        # a ban read before and gone now was lifted on another node: lift it here too
        for ip in self._kept_bans - kept.keys():
            self.sip.guard.lift(ip)
        self._kept_bans = set(kept)
        self.sip.guard.restore(kept)

    async def reload(self) -> dict[str, object]:
        """Re-read the data source and the config file (``POST /system/reload``)."""
        return await reload_server(self)

    def _resource_changed(self, change: Change) -> None:
        resource = change.resource
        event = _RESOURCE_EVENTS[change.type](
            timestamp=self.scheduler.now(),
            kind=resource.kind,
            ref=resource.ref,
            name_=resource.metadata.name,
        )
        self.bus.emit(event)

    def data_description(self) -> str:
        """The data source in words for logs, events and ``/system/info``: where, never
        with what credentials."""
        source = self.config.spec.data_source
        if self.data_dir:
            return f"files_data_provider (path={self.data_dir})"
        shown = ",".join(
            f"{key}={_no_userinfo(value)}"
            for key, value in source.params.items()
            if key in _SHOWN_PARAMETERS
        )
        return f"{source.provider} ({shown})"

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

    async def _follow_data(self) -> None:
        """Tell the service of every index rebuild (Gateways to register, or not)."""
        live = self.live
        assert live is not None and self.sip is not None
        seen = [live.version]
        while True:
            try:
                await live.wait_for(lambda _: live.version != seen[0], timeout=3600)
            except TimeoutError:
                continue
            seen[0] = live.version
            self.sip.data_changed()

    async def _unregister_gateways(self) -> None:
        """Un-REGISTER every registered Gateway while the transports still run; a registrar
        that does not answer in time keeps the binding until it expires."""
        if self.sip is None:
            return
        registry = self.sip.gateways
        registry.stop()
        deadline = time.monotonic() + UNREGISTER_SECONDS
        while registry.unregistering() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if registry.unregistering():
            _log.warning("%d gateway un-registration(s) unanswered", registry.unregistering())
        registry.close()

    async def _sweep(self) -> None:
        assert self.sip is not None
        while True:
            await asyncio.sleep(self.sweep_seconds)
            try:
                await self.sip.sweep()
            except Exception:
                _log.exception("location sweep failed")
            await self._restore_bans()  # other nodes' bans hold here too

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
        if self.api is not None:
            await self.api.stop()  # first: operators' streams end, no write lands mid-drain
        logging.getLogger().removeHandler(self.logs)
        if self._follower is not None:
            self._follower.cancel()  # no data change may register anything from now on
        if self.transports is not None and self.sip is not None:
            await self.transports.stop_accepting()
            await asyncio.gather(self._drain(DRAIN_SECONDS), self._unregister_gateways())
            await self.transports.stop()
            self.scheduler.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.sip is not None:
            self.sip.gateways.close()
        await self._close_stores()
        if self.publisher is not None:
            await self.publisher.close()  # after the drain: its last events go out too
        _log.info("stopped")

    async def _drain(self, seconds: float) -> None:
        """Let open transactions and running work finish, for up to ``seconds``."""
        assert self.sip is not None and self.io is not None
        deadline = time.monotonic() + seconds
        while self.sip.pending() + self.io.running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _close_stores(self) -> None:
        if self.live is not None:
            await self.live.close()
        if self.provider is not None:
            await self.provider.close()
        if self.store is not None:
            await self.store.close()
