"""``redis_data_provider``: Routr v1's layout (``SET <ref> <json>``, ``SADD <kind>s <ref>``).

Writes run in WATCH/MULTI/EXEC on a version key so the referential checks and the write are
one atomic step across nodes; every write is announced on a pub/sub channel so every node
refreshes its cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from routr.models import KINDS, PLURALS, Resource, describe, parse_resource, resource_to_dict

from .errors import ProviderUnavailable
from .provider import DataProvider, Plan
from .snapshot import Change, Snapshot

log = logging.getLogger(__name__)

CHANNEL = "routr:data:changes"
VERSION_KEY = "routr:data:version"
SECRET_KEY = "routr:secret"
BANS_KEY = "routr:bans"  # hash: address -> wall-clock end of its ban
_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisProvider(DataProvider):
    """Resources in Redis; reads are served from a cache kept fresh by pub/sub."""

    name: ClassVar[str] = "redis_data_provider"

    def __init__(
        self,
        host: str = "localhost",
        port: int = 6379,
        secret: str | None = None,
        db: int = 0,
        tls: bool = False,
        username: str | None = None,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__()
        self.where = f"redis://{host}:{port}/{db}"
        self.max_backoff = max_backoff
        options: dict[str, Any] = {
            "host": host,
            "port": port,
            "db": db,
            "password": secret or None,
            "username": username or None,
            "ssl": tls,
            "decode_responses": True,
            "socket_connect_timeout": 3.0,
        }
        retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 2)
        self._client = aioredis.Redis(**options, socket_timeout=5.0, retry=retry)
        self._listen_client = aioredis.Redis(**options)
        self._node = uuid.uuid4().hex
        self._listening = False
        self._closing = False
        self._bad_entries: set[str] = set()

    def _cache_is_fresh(self) -> bool:
        # the cache is only as good as the subscription that keeps it fresh
        return self._listening

    @contextlib.asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except _DOWN_ERRORS as exc:
            raise ProviderUnavailable(f"{self.where} is unreachable: {exc}") from exc
        except RedisError as exc:
            raise ProviderUnavailable(f"{self.where}: {exc}") from exc

    async def start(self) -> None:
        await super().start()
        self._tasks.append(asyncio.create_task(self._listen(), name=f"{self.name}: listen"))

    async def close(self) -> None:
        # redis-py can swallow a cancellation inside get_message: the flag ends the loop too
        self._closing = True
        await super().close()
        self._listening = False
        await self._client.aclose()
        await self._listen_client.aclose()

    # --- reading ------------------------------------------------------------------------

    def _parse(self, kind: str, ref: str, raw: str | None) -> Resource | None:
        if raw is None:
            return None  # listed in the set, value gone: a v1 writer died half-way
        try:
            return parse_resource(json.loads(raw), kind)
        except (ValueError, ValidationError) as exc:
            # log each bad entry once, not on every reload
            if f"{ref}:{raw}" not in self._bad_entries:
                self._bad_entries.add(f"{ref}:{raw}")
                why = describe(exc) if isinstance(exc, ValidationError) else str(exc)
                log.error("%s: %s %s is invalid and ignored: %s", self.where, kind, ref, why)
            return None

    async def _read_all(self, conn: aioredis.Redis | Pipeline) -> Snapshot:
        resources: list[Resource] = []
        for kind in KINDS:
            members = await conn.smembers(PLURALS[kind])  # type: ignore[misc]
            refs = sorted(str(m) for m in members)
            values = await conn.mget(refs) if refs else []
            parsed = (
                self._parse(kind, ref, None if raw is None else str(raw))
                for ref, raw in zip(refs, values, strict=True)
            )
            found = [r for r in parsed if r is not None]
            found.sort(
                key=lambda r: (r.metadata.createdOn is not None, r.metadata.createdOn, r.ref)
            )
            resources.extend(found)
        return Snapshot.of(resources)

    async def _load(self) -> Snapshot:
        async with self._errors():
            return await self._read_all(self._client)

    # --- writing ------------------------------------------------------------------------

    async def _mutate(self, plan: Plan) -> Change:
        async with self._errors(), self._client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(VERSION_KEY)
                    snapshot = await self._read_all(pipe)
                    change = plan(snapshot)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    self._queue_write(pipe, change)
                    await pipe.execute()
                    break
                except WatchError:
                    continue  # another node wrote in between: check again on fresh data
                finally:
                    await pipe.reset()  # type: ignore[no-untyped-call]
        self._set_snapshot(snapshot.apply(change))
        return change

    def _queue_write(self, pipe: Pipeline, change: Change) -> None:
        collection, ref = PLURALS[change.kind], change.ref
        if change.type == "DELETED":
            pipe.delete(ref)
            pipe.srem(collection, ref)
        else:
            pipe.set(ref, json.dumps(resource_to_dict(change.resource, defaults=False)))
            pipe.sadd(collection, ref)
        pipe.incr(VERSION_KEY)
        note = {"node": self._node, "type": change.type, "kind": change.kind, "ref": ref}
        pipe.publish(CHANNEL, json.dumps(note))

    async def load_bans(self, now: float) -> dict[str, float]:
        async with self._errors():
            stored = await self._client.hgetall(BANS_KEY)
            raw = {str(ip): str(until) for ip, until in stored.items()}
            over = [ip for ip, until in raw.items() if float(until) <= now]
            if over:
                await self._client.hdel(BANS_KEY, *over)
        return {ip: float(until) for ip, until in raw.items() if float(until) > now}

    async def save_ban(self, ip: str, until: float) -> None:
        async with self._errors():
            await self._client.hset(BANS_KEY, ip, repr(until))

    async def remove_ban(self, ip: str) -> None:
        async with self._errors():
            await self._client.hdel(BANS_KEY, ip)

    async def shared_secret(self) -> bytes | None:
        """One secret for every node on this Redis: the first to start sets it."""
        token = secrets.token_hex(32)
        async with self._errors():
            # One round trip: the value already there, or None when ours was set.
            value = await self._client.set(SECRET_KEY, token, nx=True, get=True)
        return str(value if value is not None else token).encode()

    # --- following other nodes ----------------------------------------------------------

    async def _listen(self) -> None:
        """Reload on every change announced by another node; reconnect with back-off."""
        delay, down_since_logged = 0.25, False
        while not self._closing:
            pubsub = self._listen_client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                # messages sent while we were away are lost: reload once subscribed
                await self._reload()
                self._listening, delay = True, 0.25
                if down_since_logged:
                    log.info("%s: connected again", self.where)
                    down_since_logged = False
                while not self._closing:
                    message = await pubsub.get_message(timeout=0.5)
                    if message is not None and self._from_elsewhere(message):
                        await self._reload()
            except (*_DOWN_ERRORS, RedisError) as exc:
                self._listening = False
                if not down_since_logged:
                    log.warning("%s: connection lost (%s); retrying", self.where, exc)
                    down_since_logged = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
            finally:
                self._listening = False
                with contextlib.suppress(*_DOWN_ERRORS, RedisError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _from_elsewhere(self, message: dict[str, Any]) -> bool:
        try:
            return bool(json.loads(message["data"]).get("node") != self._node)
        except (ValueError, AttributeError, TypeError):
            return True
