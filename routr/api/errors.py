"""Every error the API can answer, and the one place that turns them into the envelope."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routr.data.errors import (
    DataError,
    DependentObjects,
    InvalidResource,
    UnfulfilledDependency,
)
from routr.models import format_path, problems
from routr.models.api import DEPENDENT_OBJECTS, UNFULFILLED_DEPENDENCIES, Envelope, message_for

log = logging.getLogger("routr.api")


class ApiError(Exception):
    """An answer other than success; ``detail`` becomes the envelope's ``data``."""

    status = 500

    def __init__(self, reason: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.headers = headers


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401

    def __init__(self, reason: str = "a valid token is required") -> None:
        super().__init__(reason, headers={"WWW-Authenticate": 'Bearer realm="routr"'})


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Unprocessable(ApiError):
    status = 422


class UnsupportedMedia(ApiError):
    status = 415


class TooManyRequests(ApiError):
    status = 429

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason, headers={"Retry-After": str(retry_after)})


#: OpenAPI: every answer is an envelope.
#: Errors are envelopes too (never FastAPI's {"detail": ...}): documenting 4XX also stops
#: FastAPI from documenting a 422 HTTPValidationError the server never sends.
_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Envelope, "description": "Refused; the envelope's reason says why"},
    "5XX": {"model": Envelope, "description": "Server error; the server log has the details"},
}
DOCUMENTED: dict[int | str, dict[str, Any]] = {200: {"model": Envelope}, **_ERRORS}
#: The same for an answer that is text when it succeeds.
TEXT: dict[int | str, dict[str, Any]] = {
    status: {"description": doc["description"],
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}}
    for status, doc in _ERRORS.items()
}  # fmt: skip
CREATED: dict[int | str, dict[str, Any]] = {201: {"model": Envelope}, **_ERRORS}


def envelope(
    status: int, data: Any = None, *, reason: str | None = None, meta: Any = None
) -> dict[str, Any]:
    """The body of every answer. ``reason`` (errors only) says what went wrong in words."""
    body: dict[str, Any] = {"status": status, "message": message_for(status), "data": data}
    if reason is not None:
        body["reason"] = reason
    if meta is not None:
        body["meta"] = meta
    return body


def _answer(status: int, reason: str, detail: Any = None, message: str | None = None,
            headers: Mapping[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body = envelope(status, detail, reason=reason)
    if message is not None:
        body["message"] = message
    return JSONResponse(body, status_code=status, headers=headers)


def validation_problems(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[Any]:
    return [p.as_dict() for p in problems(exc, prefix)]


def _request_problems(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        out.append({"path": format_path(loc), "problem": str(err.get("msg", "invalid"))})
    return out


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _answer(exc.status, exc.reason, exc.detail, headers=exc.headers)


async def _data_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DataError)
    message = None
    if isinstance(exc, UnfulfilledDependency):
        message = UNFULFILLED_DEPENDENCIES
    elif isinstance(exc, DependentObjects):
        message = DEPENDENT_OBJECTS
    detail = None
    if isinstance(exc, InvalidResource):
        detail = [p.as_dict() for p in exc.problems]
    if exc.status >= 500:
        log.warning("data source: %s", exc.message)
    return _answer(exc.status, exc.message, detail, message)


async def _request_invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    found = _request_problems(exc)
    reason = "; ".join(f"{p['path']}: {p['problem']}" for p in found) or "invalid request"
    # a body that is JSON but not what the path takes is invalid (422); a bad query is 400
    in_body = any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors())
    return _answer(422 if in_body else 400, reason, found)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return _answer(exc.status_code, str(exc.detail), headers=exc.headers)


async def _too_deep(request: Request, exc: Exception) -> JSONResponse:
    # json.loads, PyYAML and the filter parser recurse once per nesting level: a body
    # like [[[[...]]]] or a filter of nested parentheses is the client's fault, not a 500
    log.warning("API %s %s: input nested too deeply", request.method, request.url.path)
    return _answer(400, "the request is nested too deeply (body or filter)")


class CatchAll:
    """The last word on an unexpected error: one log record with the traceback and a 500
    envelope. (A Starlette handler for ``Exception`` answers, then raises again, and the
    server logs the same traceback a second time.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            log.error("API %s %s failed", scope.get("method"), scope.get("path"), exc_info=exc)
            if not started:  # else the answer is half sent: the connection just ends
                answer = _answer(500, "internal error; the server log has the details")
                await answer(scope, receive, send)


def install(app: FastAPI) -> None:
    """Route every error through the envelope; nothing else answers errors."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_middleware(CatchAll)
