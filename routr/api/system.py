"""``/system/*``: status, info, config, logs, memory and reload."""

from __future__ import annotations

import gc
import logging
import os
import re
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from routr import __version__
from routr.models import KINDS
from routr.models.api import API_VERSION

from . import streams
from .context import ApiContext
from .errors import DOCUMENTED, envelope
from .resources import ctx_of

# whole key names: tokenLifetime or secretReaders are no secrets
_SECRET_KEY = re.compile(r"^(?:secret|password|passphrase|token|keyStorePassword)$", re.I)
_SECRET_PARAM = re.compile(
    r"((?:^|,)\s*(?:secret|password|passwd|pass|token|keyStorePassword)\s*=)[^,]*", re.I
)
_URL_USERINFO = re.compile(r"(\w+://)[^/@\s]+@")  # nats://user:pass@host, redis://:pw@host
MASK = "********"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

#: Open: monitoring probes ask without a token.
public = APIRouter(tags=["system"])
router = APIRouter(prefix="/system", tags=["system"])


def masked(value: Any, key: str = "") -> Any:
    """``value`` with every secret replaced by ``MASK`` (keys named like secrets, and
    ``secret=`` inside v1's ``parameters`` strings)."""
    if isinstance(value, dict):
        return {k: MASK if _SECRET_KEY.search(k) and v is not None else masked(v, k)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [masked(v, key) for v in value]
    if isinstance(value, str):
        value = _URL_USERINFO.sub(lambda m: m.group(1) + MASK + "@", value)
        if key == "parameters":
            value = _SECRET_PARAM.sub(lambda m: m.group(1) + MASK, value)
    return value


@public.get("/system/status", summary="Whether the server is up (no token)", responses=DOCUMENTED)
async def status(request: Request) -> JSONResponse:
    ctx = ctx_of(request)
    return JSONResponse(
        envelope(
            200,
            {
                "status": "up",
                "version": __version__,
                "apiVersion": API_VERSION,
                "uptime": round(time.time() - ctx.started, 3),
            },
        )
    )


def info_of(ctx: ApiContext) -> dict[str, Any]:
    snapshot = ctx.provider.current()
    return {
        "version": __version__,
        "apiVersion": API_VERSION,
        "node": ctx.bus.node,
        "uptime": round(time.time() - ctx.started, 3),
        "transports": ctx.listeners(),
        "dataSource": ctx.data_description,
        "location": type(ctx.store).__name__,
        "counts": {
            **{kind: len(snapshot.items(kind)) for kind in KINDS},
            "callsInProgress": len(ctx.sip.calls_in_progress()),
            "registrations": len(ctx.sip.registrations()),
            "bans": len(ctx.sip.bans()),
        },
        "sip": ctx.sip.counters.to_dict(),
    }


@router.get("/info", summary="Version, uptime, transports, data source", responses=DOCUMENTED)
async def info(request: Request) -> JSONResponse:
    ctx = ctx_of(request)
    data = info_of(ctx)
    data["counts"]["bindings"] = len(await ctx.sip.bindings())
    return JSONResponse(envelope(200, data))


@router.get("/config", summary="The running configuration, secrets masked", responses=DOCUMENTED)
async def config(request: Request) -> JSONResponse:
    data = ctx_of(request).config.model_dump(mode="json", by_alias=True)
    return JSONResponse(envelope(200, masked(data)))


@router.get(
    "/memory",
    summary="RSS, the collector's counts; live objects by type (?objects=true) and "
    "allocation sites when started with python -X tracemalloc",
    responses=DOCUMENTED,
)
async def memory(
    top: int = Query(20, ge=1, le=500),
    objects: bool = Query(False),
    sites: bool = Query(True),
) -> JSONResponse:
    """For finding a leak in a running server: compare two answers taken minutes apart.

    Counting live objects walks the whole heap, and a tracemalloc snapshot copies every
    trace: both stall the loop for a moment, so they are asked for, never periodic.
    """
    data: dict[str, Any] = {
        "rssBytes": _rss_bytes(),
        "gc": {"counts": list(gc.get_count()), "frozen": gc.get_freeze_count(),
               "collections": [g["collections"] for g in gc.get_stats()]},
    }  # fmt: skip
    if objects:
        # Survivors are frozen (routr.gcwatch), and get_objects() skips frozen objects:
        # thaw for the count, freeze again (both are O(1) list splices).
        frozen = gc.get_freeze_count() > 0
        gc.unfreeze()
        try:
            types = Counter(type(o).__name__ for o in gc.get_objects())
        finally:
            if frozen:
                gc.freeze()
        data["objects"] = [{"type": t, "count": n} for t, n in types.most_common(top)]
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        traced: dict[str, Any] = {"tracedBytes": current, "peakBytes": peak}
        if sites:  # ?sites=false: the live heap's size alone, without a snapshot's cost
            stats = tracemalloc.take_snapshot().statistics("lineno")[:top]
            traced["sites"] = [
                {"site": f"{st.traceback[0].filename}:{st.traceback[0].lineno}",
                 "sizeBytes": st.size, "count": st.count} for st in stats
            ]  # fmt: skip
        data["tracemalloc"] = traced
    return JSONResponse(envelope(200, data))


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


@router.get("/logs", summary="Recent log records; ?follow=true streams them", responses=DOCUMENTED)
async def logs(
    request: Request,
    level: Literal["debug", "info", "warning", "warn", "error", "critical"] = "debug",
    limit: int = Query(200, ge=1, le=100_000),
    follow: bool = False,
) -> Response:
    ctx = ctx_of(request)
    threshold = LEVELS[level]
    if not follow:
        return JSONResponse(envelope(200, ctx.logs.recent(threshold, limit)))

    async def body() -> AsyncIterator[bytes]:
        quiet = 0.0
        async for record in ctx.logs.follow(ctx.stopping, threshold, limit):
            if record is None:
                quiet += 1
                if quiet >= streams.KEEPALIVE_SECONDS:
                    quiet = 0
                    yield b"\n"
                continue
            quiet = 0
            if LEVELS.get(record["level"], logging.CRITICAL) >= threshold:
                yield streams.line("ADDED", record)

    return streams.stream(body(), ctx.stopping)


@router.post("/reload", summary="Re-read resources and configuration", responses=DOCUMENTED)
async def reload(request: Request) -> JSONResponse:
    outcome = await ctx_of(request).reload()
    return JSONResponse(envelope(200, outcome))
