"""The RFC 4475 and RFC 5118 torture messages against the real server, over the wire.

``tests/sip/test_torture.py`` checks what the parser makes of each message; here every one
is sent to a running routr (UDP; ``longreq`` over TCP too) and the test checks what comes
back against the corpus MANIFEST.tsv, and that the server still answers an OPTIONS after
each message and logs no exception.

The messages name outside hosts (192.0.2.x, example.com), so the servers and the sending
client (``conformance_client.py``, which reports JSON) run in a loopback-only network
namespace of their own: nothing can leave the machine. That needs root and iproute2;
without them the test is skipped (it fails instead when ``CI=true``). Without the corpus
(``../shared/conformance`` or ``$ROUTR_SHARED/conformance``) it is skipped.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pytest
from support.server import NamespacedRoutr, network_namespace

REPO = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("conformance_client.py")
TIMEOUT = 5.0  # seconds to wait for one asynchronous answer


def shared_dir() -> Path:
    env = os.environ.get("ROUTR_SHARED")
    return Path(env) if env else REPO.parent / "shared"


CORPUS = shared_dir() / "conformance"
MISSING = f"conformance corpus not found under {CORPUS} (set ROUTR_SHARED)"


class Case(NamedTuple):
    corpus: str
    name: str
    valid: str
    check: str
    transport: str


def load_cases() -> list[Case]:
    cases = []
    for corpus in ("rfc4475", "rfc5118"):
        manifest = CORPUS / corpus / "MANIFEST.tsv"
        if not manifest.is_file():
            continue
        with manifest.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                for transport in ["udp"] + (["tcp"] if "tcp" in row["transport"] else []):
                    cases.append(Case(corpus, row["name"], row["valid"], row["check"], transport))
    return cases


CASES = load_cases()
PARAMS = [pytest.param(c, id=f"{c.corpus}-{c.name}-{c.transport}") for c in CASES] or [
    pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="no-corpus")
]


def _client_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance_client", CLIENT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    if not CASES:
        pytest.skip(MISSING)
    with network_namespace("routr-conf") as name:
        yield name


class Run(NamedTuple):
    results: dict[tuple[str, str], dict[str, Any]]
    servers: list[NamespacedRoutr]


@pytest.fixture(scope="module")
def run(netns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Start the servers in the namespace, send the whole corpus once, stop the servers."""
    client = _client_module()
    servers: list[NamespacedRoutr] = []
    try:
        for i in range(client.servers_needed(CORPUS)):
            workdir = tmp_path_factory.mktemp(f"conformance{i}")
            servers.append(NamespacedRoutr(workdir, netns, env=_env()).start())
        cmd = ["ip", "netns", "exec", netns, sys.executable, str(CLIENT), "--corpus",
               str(CORPUS), "--timeout", str(TIMEOUT)]  # fmt: skip
        for server in servers:
            cmd += ["--server", f"{server.ports['udp']},{server.ports['tcp']}"]
        done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
        assert done.returncode == 0, f"client failed:\n{done.stderr}"
        results = {(r["name"], r["transport"]): r for r in json.loads(done.stdout)}
    finally:
        for server in servers:
            if server.proc is not None:
                server.stop()
    yield Run(results, servers)


def _is_barrier(info: dict[str, Any]) -> bool:
    return str(info.get("call_id")).startswith("barrier-")


def _show(infos: list[dict[str, Any]]) -> str:
    return ", ".join(f"{i.get('status')} {i.get('reason')} [{i.get('call_id')}]" for i in infos)


@pytest.mark.parametrize("case", PARAMS)
def test_torture_message_on_the_wire(case: Case | None, run: Run) -> None:
    assert case is not None
    result = run.results.get((case.name, case.transport))
    assert result is not None, f"the client sent no {case.name} over {case.transport}"
    assert "error" not in result, result["error"]
    assert result["barrier_ok"], "no 200 to the OPTIONS sent after the message"
    assert result["final_barrier_ok"], "no 200 to the OPTIONS sent after the answer"

    answers = [i for i in result["received"] if not _is_barrier(i)]
    call_id = result["call_id"]
    mine = [a for a in answers if call_id is None or a.get("call_id") == call_id]
    others = [a for a in answers if a not in mine] + result["stray_before"]
    assert not others, f"answers to something else: {_show(others)}"
    assert all(a.get("status") for a in mine), f"not a response: {mine}"
    finals = [a for a in mine if a["status"] >= 200]
    statuses = sorted({a["status"] for a in finals})
    seen = _show(mine) or "nothing"
    check = case.check

    if check == "drop-response":
        assert not mine, f"a response was answered: {seen}"
    elif check == "reject":
        # A 4xx (400 preferred) or nothing at all.
        assert all(400 <= s <= 499 for s in statuses), f"expected 4xx or a drop, got {seen}"
        if statuses and statuses != [400]:
            warnings.warn(f"{case.name}: {statuses} where 400 is preferred", stacklevel=1)
        if not statuses:
            warnings.warn(f"{case.name}: dropped where 400 is preferred", stacklevel=1)
    elif check == "lenient":
        # Rejected (400) or processed: anything but a server failure.
        assert not [s for s in statuses if s >= 500], f"server failure: {seen}"
    elif check.startswith(("should:", "must:")):
        wanted = {int(s) for s in check.split(":", 1)[1].split(",")}
        assert finals, f"expected {sorted(wanted)}, got {seen}"
        assert set(statuses) <= wanted, f"expected {sorted(wanted)}, got {seen}"
        if 420 in wanted:
            unsupported = {a.get("unsupported") for a in finals}
            assert None not in unsupported, "420 without Unsupported"
    elif check == "first-only":
        assert len(finals) == 1, f"expected exactly one answer, got {seen}"
        assert finals[0]["cseq"].split()[-1] == "REGISTER", seen
        assert finals[0]["status"] != 400, seen
    elif check in ("process", "process-soft"):
        assert result["asynchronous"] or finals, f"not processed: {seen}"
        assert finals, f"no final answer within {TIMEOUT}s: {seen}"
        if check == "process-soft" and 400 in statuses:
            warnings.warn(f"{case.name}: 400 to an RFC 2543 message", stacklevel=1)
        else:
            assert 400 not in statuses, f"a valid message got 400: {seen}"
    else:
        pytest.fail(f"unknown check {check!r} in the manifest")


def test_bext01_unsupported_lists_the_proxy_require(run: Run) -> None:
    result = run.results[("bext01", "udp")]
    (final,) = {a["unsupported"] for a in result["received"] if a.get("status") == 420}
    assert final.lower().replace(" ", "") == ("noproxiessupportthis,nordoanyproxiessupportthis")


def test_all_messages_sent(run: Run) -> None:
    assert len(run.results) == len(CASES)
    assert {(c.name, c.transport) for c in CASES} == set(run.results)


def test_server_log_has_no_exception(run: Run) -> None:
    for server in run.servers:
        assert server.proc is not None and server.proc.returncode == 0, "\n".join(server.raw)
        problems = server.problems()
        assert not problems, "\n".join(problems)
