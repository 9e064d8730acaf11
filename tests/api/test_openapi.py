"""The OpenAPI document, the offline docs page, and schemathesis against the real server.

schemathesis (property-based, from ``/openapi.json``) runs against one real routr-server
process per module, with a bounded and seeded budget so CI is repeatable: a few examples per
operation, no example database, no shrinking. Checks: no 5xx, and every documented answer
matches its schema. It runs once with a token and once without one.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.server import RoutrProcess

BASE = "/api/v1beta1"
SECRET = "changeit"
SEED = 20261201
#: Examples per operation and pass; ~45 operations, three passes, well under 60 s.
MAX_EXAMPLES = 8
KINDS = ("agents", "domains", "peers", "gateways", "numbers", "users")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutrProcess]:
    proc = RoutrProcess(
        tmp_path_factory.mktemp("openapi"), ("udp",), env={"INITIAL_API_SECRET": SECRET}
    ).start()
    try:
        yield proc
    finally:
        proc.stop()
    proc.assert_no_tracebacks()


@pytest.fixture(scope="module")
def token(server: RoutrProcess) -> str:
    basic = base64.b64encode(f"admin:{SECRET}".encode()).decode()
    answer = httpx.get(f"{server.api}{BASE}/token", headers={"Authorization": f"Basic {basic}"})
    assert answer.status_code == 200, answer.text
    value: str = answer.json()["data"]
    return value


# --- the docs page and the document -------------------------------------------------------


def test_docs_page_needs_no_token_and_loads_nothing_from_elsewhere(server: RoutrProcess) -> None:
    answer = httpx.get(f"{server.api}{BASE}/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert "{{openapi}}" not in page
    assert f'"{BASE}/openapi.json"' in page  # the document it fetches, on this origin
    # nothing from another origin: no absolute or protocol-relative URL anywhere in markup,
    # CSS or script (the page names no http(s) origin at all)
    assert not re.search(r"https?://", page), re.findall(r".{30}https?://.{30}", page)
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*//""", page, re.I)
    assert not re.search(r"""\bimport\b[^;]*\bfrom\s*["']""", page)  # no module imports
    assert not re.search(r"""\bimport\s*\(""", page)
    assert not re.search(r"@import|url\(|@font-face", page)  # no stylesheet or font fetches
    assert "<script src" not in page and "<link" not in page
    assert "prefers-color-scheme: dark" in page
    assert 'type="search"' in page


def test_docs_page_file_is_a_package_file() -> None:
    from importlib import resources as package_files

    page = package_files.files("routr.api").joinpath("docs.html").read_text("utf-8")
    assert "{{openapi}}" in page
    assert '<script type="module">' in page


def test_openapi_lists_every_resource_path(server: RoutrProcess) -> None:
    answer = httpx.get(f"{server.api}{BASE}/openapi.json")  # no token needed
    assert answer.status_code == 200
    doc = answer.json()
    paths = doc["paths"]
    for kind in KINDS:
        assert set(paths[f"{BASE}/{kind}"]) == {"get", "post"}, kind
        assert set(paths[f"{BASE}/{kind}/{{ref}}"]) == {"get", "put", "delete"}, kind
    for path in ("location", "registry", "calls", "bans", "system/info", "system/config",
                 "system/logs", "system/reload", "system/status", "token"):  # fmt: skip
        assert f"{BASE}/{path}" in paths, path
    assert set(paths[f"{BASE}/location"]) == {"get", "delete"}
    assert f"{BASE}/docs" not in paths  # the page itself is not an API operation


# --- schemathesis ---------------------------------------------------------------------------
#
# schemathesis' own pytest loader for a schema served by a fixture (``from_fixture``) does not
# run on pytest 9 (it sets ``request.node._nodeid``, gone in pytest 9), and a schema loaded at
# import time would need a server during collection. So each operation's cases come from
# ``APIOperation.as_strategy`` under one explicit, bounded Hypothesis setting, and every
# failure of every operation is collected and reported together.

#: The streaming variants never end by themselves: pinned off in the generated cases and
#: exercised, bounded, in ``test_streams_start_with_ndjson``.
_PINNED = ("watch", "follow")
#: no 5xx; every answer's status, media type and body as the document says
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPEN_PATHS = {f"{BASE}/system/status", f"{BASE}/token", f"{BASE}/credentials"}
_SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same cases on every run: CI repeatable
    database=None,
    deadline=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # no shrinking: bounded
    suppress_health_check=list(hypothesis.HealthCheck),
)


@pytest.fixture(scope="module")
def api_schema(server: RoutrProcess) -> Any:
    config = schemathesis.Config.from_dict({"seed": SEED, "request-timeout": 10})
    return schemathesis.openapi.from_url(f"{server.api}{BASE}/openapi.json", config=config)


def _operations(schema: Any) -> list[Any]:
    out = []
    for result in schema.get_all_operations():
        out.append(result.ok())  # an operation the loader cannot read is itself a failure
    return out


def _pins(operation: Any) -> dict[str, Any]:
    names = {p.name for p in operation.query}
    return {name: "false" for name in _PINNED if name in names}


