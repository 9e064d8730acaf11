"""The FastAPI application: which paths exist and which need a token."""

from __future__ import annotations

from importlib import resources as package_files
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.security import APIKeyQuery, HTTPBasic, HTTPBearer
from fastapi.staticfiles import StaticFiles

from routr import __version__
from routr.models.api import BASE_PATH

from . import errors, live, resources, route, system, trace
from .auth import LoginLimiter, Tokens, authenticated, login
from .context import ApiContext
from .errors import DOCUMENTED, TEXT, envelope
from .metrics import render

#: The console loads nothing from elsewhere; the browser holds it to that.
CONSOLE_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


class ConsoleFiles(StaticFiles):
    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Content-Security-Policy"] = CONSOLE_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


BEARER = HTTPBearer(auto_error=False, description="the JWT from GET /token")
QUERY_TOKEN = APIKeyQuery(name="token", auto_error=False, description="Routr v1's ?token=")
BASIC = HTTPBasic(auto_error=False, description="a User's username and secret")


def create_app(ctx: ApiContext) -> FastAPI:
    rest = ctx.config.spec.rest_service
    tokens = Tokens(ctx.token_key, rest.token_lifetime)
    limiter = LoginLimiter(rest.login_limit.failures, rest.login_limit.seconds)
    app = FastAPI(
        title="routr",
        version=__version__,
        description="Manage routr: resources, live tables, system. Routr v1's envelope.",
        openapi_url=f"{BASE_PATH}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.tokens = tokens
    errors.install(app)

    # The schemes only document what ``authenticated`` and ``login`` check (they read the
    # headers themselves: a missing one must answer our envelope, not FastAPI's).
    async def require_token(
        request: Request, _: object = Security(BEARER), __: object = Security(QUERY_TOKEN)
    ) -> str:
        return await authenticated(request, ctx, tokens)

    open_api = APIRouter(prefix=BASE_PATH)

    @open_api.get("/token", tags=["auth"], summary="A token for HTTP Basic credentials",
                  responses=DOCUMENTED)  # fmt: skip
    async def token(request: Request, _: object = Security(BASIC)) -> JSONResponse:
        username = await login(request, ctx, limiter)
        return JSONResponse(envelope(200, tokens.issue(username)))

    @open_api.get("/credentials", tags=["auth"], summary="The token alone, as text",
                  response_class=PlainTextResponse, responses=TEXT)  # fmt: skip
    async def credentials(request: Request, _: object = Security(BASIC)) -> PlainTextResponse:
        username = await login(request, ctx, limiter)
        return PlainTextResponse(tokens.issue(username))

    @open_api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        page = package_files.files("routr.api").joinpath("docs.html").read_text("utf-8")
        return HTMLResponse(page.replace("{{openapi}}", f"{BASE_PATH}/openapi.json"))

    open_api.include_router(system.public)
    app.include_router(open_api)

    protected = APIRouter(prefix=BASE_PATH, dependencies=[Depends(require_token)])
    protected.include_router(resources.router())
    protected.include_router(live.router)
    protected.include_router(route.router)
    protected.include_router(trace.router)
    protected.include_router(system.router)
    app.include_router(protected)

    # The web console: static files of the package, talking to this API from this origin.
    console = package_files.files("routr").joinpath("console")
    app.mount("/console", ConsoleFiles(directory=str(console), html=True), name="console")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console/")

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if rest.metrics_auth:
            await require_token(request)
        body, media = await render(ctx)
        return Response(body, media_type=media)

    return app
