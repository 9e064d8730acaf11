"""``POST /route``: how routr would route a request, sending nothing (a dry run)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from routr.core.explain import DrySource, ExplainError, build_request, explain, parse
from routr.models import split_hostport
from routr.models.fields import is_ip

from .bodies import capped
from .errors import DOCUMENTED, BadRequest, Unprocessable, envelope, validation_problems
from .resources import ctx_of

router = APIRouter(tags=["route"])


class RouteQuestion(BaseModel):
    """A caller and a callee, or a whole SIP request; and where it would come from."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: str | None = Field(None, alias="from", description="the caller, e.g. sip:1001@sip.local")
    to: str | None = Field(None, description="the callee URI, e.g. sip:1002@sip.local or tel:+1...")
    method: str = Field("INVITE", pattern=r"^[A-Z]{3,16}$")
    source: str = Field("127.0.0.1:5060", description="the sender's address, ip:port")
    transport: Literal["udp", "tcp", "tls", "ws", "wss"] = "udp"
    request: str | None = Field(None, description="a whole SIP request instead of from/to")


QUESTION_LIMIT = 64 * 1024  # a question, or a whole SIP request: never more


@router.post(
    "/route",
    summary="Explain how a request would be routed",
    responses=DOCUMENTED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RouteQuestion.model_json_schema()}},
        }
    },
)
async def route(request: Request) -> JSONResponse:
    # The body is read here, after the token was checked, and capped: a declared body
    # parameter would be read and parsed before any dependency runs.
    try:
        question = RouteQuestion.model_validate_json(await capped(request, QUESTION_LIMIT))
    except ValidationError as exc:
        found = validation_problems(exc)
        reason = "; ".join(f"{p['path']}: {p['problem']}" for p in found)
        raise Unprocessable(reason or "not a question", found) from None
    try:
        host, port = split_hostport(question.source)
    except ValueError as exc:
        raise BadRequest(f"source: {exc}") from None
    if not is_ip(host):
        raise BadRequest(f"source: {host!r} is not an IP address")
    source = DrySource(host, port or 5060, question.transport)
    try:
        if question.request is not None:
            sip_request = parse(question.request)
        elif question.from_ and question.to:
            sip_request = build_request(question.method, question.from_, question.to, source)
        else:
            raise BadRequest("give 'from' and 'to', or a whole 'request'")
    except ExplainError as exc:
        raise BadRequest(str(exc)) from None
    answer: dict[str, Any] = await explain(ctx_of(request).sip, sip_request, source)
    return JSONResponse(envelope(200, answer))
