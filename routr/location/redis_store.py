"""The Redis location store: bindings shared by every node that uses the same database.

Layout (``P`` is the key prefix):

- ``P:aor:<aor>``  hash, contact -> binding JSON; its key TTL (the latest expiry of its
  bindings plus a grace) removes an AOR nobody sweeps any more, e.g. every node down;
- ``P:expiry``     sorted set, ``<aor>\\n<contact>`` scored by ``expiresAt``: what
  :meth:`RedisStore.sweep` takes expired bindings from;
- ``P:events``     pub/sub channel: every change, so watchers on each node see all nodes'.

Every change is one Lua script, so two nodes never interleave half-updates, and an expired
binding is reported by exactly one sweeping node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import uuid
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from routr.location.binding import Binding
from routr.location.store import AddResult, Bindings, Clock, EventType, LocationStore, ordered

log = logging.getLogger(__name__)

_EVENT_TYPES: frozenset[str] = frozenset({"ADDED", "MODIFIED", "DELETED", "EXPIRED"})

# KEYS: aor hash, expiry zset. ARGV: contact, json, expiresAt, callId, cseq, member, ttl,
# events channel, this node (JSON). The event is published here: no second round trip.
_ADD = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local o = cjson.decode(old)
  if ARGV[4] ~= '' and o['callId'] == ARGV[4] and tonumber(o['cseq']) >= tonumber(ARGV[5]) then
    return 'REFUSED'
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
local ttl = tonumber(redis.call('TTL', KEYS[1]))
if ttl < tonumber(ARGV[7]) then redis.call('EXPIRE', KEYS[1], ARGV[7]) end
local result = 'ADDED'
if old then result = 'MODIFIED' end
redis.call('PUBLISH', ARGV[8],
  '{"node": ' .. ARGV[9] .. ', "type": "' .. result .. '", "binding": ' .. ARGV[2] .. '}')
return result
"""

# KEYS: aor hash, expiry zset. ARGV: contact, member.
_REMOVE = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return v
"""

# KEYS: aor hash, expiry zset. ARGV: aor.
_REMOVE_ALL = """
local all = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  redis.call('ZREM', KEYS[2], ARGV[1] .. '\\n' .. all[i])
  table.insert(out, all[i + 1])
end
return out
"""

# KEYS: expiry zset. ARGV: now, batch size, aor key prefix.
# Touches hashes not listed in KEYS: fine on a standalone Redis (not Redis Cluster).
_SWEEP = """
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, m in ipairs(members) do
  redis.call('ZREM', KEYS[1], m)
  local sep = string.find(m, '\\n', 1, true)
  if sep then
    local key = ARGV[3] .. string.sub(m, 1, sep - 1)
    local contact = string.sub(m, sep + 1)
    local v = redis.call('HGET', key, contact)
    if v then
      redis.call('HDEL', key, contact)
      table.insert(out, v)
    end
  end
