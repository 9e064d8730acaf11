"""A routr-server with its REST API, and a small client of that API, for tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from support.server import RUN_SECRETS, RoutrProcess

BASE = "/api/v1beta1"
ADMIN_SECRET = "admin-secret-for-tests"


def start_server(
    tmp_path: Path,
    spec: dict[str, Any] | None = None,
    protocols: tuple[str, ...] = ("udp",),
    data: Path | None = None,
) -> RoutrProcess:
    """The server with User ``admin`` / ``ADMIN_SECRET`` created at its first start."""
    folder = data if data is not None else tmp_path / "data"
    folder.mkdir(parents=True, exist_ok=True)
    proc = RoutrProcess(
        tmp_path, protocols, spec, env={"INITIAL_API_SECRET": ADMIN_SECRET}, data=folder
    )
    return proc.start()


def token(base_url: str, username: str = "admin", secret: str = ADMIN_SECRET, **kw: Any) -> str:
    r = httpx.get(f"{base_url}{BASE}/token", auth=(username, secret), **kw)
    assert r.status_code == 200, r.text
    value: str = r.json()["data"]
    RUN_SECRETS[value] = f"a token issued to {username} by {base_url}"  # no log may show it
    return value


class Api:
    """httpx against the API's base path, with a token."""

    def __init__(self, base_url: str, token_value: str | None = None, **kw: Any) -> None:
        self.base_url = base_url
        headers = {"Authorization": f"Bearer {token_value}"} if token_value else {}
        self.http = httpx.Client(base_url=base_url + BASE, headers=headers, timeout=10, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.put(path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(path, **kw)

    def data(self, path: str, **kw: Any) -> Any:
        r = self.get(path, **kw)
        assert r.status_code == 200, r.text
        return r.json()["data"]

    def create(self, path: str, resource: dict[str, Any] | list[dict[str, Any]]) -> Any:
        r = self.post(path, json=resource)
        assert r.status_code == 201, r.text
        return r.json()["data"]

    @contextmanager
    def watch(self, path: str, **params: Any) -> Iterator[Callable[..., dict[str, Any]]]:
        """Open ``path?watch=true``; yields ``next_event(match=None, timeout=5)``."""
        with self.http.stream("GET", path, params={**params, "watch": "true"}) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()

            def next_event(
                match: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 5.0
            ) -> dict[str, Any]:
                deadline = time.monotonic() + timeout
                for line in lines:
                    if line.strip():
                        event: dict[str, Any] = json.loads(line)
                        if match is None or match(event):
                            return event
                    if time.monotonic() > deadline:
                        break
                raise TimeoutError(f"no matching event on {path} within {timeout} s")

            yield next_event

    def close(self) -> None:
        self.http.close()


def wait_until(check: Callable[[], Any], timeout: float = 5.0, every: float = 0.05) -> Any:
    """The first truthy result of ``check()``, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(every)
