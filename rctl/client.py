"""The REST API over httpx: the envelope unwrapped, errors turned into sentences.

httpx is imported when the first request is made, not before: it costs more start-up time
than the rest of rctl together, and ``rctl --help`` never needs it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rctl.errors import ApiError, RctlError

if TYPE_CHECKING:
    import httpx

#: The API this rctl speaks (``routr.models.api.API_VERSION``; a test keeps them equal).
API_VERSION = "v1beta1"
BASE_PATH = f"/api/{API_VERSION}"
PAGE_SIZE = 1000  # the API's largest page: fewest round trips
TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    """Where requests go and as whom."""

    server: str
    token: str = ""
    verify: bool | str = True  # False for --insecure, a path for --ca
    login_hint: str = ""  # the rctl login command that gets a new token


def _problems(data: Any) -> list[str]:
    if not isinstance(data, list):
        return []
    out = []
    for item in data:
        if isinstance(item, dict) and "problem" in item:
            path = item.get("path") or ""
            out.append(f"{path}: {item['problem']}" if path else str(item["problem"]))
    return out


def _without_httpx_cli() -> None:
    """httpx's __init__ imports its own command-line tool whenever click and rich are
    installed (as typer brings them): click, rich and pygments, half of httpx's import time,
    for a tool rctl never runs (encode/httpx#3547). A None entry in ``sys.modules`` makes
    that import fail, which httpx handles by defining a stub instead."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


class Client:
    def __init__(self, target: Target) -> None:
        _without_httpx_cli()  # before any request imports httpx
        self.target = target
        self._http: httpx.Client | None = None

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            import httpx

            headers = {"Authorization": f"Bearer {self.target.token}"} if self.target.token else {}
            self._http = httpx.Client(
                base_url=self.target.server.rstrip("/") + BASE_PATH,
                headers=headers,
                verify=self.target.verify,
                timeout=httpx.Timeout(TIMEOUT),
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    # -- requests ---------------------------------------------------------------------------

    def send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        import httpx

        try:
            response = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            raise self._refused(response)
        return response

    def envelope(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        response = self.send(method, path, **kw)
        try:
            body = response.json()
        except ValueError:
            raise RctlError(f"{self.target.server} did not answer JSON: is it routr?") from None
        if not isinstance(body, dict):
            raise RctlError(f"{self.target.server} did not answer an envelope: is it routr?")
        return body

    def data(self, method: str, path: str, **kw: Any) -> Any:
        return self.envelope(method, path, **kw).get("data")

    def get(self, path: str, **params: Any) -> Any:
        return self.data("GET", path, params=params or None)

    def list_all(self, path: str, filter: str | None = None) -> list[dict[str, Any]]:
        """Every item of a list, page after page, as if the API had no pages."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            params: dict[str, Any] = {"page": page, "itemsPerPage": PAGE_SIZE}
            if filter:
                params["filter"] = filter
            body = self.envelope("GET", path, params=params)
            chunk = body.get("data") or []
            items.extend(chunk)
            total = (body.get("meta") or {}).get("total", len(items))
            if not chunk or len(items) >= total:
                return items
            page += 1

    def watch(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """The events of ``path?watch=true`` (or another streaming request), as they come;
        blank keep-alive lines skipped."""
        import httpx

        # the server sends a blank line every 15 s: three missed is a dead connection, while
        # a quiet table is not
        timeout = httpx.Timeout(TIMEOUT, read=45.0)
        try:
            with self.http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._refused(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    # -- errors -----------------------------------------------------------------------------

    def _unreachable(self, exc: Exception) -> RctlError:
        import ssl

        server = self.target.server
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ssl.SSLCertVerificationError):
                return RctlError(
                    f"the certificate of {server} is not trusted ({cause.verify_message}); "
                    "pass --ca FILE, or --insecure to skip the check"
                )
            cause = cause.__cause__ or cause.__context__
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return RctlError(f"cannot reach the server at {server}: no answer in time")
        detail = str(exc) or type(exc).__name__
        return RctlError(f"cannot reach the server at {server}: {detail}")

    def _refused(self, response: httpx.Response) -> ApiError:
        status = response.status_code
        reason, data = "", None
        try:
            body = response.json()
            if isinstance(body, dict):
                reason = str(body.get("reason") or body.get("message") or "")
                data = body.get("data")
        except ValueError:
            reason = response.text.strip()[:200]
        reason = reason or response.reason_phrase
        if status == 401:
            return ApiError(status, self._unauthorized(reason), reason, data)
        if status == 422:
            lines = _problems(data) or [reason]
            text = "invalid:\n" + "\n".join(f"  {line}" for line in lines)
            return ApiError(status, text, reason, data)
        if status in (404, 409):
            return ApiError(status, reason, reason, data)
        return ApiError(status, f"{reason} ({status})", reason, data)

    def _unauthorized(self, reason: str) -> str:
        hint = self.target.login_hint or "rctl login URL -u USER"
        if not self.target.token:
            return f"not logged in to {self.target.server}: run {hint}"
        if "expired" in reason:
            return f"the token has expired: log in again with {hint}"
        return f"the server refused the token ({reason}): log in again with {hint}"
