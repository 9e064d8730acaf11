"""Logins (HTTP Basic against the Users) and the tokens (JWT, HS256) they give."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jwt
from fastapi import Request

from routr.data.passwords import hash_secret, verify_secret
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
    window, whatever it sends: guessing gets a handful of tries per minute. Only failures
    are remembered, at most ``_MAX_TRACKED`` addresses, the stalest forgotten first."""

    def __init__(
        self, failures: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.seconds = seconds
        self.clock = clock
        self._failed: OrderedDict[str, list[float]] = OrderedDict()

    def check(self, address: str) -> None:
        times = self._failed.get(address)
        if not times:
            return
        since = self.clock() - self.seconds
        times[:] = [t for t in times if t > since]
        if len(times) >= self.failures:
            wait = max(1, int(times[0] + self.seconds - self.clock()) + 1)
            raise TooManyRequests(f"too many failed logins; try again in {wait} s", wait)

    def failed(self, address: str) -> None:
        times = self._failed.pop(address, [])
        times.append(self.clock())
        self._failed[address] = times[-self.failures :]  # moved to the fresh end
        while len(self._failed) > _MAX_TRACKED:
            self._failed.popitem(last=False)


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
    # argon2 takes tens of milliseconds of CPU: never on the loop. An unknown user costs
    # the same, so the answer's time does not tell which usernames exist.
    checked = stored if stored is not None else await asyncio.to_thread(_decoy)
    ok = await asyncio.to_thread(verify_secret, checked, secret) and stored is not None
    if not ok:
        limiter.failed(address)
        raise Unauthorized("wrong username or secret")
    return username


@functools.cache
def _decoy() -> str:
    return hash_secret(secrets.token_hex(16))


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
