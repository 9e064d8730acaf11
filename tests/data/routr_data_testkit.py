"""Helpers of the data tests: sample resources, waiting, a stub of the HTTP data service.

A module name of its own (not ``conftest``) so that other test folders' conftest modules
cannot shadow it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from routr.data import DataProvider
from routr.models import Resource, parse_resource

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
HTTP_USER, HTTP_SECRET = "routr", "s3cret"

Opener = Callable[[], DataProvider]  # opens a provider on the shared test store


# --- sample resources -------------------------------------------------------------------


def domain(uri: str = "sip.local", ref: str | None = None, **context: Any) -> Resource:
    meta: dict[str, Any] = {"name": f"Domain {uri}"} | ({"ref": ref} if ref else {})
    return parse_resource(
        {"kind": "Domain", "metadata": meta, "spec": {"context": {"domainUri": uri, **context}}}
    )


def agent(
    username: str = "1001",
    domains: tuple[str, ...] = ("sip.local",),
    ref: str | None = None,
    **spec: Any,
) -> Resource:
    meta: dict[str, Any] = {"name": f"Agent {username}"} | ({"ref": ref} if ref else {})
    return parse_resource(
        {
            "kind": "Agent",
            "metadata": meta,
            "spec": {
                "credentials": {"username": username, "secret": "1234"},
                "domains": list(domains),
                **spec,
            },
        }
    )


def gateway(host: str = "127.0.0.5", port: int | None = 5060, ref: str | None = None) -> Resource:
    meta: dict[str, Any] = {"name": f"Gateway {host}"} | ({"ref": ref} if ref else {})
    spec: dict[str, Any] = {"host": host} | ({"port": port} if port else {})
    return parse_resource({"kind": "Gateway", "metadata": meta, "spec": spec})


def number(
    tel: str = "tel:+17066041487",
    gw_ref: str = "gw-prov",
    ref: str | None = None,
    aor: str = "sip:1001@sip.local",
) -> Resource:
    meta: dict[str, Any] = {"gwRef": gw_ref} | ({"ref": ref} if ref else {})
    return parse_resource(
        {"kind": "Number", "metadata": meta, "spec": {"location": {"telUrl": tel, "aorLink": aor}}}
    )


def peer(username: str = "ast") -> Resource:
    return parse_resource(
        {
            "kind": "Peer",
            "metadata": {"name": "Asterisk"},
            "spec": {
                "credentials": {"username": username, "secret": "astsecret"},
                "device": "astserver",
            },
        }
    )


def user(username: str = "admin") -> Resource:
    return parse_resource(
        {
            "kind": "User",
            "metadata": {"name": "Admin"},
            "spec": {"credentials": {"username": username, "secret": "changeit"}},
        }
    )


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0, what: str = "condition"
) -> None:
    """Wait for ``condition`` (checked every 20 ms) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


# --- a stub of the Routr 1.0 data service -----------------------------------------------


class StubService:
    """Resources in a dict behind the v1 REST contract, served from a thread."""

    def __init__(self) -> None:
        self.store: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()
        self.down = False
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, message: str, data: Any = None) -> None:
                body = json.dumps({"status": status, "message": message, "data": data}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                service.requests.append((self.command, self.path, self.headers["Authorization"]))
                if service.down:
                    self._reply(503, "Service Unavailable")
                    return
                expected = base64.b64encode(f"{HTTP_USER}:{HTTP_SECRET}".encode()).decode()
                if self.headers["Authorization"] != f"Basic {expected}":
                    self._reply(401, "Unauthorized")
                    return
                path, _, query = self.path.partition("?")
                parts = [p for p in path.split("/") if p][1:]  # drop the /v1 prefix
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with service.lock:
                    status, message, data = service.dispatch(self.command, parts, query, body)
                self._reply(status, message, data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def dispatch(
        self, method: str, parts: list[str], query: str, body: Any
    ) -> tuple[int, str, Any]:
        if not parts:
            return 404, "Not Found", None
        collection = self.store.setdefault(parts[0], {})
        if len(parts) == 1 and method == "GET":
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            page, size = int(params.get("page", 1)), int(params.get("itemsPerPage", 30))
            items = list(collection.values())
            return 200, "Successful request", items[(page - 1) * size : page * size]
        if len(parts) == 1 and method == "POST":
            ref = body["metadata"]["ref"]
            if ref in collection:
                return 409, "Entity already exists", None
            collection[ref] = body
            return 201, "Created", ref
        ref = parts[1]
        if ref not in collection:
            return 404, "Not Found", None
        if method == "GET":
            return 200, "Successful request", collection[ref]
        if method == "PUT":
            collection[ref] = body
            return 200, "Successful request", ref
        if method == "DELETE":
            del collection[ref]
            return 200, "Successful request", None
        return 405, "Method Not Allowed", None

    def __enter__(self) -> StubService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