end
return {#members, out}
"""


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore(LocationStore):
    """Location in Redis (redis-py asyncio), shared by nodes.

    ``grace`` seconds are added to the key TTL so a sweep normally sees (and reports) an
    expiry before Redis drops the key. ``node`` names this process in bindings and events.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        db: int = 0,
        password: str | None = None,
        username: str | None = None,
        prefix: str = "routr:location",
        grace: float = 60.0,
        node: str | None = None,
        remote_events: bool = True,
        clock: Clock | None = None,
        client: aioredis.Redis | None = None,
        max_connections: int = 32,
    ) -> None:
        super().__init__(clock)
        # A blocking pool: a burst of REGISTERs waits for a free connection. redis-py's
        # default pool refuses the 101st concurrent command ("Too many connections").
        self.redis: aioredis.Redis = client or aioredis.Redis.from_pool(
            aioredis.BlockingConnectionPool(
                host=host,
                port=port,
                db=db,
                password=password,
                username=username,
                decode_responses=True,
                max_connections=max_connections,
                timeout=5,
            )
        )
        self.prefix = prefix
        self.grace = grace
        self.node = node or uuid.uuid4().hex[:12]
        self.remote_events = remote_events
        self._aor_prefix = f"{prefix}:aor:"
        self._expiry = f"{prefix}:expiry"
        self.channel = f"{prefix}:events"
        # Every event body starts with its node, as json.dumps of {"node": ..., ...} writes it.
        self._own_events = '{"node": ' + json.dumps(self.node) + ","
        self._add = self.redis.register_script(_ADD)
        self._remove = self.redis.register_script(_REMOVE)
        self._remove_all = self.redis.register_script(_REMOVE_ALL)
        self._sweep = self.redis.register_script(_SWEEP)
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the connection; with ``remote_events``, relay other nodes' events."""
        await self.redis.ping()
        if self.remote_events and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="location-events")
            await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await self._listener
            self._listener = None
        await self.redis.aclose()
        await super().close()

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self._subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    self._on_remote(_s(message["data"]))
        except RedisError as exc:
            log.warning("location events from other nodes stopped: %s", exc)
        finally:
            with contextlib.suppress(RedisError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _on_remote(self, text: str) -> None:
        if text.startswith(self._own_events):
            return  # ours, already told to local watchers: skip the JSON decoding
        try:
            data = json.loads(text)
            if data.get("node") == self.node or data.get("type") not in _EVENT_TYPES:
                return
            binding = Binding.from_dict(data["binding"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignored a malformed location event: %s", exc)
            return
        self.watchers.emit(cast(EventType, data["type"]), binding)

    async def _emit(self, type_: EventType, bindings: Bindings) -> None:
        for binding in bindings:
            self.watchers.emit(type_, binding)
        if not bindings:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for binding in bindings:
                body = {"node": self.node, "type": type_, "binding": binding.to_dict()}
                pipe.publish(self.channel, json.dumps(body))
            await pipe.execute()

    # -- keys -----------------------------------------------------------------------------

    def _key(self, aor: str) -> str:
        return self._aor_prefix + aor

    @staticmethod
    def _member(aor: str, contact: str) -> str:
        return f"{aor}\n{contact}"

    @staticmethod
    def _decode(values: list[Any]) -> Bindings:
        out: Bindings = []
        for value in values:
            try:
                out.append(Binding.from_dict(json.loads(_s(value))))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("skipped a malformed binding in Redis: %s", exc)
        return out

    # -- the interface --------------------------------------------------------------------

    async def add(self, binding: Binding, now: float | None = None) -> AddResult:
        t = self._now(now)
        if binding.node is None:
            binding.node = self.node
        ttl = max(1, math.ceil(binding.expires_at - t + self.grace))
        result = _s(
            await self._add(
                keys=[self._key(binding.aor), self._expiry],
                args=[
                    binding.contact,
                    json.dumps(binding.to_dict()),
                    repr(binding.expires_at),
                    binding.call_id,
                    binding.cseq,
                    self._member(binding.aor, binding.contact),
                    ttl,
                    self.channel,
                    json.dumps(self.node),
                ],
            )
        )
        if result == "REFUSED":
            return "REFUSED"
        if result == "ADDED":
            self.watchers.emit("ADDED", binding)  # other nodes hear the script's PUBLISH
            return "ADDED"
        self.watchers.emit("MODIFIED", binding)
        return "MODIFIED"

    async def remove(self, aor: str, contact: str) -> Binding | None:
        value = await self._remove(
            keys=[self._key(aor), self._expiry], args=[contact, self._member(aor, contact)]
        )
        if value is None:
            return None
        removed = self._decode([value])
        await self._emit("DELETED", removed)
        return removed[0] if removed else None

    async def remove_all(self, aor: str) -> Bindings:
        values = await self._remove_all(keys=[self._key(aor), self._expiry], args=[aor])
        removed = self._decode(list(values))
        await self._emit("DELETED", removed)
        return removed

    async def lookup(self, aor: str, now: float | None = None) -> Bindings:
        t = self._now(now)
        values = await self.redis.hvals(self._key(aor))  # type: ignore[misc]
        return ordered([b for b in self._decode(list(values)) if b.expires_at > t])

    async def _aor_keys(self) -> list[str]:
        pattern = _glob_escape(self._aor_prefix) + "*"
        return sorted({_s(k) async for k in self.redis.scan_iter(match=pattern, count=500)})

    async def list(self, now: float | None = None) -> Bindings:
        t = self._now(now)
        keys = await self._aor_keys()
        if not keys:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hvals(key)
            results = await pipe.execute()
        out: Bindings = []
        for values in results:
            out.extend(ordered([b for b in self._decode(list(values)) if b.expires_at > t]))
        return out

    async def evict_all(self) -> int:
        count = 0
        for key in await self._aor_keys():
            count += len(await self.remove_all(key[len(self._aor_prefix) :]))
        return count

    async def sweep(self, now: float | None = None, batch: int = 500) -> Bindings:
        t = self._now(now)
        expired: Bindings = []
        while True:
            taken, values = await self._sweep(
                keys=[self._expiry], args=[repr(t), batch, self._aor_prefix]
            )
            expired.extend(self._decode(list(values)))
            if int(taken) < batch:
                break
        await self._emit("EXPIRED", expired)
        return expired


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
