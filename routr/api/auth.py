"""Logins (HTTP Basic against the Users) and the tokens (JWT, HS256) they give."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

import jwt
from fastapi import Request

from routr.data.passwords import verify_secret
from routr.models import User

from .context import ApiContext
from .errors import TooManyRequests, Unauthorized

ISSUER = "routr"
_ALGORITHM = "HS256"
_MAX_TRACKED = 10_000  # client addresses remembered by the login limiter


class Tokens:
    """Issues and checks tokens signed with the deployment's token key."""

    def __init__(self, key: bytes, lifetime: float, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.lifetime = lifetime
        self.clock = clock

    def issue(self, username: str) -> str:
        now = int(self.clock())
        claims = {"sub": username, "iss": ISSUER, "iat": now, "exp": now + int(self.lifetime)}
        return jwt.encode(claims, self.key, algorithm=_ALGORITHM)

    def subject(self, token: str) -> str:
        """The username a valid token was issued to; ``Unauthorized`` otherwise."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key,
                algorithms=[_ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired; get a new one from /token") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("the token is not valid") from None
        return str(claims["sub"])


class LoginLimiter:
    """After ``failures`` failed logins within ``seconds`` an address must wait out the
    window, whatever it sends: guessing gets a handful of tries per minute."""

    def __init__(
        self, failures: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.seconds = seconds
        self.clock = clock
        self._failed: dict[str, list[float]] = {}

    def check(self, address: str) -> None:
        times = self._recent(address)
        if len(times) >= self.failures:
            wait = max(1, int(times[0] + self.seconds - self.clock()) + 1)
            raise TooManyRequests(f"too many failed logins; try again in {wait} s", wait)

    def failed(self, address: str) -> None:
        if len(self._failed) >= _MAX_TRACKED:
            self._failed = {a: t for a, t in self._failed.items() if self._recent(a)}
        self._recent(address).append(self.clock())

    def _recent(self, address: str) -> list[float]:
        since = self.clock() - self.seconds
        times = [t for t in self._failed.get(address, ()) if t > since]
        self._failed[address] = times
        return times


def _basic(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthorized("log in with HTTP Basic: the username and secret of a User")
    try:
        username, sep, secret = (
            base64.b64decode(value.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("the Basic credentials are not base64 of user:secret") from None
    if not sep:
        raise Unauthorized("the Basic credentials are not base64 of user:secret")
    return username, secret


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login(request: Request, ctx: ApiContext, limiter: LoginLimiter) -> str:
    """The username of a User whose secret the request's Basic credentials hold."""
    address = client_address(request)
    limiter.check(address)
    username, secret = _basic(request)
    user = await ctx.provider.find_by_key("User", username)
    stored = user.spec.credentials.secret if isinstance(user, User) else None
    # argon2 takes tens of milliseconds of CPU: never on the loop
    ok = stored is not None and await asyncio.to_thread(verify_secret, stored, secret)
    if not ok:
        limiter.failed(address)
        raise Unauthorized("wrong username or secret")
    return username


def bearer(request: Request) -> str | None:
    """The token of a request: ``Authorization: Bearer``, or Routr v1's ``?token=``."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token") or None


async def authenticated(request: Request, ctx: ApiContext, tokens: Tokens) -> str:
    """The username a request acts as; its User must still exist."""
    token = bearer(request)
    if token is None:
        raise Unauthorized()
    username = tokens.subject(token)
    if await ctx.provider.find_by_key("User", username) is None:
        raise Unauthorized("the token's user no longer exists")
    request.state.user = username
    return username