def _fuzz(schema: Any, headers: dict[str, str], mode: GenerationMode,
          extra: Any = None) -> list[str]:  # fmt: skip
    """Run every operation's cases; the failures, each with the request that caused it."""
    failures: list[str] = []
    for operation in _operations(schema):
        if mode is GenerationMode.NEGATIVE and not (len(operation.query) or operation.body):
            continue  # nothing to make invalid: a path segment may be any string
        strategy = operation.as_strategy(generation_mode=mode, query=_pins(operation))

        @_SETTINGS
        @hypothesis.given(case=strategy)
        def run(case: Any) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            if extra is not None:
                extra(case, response)

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            continue  # negative mode: nothing of this operation could be made invalid
        except (Exception, FailureGroup) as exc:  # every failure is reported below
            failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_with_a_token(api_schema: Any, token: str, mode: GenerationMode) -> None:
    failures = _fuzz(api_schema, {"Authorization": f"Bearer {token}"}, mode)
    assert not failures, "\n\n".join(failures)


def test_schemathesis_without_a_token(api_schema: Any) -> None:
    def refused(case: Any, response: Any) -> None:
        if case.operation.path in OPEN_PATHS:
            return
        if response.status_code == 404 and re.search(r"[\r\n]", unquote(response.request.url)):
            return  # a path with a line break matches no route: 404 before any auth
        assert response.status_code == 401, (case.as_curl_command(), response.text)

    failures = _fuzz(api_schema, {}, GenerationMode.POSITIVE, refused)
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(
    "path",
    ["location?watch=true", "registry?watch=true", "calls?watch=true", "agents?watch=true",
     "system/logs?follow=true&limit=5"],
)  # fmt: skip
def test_streams_start_with_ndjson(server: RoutrProcess, token: str, path: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(timeout=5) as client,
        client.stream("GET", f"{server.api}{BASE}/{path}", headers=headers) as answer,
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/x-ndjson")
    # the stream was closed by the client after the headers: the server must not mind
    assert httpx.get(f"{server.api}{BASE}/system/status").status_code == 200


# --- regressions found while fuzzing ---------------------------------------------------------


@pytest.mark.parametrize("depth", [900, 100_000])
@pytest.mark.parametrize(
    ("method", "path", "media"),
    [("POST", "agents", "application/json"), ("POST", "agents", "application/yaml"),
     ("PUT", "agents/nothing", "application/json"), ("PUT", "agents/nothing", "application/yaml")],
)  # fmt: skip
def test_deeply_nested_bodies_are_a_client_error(
    server: RoutrProcess, token: str, method: str, path: str, media: str, depth: int
) -> None:
    """[[[[...]]]] made json.loads / PyYAML raise RecursionError: a 500 (and a traceback)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": media}
    body = "[" * depth + "]" * depth
    answer = httpx.request(method, f"{server.api}{BASE}/{path}", content=body, headers=headers)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["status"] == answer.status_code


def test_deeply_nested_filter_is_a_client_error(server: RoutrProcess, token: str) -> None:
    """A filter of 400 nested parentheses made the filter parser raise RecursionError: 500."""
    headers = {"Authorization": f"Bearer {token}"}
    deep = "(" * 400 + "@.metadata.name == 'x'" + ")" * 400
    for path in ("agents", "location"):
        answer = httpx.get(f"{server.api}{BASE}/{path}", params={"filter": deep}, headers=headers)
        assert answer.status_code == 400, answer.text
        assert "nested too deeply" in answer.json()["reason"]


def test_errors_are_documented_as_envelopes(server: RoutrProcess) -> None:
    """The document promised FastAPI's 422 {"detail": [...]} on every operation with a
    parameter; the server answers 400/422 envelopes. Every error is now an envelope."""
    doc = httpx.get(f"{server.api}{BASE}/openapi.json").json()
    assert "HTTPValidationError" not in str(doc)
    envelope = {"$ref": "#/components/schemas/Envelope"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status in ("4XX", "5XX"):
                content = op["responses"][status]["content"]
                assert content == {"application/json": {"schema": envelope}}, (method, path)


def test_an_invalid_put_matches_the_document(api_schema: Any, token: str) -> None:
    """PUT of an invalid body on an existing ref: a 422 envelope, where the document said
    HTTPValidationError (schemathesis: response does not conform to the schema)."""
    headers = {"Authorization": f"Bearer {token}"}
    users = api_schema[f"{BASE}/users"]["GET"].Case().call(headers=headers).json()["data"]
    put = api_schema[f"{BASE}/users/{{ref}}"]["PUT"]
    case = put.Case(path_parameters={"ref": users[0]["metadata"]["ref"]}, body={"spec": 1},
                    media_type="application/json")  # fmt: skip
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    assert response.status_code == 422


def test_credentials_is_documented_as_text(api_schema: Any) -> None:
    """GET /credentials answers text/plain; the document said application/json."""
    basic = base64.b64encode(f"admin:{SECRET}".encode()).decode()
    case = api_schema[f"{BASE}/credentials"]["GET"].Case()
    response = case.call_and_validate(headers={"Authorization": f"Basic {basic}"}, checks=CHECKS)
    assert response.status_code == 200
    assert response.headers["content-type"][0].startswith("text/plain")


def test_no_traceback_after_the_runs(server: RoutrProcess) -> None:
    """Last in the module: nothing above made the server log a traceback."""
    server.assert_no_tracebacks()
