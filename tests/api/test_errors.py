"""The one error mapper: an unexpected failure is one log record and a 500 envelope."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from routr.api import errors


async def test_an_unexpected_error_is_a_500_envelope_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/boom")
    assert r.status_code == 500
    body = r.json()
    assert body["status"] == 500 and body["message"] == "Internal Server Error"
    assert "Traceback" not in r.text and "a bug" not in r.text
    failures = [rec for rec in caplog.records if rec.exc_info]
    assert len(failures) == 1 and "GET /boom failed" in failures[0].getMessage()


def test_the_login_limiter_remembers_failures_only_and_few_of_them() -> None:
    from routr.api import auth

    limiter = auth.LoginLimiter(failures=3, seconds=60, clock=lambda: 100.0)
    for n in range(50_000):
        limiter.check(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert len(limiter._failed) == 0
    for n in range(auth._MAX_TRACKED + 500):
        limiter.failed(f"addr-{n}")
    assert len(limiter._failed) == auth._MAX_TRACKED
    assert "addr-0" not in limiter._failed and f"addr-{auth._MAX_TRACKED + 499}" in limiter._failed
