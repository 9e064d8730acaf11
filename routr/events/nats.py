"""Events published on NATS: ``<subject>.<event>`` with the event's JSON body.

The publisher reads its own bounded queue of the bus, so SIP handling never waits for NATS.
While NATS cannot be reached events wait in that queue; what does not fit is dropped and
counted (``Bus.dropped["nats"]``, ``routr_events_dropped_total``), and each outage is
logged when it starts and when it ends, never per event. With ``stream`` set, events go
through JetStream (the stream is created when missing) so consumers can replay them; the
publisher awaits each acknowledgement, off the SIP path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from routr.models.config import Nats

from .bus import Bus, EventQueue, QueueClosed
from .types import Event

log = logging.getLogger("routr.events.nats")

FIRST_RETRY = 0.5
MAX_RETRY = 10.0
PUBLISH_TRIES = 3  # while connected; an outage waits without counting
CLOSE_SECONDS = 2.0  # the most a stop waits for pending events to go out


def shown(url: str) -> str:
    """``url`` fit for a log line: credentials in it (``nats://user:pass@host``) left out."""
    scheme, sep, rest = url.rpartition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


def subject_of(prefix: str, event: Event) -> str:
    return f"{prefix}.{event.name}"


def body_of(event: Event, node: str | None) -> bytes:
    return json.dumps(event.to_dict(node), separators=(",", ":")).encode()


class NatsPublisher:
    """Publishes every event of ``bus`` on NATS, from ``start`` until ``close``."""

    def __init__(self, bus: Bus, config: Nats) -> None:
        self.bus = bus
        self.config = config
        self.urls = [config.url] if isinstance(config.url, str) else list(config.url)
        self.queue: EventQueue = bus.queue(config.queue_size, name="nats")
        self.published = 0
        self._client: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._down_since_drops: int | None = None
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nats publisher")

    async def close(self) -> None:
        """Publish what is pending (for up to ``CLOSE_SECONDS``), then disconnect."""
        self._closing = True
        self.queue.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_SECONDS)
            except Exception as exc:  # the publisher failed earlier: said so, not raised
                if not isinstance(exc, TimeoutError):
                    log.error("NATS publisher had stopped: %s", exc)
                    self._task = None
            if self._task is not None and not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                log.warning("NATS: %d event(s) not published at stop", len(self.queue))
        if self._client is not None and not self._client.is_closed:
            with contextlib.suppress(Exception):
                await self._client.drain()

    # -- connection ----------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        c = self.config
        options: dict[str, Any] = {
            "servers": self.urls,
            "name": f"routr {self.bus.node or ''}".strip(),
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 2,
            "connect_timeout": 2,
            "disconnected_cb": self._disconnected,
            "reconnected_cb": self._reconnected,
            "error_cb": self._error,
        }
        if c.user:
            options["user"], options["password"] = c.user, c.password or ""
        if c.token:
            options["token"] = c.token
        if c.creds_file:
            options["user_credentials"] = c.creds_file
        if c.ca_file or any(u.startswith("tls://") for u in self.urls):
            context = ssl.create_default_context(cafile=c.ca_file)
            if c.cert_file and c.key_file:
                context.load_cert_chain(c.cert_file, c.key_file)
            options["tls"] = context
        return options

    async def _connect(self) -> None:
        """Connect; the client retries by itself every ``reconnect_time_wait`` (each failure
        comes to ``_error``), this loop only when it gives up."""
        wait = FIRST_RETRY
        while True:
            try:
                self._client = await nats.connect(**self._options())
            except Exception as exc:  # nats raises its own errors and OSErrors alike
                await self._error(exc)
                await asyncio.sleep(wait)
                wait = min(wait * 2, MAX_RETRY)
                continue
            if self.config.stream:
                try:
                    self._js = self._client.jetstream()
                    await self._ensure_stream()
                except Exception as exc:  # JetStream off, no responders, a timeout
                    log.error("NATS: JetStream stream %s not usable (%s); retrying",
                              self.config.stream, exc)  # fmt: skip
                    with contextlib.suppress(Exception):
                        await self._client.close()
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, MAX_RETRY)
                    continue
            url = self._client.connected_url
            where = f"{url.hostname}:{url.port}" if url else ",".join(map(shown, self.urls))
            log.info("NATS: connected to %s", where)
            self._outage_ended()
            self._up.set()
            return

    async def _ensure_stream(self) -> None:
        assert self._js is not None and self.config.stream is not None
        wanted = f"{self.config.subject}.>"
        try:
            info = await self._js.stream_info(self.config.stream)
        except Exception:
            await self._js.add_stream(name=self.config.stream, subjects=[wanted])
            log.info("NATS: created JetStream stream %s for %s", self.config.stream, wanted)
            return
        subjects = list(info.config.subjects or [])
        if wanted not in subjects:
            log.warning("NATS: stream %s does not take %s (it takes %s); events may not be kept",
                        self.config.stream, wanted, ", ".join(subjects))  # fmt: skip

    async def _disconnected(self) -> None:
        if self._up.is_set() and not self._closing:
            self._up.clear()
            log.error("NATS: disconnected; events wait in a queue of %d", self.queue.maxsize)
            self._outage_started()

    async def _reconnected(self) -> None:
        log.info("NATS: reconnected")
        self._outage_ended()
        self._up.set()

    async def _error(self, exc: Exception) -> None:
        if not self._up.is_set() and self._down_since_drops is None and not self._closing:
            log.error("NATS %s unreachable (%s); retrying", ",".join(map(shown, self.urls)), exc)
            self._outage_started()
        else:
            log.debug("NATS: %s", exc)

    def _outage_started(self) -> None:
        if self._down_since_drops is None:
            self._down_since_drops = self.queue.dropped

    def _outage_ended(self) -> None:
        if self._down_since_drops is not None:
            lost = self.queue.dropped - self._down_since_drops
            if lost:
                log.warning("NATS: %d event(s) dropped while it was unreachable", lost)
            self._down_since_drops = None

    # -- publishing ------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._connect()
        node, prefix = self.bus.node, self.config.subject
        while True:
            try:
                event = await self.queue.get()
            except QueueClosed:
                return
            subject, body = subject_of(prefix, event), body_of(event, node)
            refused = 0
            while not await self._publish(subject, body):
                if self._up.is_set():
                    refused += 1  # connected, yet refused: the event itself is the trouble
                if refused >= PUBLISH_TRIES:
                    log.error("NATS: %s not published after %d tries; dropped", subject, refused)
                    self.bus._count_drop(self.queue.name)
                    break

    async def _publish(self, subject: str, body: bytes) -> bool:
        """One event out; False (to retry once connected) when NATS refused or is away."""
        await self._up.wait()
        assert self._client is not None
        try:
            if self._js is not None:
                await self._js.publish(subject, body, timeout=2)
            else:
                await self._client.publish(subject, body)
        except Exception as exc:
            if self._up.is_set() and self._client.is_connected:
                log.warning("NATS: publishing %s failed (%s); retrying", subject, exc)
                await asyncio.sleep(FIRST_RETRY)
            return False
        self.published += 1
        return True
