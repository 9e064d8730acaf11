"""``/agents``, ``/domains``, ``/peers``, ``/gateways``, ``/numbers``, ``/users``: CRUD.

Writes go through the data provider (its referential rules answer 409) and are answered
once the router's index holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from routr.data.errors import DataError
from routr.data.filters import compile_filter
from routr.data.snapshot import Change
from routr.models import (
    KINDS,
    PLURALS,
    Resource,
    keep_secrets,
    parse_resource,
    public_dict,
    resource_to_dict,
)

from . import bodies, streams
from .context import ApiContext
from .errors import CREATED, DOCUMENTED, Forbidden, Unprocessable, envelope, validation_problems

MAX_PAGE = 1000
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


def ctx_of(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.ctx
    return context


def page_meta(page: int, items_per_page: int, total: int) -> dict[str, int]:
    return {"page": page, "itemsPerPage": items_per_page, "total": total}


def _change_line(change: Change) -> tuple[str, Any]:
    return change.type, public_dict(change.resource)


_SECRETS = Query(False, description="with secrets: only for restService.secretReaders")


def _shown(request: Request, secrets: bool) -> Callable[[Resource], dict[str, Any]]:
    """How resources are shown to this caller: secrets only to a named secret reader (a
    routr replicating this one); asking without being one is refused, not ignored."""
    if not secrets:
        return public_dict
    user = getattr(request.state, "user", None)
    if user not in ctx_of(request).config.spec.rest_service.secret_readers:
        raise Forbidden(f"user {user} may not read secrets (restService.secretReaders)")
    return resource_to_dict


def routes_for(kind: str) -> APIRouter:
    plural = PLURALS[kind]
    router = APIRouter(prefix=f"/{plural}", tags=[plural])

    @router.get("", summary=f"List {plural}", responses=DOCUMENTED)
    async def list_kind(
        request: Request,
        filter: str | None = Query(
            None, description="JsonPath predicate, e.g. @.metadata.name == 'x'"
        ),
        page: int = Query(1, ge=1),
        itemsPerPage: int = Query(30, ge=1, le=MAX_PAGE),
        watch: bool = False,
        secrets: bool = _SECRETS,
    ) -> Response:
        ctx = ctx_of(request)
        show = _shown(request, secrets)
        if watch:
            matches = compile_filter(filter)

            async def initial() -> list[dict[str, Any]]:
                everything = await ctx.provider.list(kind, filter, 1, 1 << 30)
                return [public_dict(r) for r in everything.items]

            def same_kind(change: Change) -> tuple[str, Any] | None:
                if change.kind != kind or not matches(public_dict(change.resource)):
                    return None
                return _change_line(change)

            return streams.watch(ctx.provider.subscribe, same_kind, initial, ctx.stopping)
        found = await ctx.provider.list(kind, filter, page, itemsPerPage)
        body = envelope(
            200,
            [show(r) for r in found.items],
            meta=page_meta(found.page, found.items_per_page, found.total),
        )
        return JSONResponse(body)

    @router.get("/{ref}", summary=f"One of the {plural}", responses=DOCUMENTED)
    async def get_one(request: Request, ref: str, secrets: bool = _SECRETS) -> JSONResponse:
        show = _shown(request, secrets)
        resource = await ctx_of(request).provider.get(kind, ref)
        return JSONResponse(envelope(200, show(resource)))

    @router.post(
        "",
        summary=f"Create one or a list of {plural}",
        status_code=201,
        openapi_extra=_BODY_DOC,
        responses=CREATED,
    )
    async def create(request: Request) -> JSONResponse:
        ctx = ctx_of(request)
        found, listed = await bodies.resources(request, kind)
        version = ctx.live.version
        refs = await _create_all(ctx, found)
        await ctx.settled(version)
        return JSONResponse(envelope(201, refs if listed else refs[0]), status_code=201)

    @router.put(
        "/{ref}",
        summary=f"Replace one of the {plural}",
        openapi_extra=_BODY_DOC,
        responses=DOCUMENTED,
    )
    async def update(request: Request, ref: str) -> JSONResponse:
        ctx = ctx_of(request)
        data = await bodies.mapping(request)
        previous = await ctx.provider.get(kind, ref)
        given = data.get("metadata")
        if isinstance(given, dict) and given.get("ref") not in (None, ref):
            raise Unprocessable(
                f"metadata.ref: is {given.get('ref')!r}, the URL names {ref!r}",
                [{"path": "metadata.ref", "problem": f"must be {ref} (the URL's)"}],
            )
        data = keep_secrets(data, previous)
        metadata = data.get("metadata")
        data["metadata"] = {**(metadata if isinstance(metadata, dict) else {}), "ref": ref}
        try:
            resource = parse_resource(data, kind)
        except ValidationError as exc:
            found = validation_problems(exc)
            reason = "; ".join(f"{p['path']}: {p['problem']}" for p in found)
            raise Unprocessable(reason, found) from None
        version = ctx.live.version
        stored = await ctx.provider.update(resource)
        await ctx.settled(version)
        return JSONResponse(envelope(200, public_dict(stored)))

    @router.delete("/{ref}", summary=f"Delete one of the {plural}", responses=DOCUMENTED)
    async def delete(request: Request, ref: str) -> JSONResponse:
        ctx = ctx_of(request)
        version = ctx.live.version
        await ctx.provider.delete(kind, ref)
        await ctx.settled(version)
        return JSONResponse(envelope(200, ref))

    return router


async def _create_all(ctx: ApiContext, resources: list[Resource]) -> list[str]:
    """Create in the order given (a Domain before the Agents in it). A failure names the
    item and what was created before it, which stays."""
    refs: list[str] = []
    for position, resource in enumerate(resources):
        try:
            refs.append((await ctx.provider.create(resource)).ref)
        except DataError as exc:
            if len(resources) > 1:
                done = f"; created before it: {', '.join(refs)}" if refs else ""
                exc.message = (
                    f"item {position} ({resource.kind} {resource.ref}): {exc.message}{done}"
                )
            raise
    return refs


def router() -> APIRouter:
    out = APIRouter()
    for kind in KINDS:
        out.include_router(routes_for(kind))
    return out
