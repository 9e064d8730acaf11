"""What is going on now: ``/location``, ``/registry``, ``/calls``, ``/bans``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from routr.data.filters import compile_filter
from routr.events import Event
from routr.location import LocationEvent
from routr.location.binding import Binding

from . import streams
from .errors import DOCUMENTED, NotFound, envelope
from .resources import MAX_PAGE, ctx_of, page_meta

_CALL_CHANGES = {"call.started": "ADDED", "call.answered": "MODIFIED", "call.ended": "DELETED"}
_LOCATION_CHANGES = {"EXPIRED": "DELETED"}
_CHUNK = 1000

router = APIRouter(tags=["live"])


_FILTER = Query(None, description="JsonPath predicate, e.g. @.aor == 'sip:1001@sip.local'")
_PAGE = Query(1, ge=1)
_PER_PAGE = Query(30, ge=1, le=MAX_PAGE)


@dataclass(frozen=True, slots=True)
class Listing:
    """What a live list is asked for: ``filter``, ``page``, ``itemsPerPage``."""

    filter: str | None
    page: int
    per_page: int

    def answer(self, items: list[dict[str, Any]]) -> JSONResponse:
        """The page of ``items`` that match, with ``meta``."""
        matches = compile_filter(self.filter)
        found = [item for item in items if matches(item)]
        start = (self.page - 1) * self.per_page
        shown = found[start : start + self.per_page]
        return JSONResponse(
            envelope(200, shown, meta=page_meta(self.page, self.per_page, len(found)))
        )


def listing(
    filter: str | None = _FILTER,
    page: int = _PAGE,
    itemsPerPage: int = _PER_PAGE,
) -> Listing:
    return Listing(filter, page, itemsPerPage)


LISTING = Depends(listing)


@router.get("/location", summary="Bindings: who is registered where", responses=DOCUMENTED)
async def location(
    request: Request,
    q: Listing = LISTING,
    watch: bool = False,
) -> Response:
    ctx = ctx_of(request)
    clock = ctx.sip.clock
    matches = compile_filter(q.filter)
    if not watch:
        bindings = await ctx.store.list()
        if not q.filter:
            # only the page is turned into dicts: 10,000 of them cost the loop ~130 ms
            start = (q.page - 1) * q.per_page
            now = clock()
            shown = [b.to_dict(now) for b in bindings[start : start + q.per_page]]
            meta = page_meta(q.page, q.per_page, len(bindings))
            return JSONResponse(envelope(200, shown, meta=meta))
        return q.answer(await _dicts(bindings, clock()))

    async def initial() -> list[dict[str, Any]]:
        items = await _dicts(await ctx.store.list(), clock())
        return [i for i in items if matches(i)]

    def change(event: LocationEvent) -> tuple[str, Any] | None:
        item = event.binding.to_dict(clock())
        if not matches(item):
            return None
        return _LOCATION_CHANGES.get(event.type, event.type), item

    return streams.watch(ctx.store.on_event, change, initial, ctx.stopping)


async def _dicts(bindings: list[Binding], now: float) -> list[dict[str, Any]]:
    """Every binding as a dict, letting SIP in between every thousand."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(bindings), _CHUNK):
        out += [b.to_dict(now) for b in bindings[start : start + _CHUNK]]
        await asyncio.sleep(0)
    return out


@router.delete("/location", summary="Evict every binding", responses=DOCUMENTED)
async def evict_all(request: Request) -> JSONResponse:
    count = await ctx_of(request).store.evict_all()
    return JSONResponse(envelope(200, {"evicted": count}))


@router.delete("/location/{aor:path}", summary="Evict an AOR's bindings", responses=DOCUMENTED)
async def evict(request: Request, aor: str) -> JSONResponse:
    removed = await ctx_of(request).store.remove_all(aor)
    if not removed:
        raise NotFound(f"no bindings for {aor}")
    return JSONResponse(envelope(200, {"evicted": len(removed)}))


def _bus_source(request: Request, kinds: str) -> streams.Source[Event]:
    bus = ctx_of(request).bus

    def start(offer: Callable[[Event], None]) -> Callable[[], None]:
        return bus.subscribe(offer, kinds, name="api watch").close

    return start


@router.get("/registry", summary="Outbound registrations to Gateways", responses=DOCUMENTED)
async def registry(
    request: Request,
    q: Listing = LISTING,
    watch: bool = False,
) -> Response:
    ctx = ctx_of(request)
    items = ctx.sip.registrations()
    if not watch:
        return q.answer(items)
    matches = compile_filter(q.filter)

    def change(event: Event) -> tuple[str, Any] | None:
        ref = getattr(event, "ref", None)
        for item in ctx.sip.registrations():
            if item["ref"] == ref and matches(item):
                return "MODIFIED", item
        return None

    async def initial() -> list[dict[str, Any]]:
        return [i for i in ctx.sip.registrations() if matches(i)]

    return streams.watch(_bus_source(request, "gateway."), change, initial, ctx.stopping)


@router.get("/calls", summary="Calls in progress and recent ones", responses=DOCUMENTED)
async def calls(
    request: Request,
    q: Listing = LISTING,
    watch: bool = False,
) -> Response:
    ctx = ctx_of(request)
    now_items = ctx.sip.calls_in_progress()
    if not watch:
        return q.answer(now_items + ctx.sip.recent_calls())
    matches = compile_filter(q.filter)

    def change(event: Event) -> tuple[str, Any] | None:
        call_id = getattr(event, "call_id", None)
        current = ctx.sip.calls_in_progress()
        if event.name == "call.ended":
            current = ctx.sip.recent_calls()
        for item in current:
            if item["callId"] == call_id:
                return (_CALL_CHANGES[event.name], item) if matches(item) else None
        # not kept any more (callHistory 0, or ended before this line was sent): the
        # event itself still says what happened to the call
        return _CALL_CHANGES[event.name], {"callId": call_id, **event.to_dict(ctx.bus.node)}

    async def initial() -> list[dict[str, Any]]:
        return [i for i in ctx.sip.calls_in_progress() if matches(i)]

    return streams.watch(_bus_source(request, "call."), change, initial, ctx.stopping)


@router.get("/bans", summary="Addresses banned (floods, password guessing)", responses=DOCUMENTED)
async def bans(
    request: Request,
    q: Listing = LISTING,
) -> JSONResponse:
    return q.answer(ctx_of(request).sip.bans())


@router.delete("/bans/{ip}", summary="Lift a ban", responses=DOCUMENTED)
async def unban(request: Request, ip: str) -> JSONResponse:
    if not await ctx_of(request).lift_ban(ip):
        raise NotFound(f"{ip} is not banned")
    return JSONResponse(envelope(200, ip))
