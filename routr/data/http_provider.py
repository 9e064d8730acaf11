"""``http_data_provider``: resources behind Routr 1.0's REST contract.

``GET/POST {baseUrl}/<kind>s``, ``GET/PUT/DELETE {baseUrl}/<kind>s/<ref>``, HTTP Basic auth,
answers in the ``{status, message, data}`` envelope. Another routr's API works too: when
Basic is refused, a token is asked of ``{baseUrl}/token`` and sent as Bearer, and lists ask
for secrets (``?secrets=true``, which that routr allows to its ``secretReaders`` only).
Reads are cached for ``ttl`` seconds; while the service is down the last good data stays
in force and the outage is logged once.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import httpx
from pydantic import ValidationError

from routr.models import (
    KINDS,
    PLURALS,
    Resource,
    describe,
    parse_resource,
    resource_to_dict,
)

from .errors import (
    AlreadyExists,
    DataError,
    DependentObjects,
    InvalidResource,
    NotFound,
    ProviderUnavailable,
    UnfulfilledDependency,
)
from .provider import DataProvider, Plan
from .snapshot import Change, Snapshot

log = logging.getLogger(__name__)

_PAGE = 500


def _conflict(message: str) -> DataError:
    text = message.lower()
    if "unfulfilled" in text:
        return UnfulfilledDependency(message)
    if "dependent" in text:
        return DependentObjects(message)
    return AlreadyExists(message)


class HttpProvider(DataProvider):
    """Resources served by an HTTP service that speaks the Routr 1.0 data contract."""

    name: ClassVar[str] = "http_data_provider"

    def __init__(
        self,
        base_url: str,
        username: str | None = None,
        secret: str | None = None,
        ttl: float = 5.0,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl
        self._basic = httpx.BasicAuth(username, secret or "") if username else None
        self._http = httpx.AsyncClient(
            base_url=self.base_url, auth=self._basic, timeout=timeout, transport=transport
        )
        self._loaded_at = float("-inf")
        self._down = False

    async def start(self) -> None:
        await super().start()
        # changes made at the service reach subscribers (and the Index) within one ttl
        self._every(self.ttl, self._reload, "refresh from the service")

    async def close(self) -> None:
        await super().close()
        await self._http.aclose()

    def _cache_is_fresh(self) -> bool:
        return time.monotonic() - self._loaded_at < self.ttl

    # --- HTTP ---------------------------------------------------------------------------

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """``data`` of the envelope; a typed ``DataError`` for any failure."""
        try:
            response = await self._http.request(method, path, **kwargs)
            if response.status_code == 401 and await self._take_token():
                response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{self.base_url} is unreachable: {exc!r}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {"data": body}
        status = int(body.get("status") or response.status_code)
        status = response.status_code if response.status_code >= 400 else status
        message = str(body.get("message") or response.reason_phrase)
        if status < 400:
            return body.get("data")
        if status == 404:
            raise NotFound(message)
        if status == 409:
            raise _conflict(message)
        if status in (400, 422):
            raise InvalidResource(f"{self.base_url}: {message}")
        if status in (401, 403):
            why = body.get("reason") or message
            raise ProviderUnavailable(f"{self.base_url} refused our credentials ({status}: {why})")
        raise ProviderUnavailable(f"{self.base_url} answered {status}: {message}")

    async def _take_token(self) -> bool:
        """A routr API wants a token, got for the Basic credentials (again when expired)."""
        if self._basic is None:
            return False
        response = await self._http.get("/token", auth=self._basic)
        try:
            token = response.json().get("data") if response.status_code == 200 else None
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            return False
        self._http.auth = httpx.Auth()  # the base Auth adds nothing: the header is ours
        self._http.headers["Authorization"] = f"Bearer {token}"
        return True

    async def _fetch_kind(self, kind: str) -> list[Resource]:
        out: dict[str, Resource] = {}
        for page in range(1, 10_000):
            params = {"page": page, "itemsPerPage": _PAGE, "secrets": "true"}
            data = await self._call("GET", f"/{PLURALS[kind]}", params=params)
            items = data.get("items", []) if isinstance(data, dict) else data or []
            fresh = 0
            for item in items:
                try:
                    resource = parse_resource(item, kind)
                except ValidationError as exc:
                    why = describe(exc)
                    log.error("%s: a %s is invalid and ignored: %s", self.base_url, kind, why)
                    continue
                fresh += resource.ref not in out
                out.setdefault(resource.ref, resource)
            # a service that ignores paging repeats itself: stop there too
            if len(items) < _PAGE or not fresh:
                break
        return list(out.values())

    async def _fetch_all(self) -> Snapshot:
        snapshot = Snapshot()
        for kind in KINDS:
            snapshot = snapshot.with_kind(kind, await self._fetch_kind(kind))
        return snapshot

    async def _load(self) -> Snapshot:
        try:
            snapshot = await self._fetch_all()
        except ProviderUnavailable as exc:
            if self._snapshot is None:
                raise
            if not self._down:
                log.error("%s; the last good data stays in force", exc)
                self._down = True
            self._loaded_at = time.monotonic()  # retry after one ttl, not on every read
            return self._snapshot
        if self._down:
            log.info("%s: reachable again", self.base_url)
            self._down = False
        self._loaded_at = time.monotonic()
        return snapshot

    async def _mutate(self, plan: Plan) -> Change:
        snapshot = await self._fetch_all()  # check against the service's data, not the cache
        change = plan(snapshot)
        path = f"/{PLURALS[change.kind]}"
        body = resource_to_dict(change.resource, defaults=False)
        if change.type == "ADDED":
            ref = await self._call("POST", path, json=body)
            if isinstance(ref, str) and ref and ref != change.ref:
                # the service named it: keep its ref
                metadata = change.resource.metadata.model_copy(update={"ref": ref})
                change = Change("ADDED", change.resource.model_copy(update={"metadata": metadata}))
        elif change.type == "MODIFIED":
            await self._call("PUT", f"{path}/{change.ref}", json=body)
        else:
            await self._call("DELETE", f"{path}/{change.ref}")
        self._loaded_at = time.monotonic()
        self._set_snapshot(snapshot.apply(change))
        return change
