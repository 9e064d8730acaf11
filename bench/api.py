"""The REST API under load (issue 12): ``python -m bench api``.

Against the real server (routr-server as a child process, its API on a loopback port of
the kernel's choosing, logging at info like the other parts; no other setting changed):

1. ``GET /location`` with 10,000 bindings. SIPp registers 10,000 distinct Agents first
   (REGISTER + digest, the default configuration, as ``bench register``); then one client
   asks, one request after the other on one keep-alive connection, and the latency of each
   answer is measured at the client: the default page (30 bindings), a page of 1,000 (the
   most a page holds), and a filter that matches one AOR.
2. ``POST /agents`` of 1,000 Agents, one request each, one after the other (each answered
   once the router's index holds it); then one POST of a JSON list of 1,000 Agents. Each on
   a fresh server with one Domain and no Agent.
3. The SIP REGISTER rate (SIPp, 10,000 users, 401 + 200 each) at fixed asked rates, each
   step on a fresh server, without and with a client watching ``/location?watch=true``; the
   watcher reads the stream line by line as it comes and counts the events. A step passes
   when SIPp reaches 97 % of the asked rate with no failed call and, with the watcher, the
   watcher received an ADDED event for every binding.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.register import DOMAIN, SCENARIO, USERS, write_users
from bench.server import _LISTEN, BenchServer

SECRET = "bench-secret"
BASE = "/api/v1beta1"
_API = re.compile(r"api (https?://\S+?);")
POST_AGENTS = 1_000
REGISTER_RATES = [1000, 1500, 2000]
LOCATION_REQUESTS = 200  # per kind of GET /location


class ApiServer(BenchServer):
    """BenchServer with its REST API on a kernel-chosen port and an ``admin`` User."""

    def __init__(self, data: Path, spec: dict[str, Any] | None = None) -> None:
        super().__init__(
            ("udp",),
            {
                "dataSource": {"provider": "files_data_provider",
                               "parameters": {"path": str(data)}},
                "restService": {"port": 0},
                **(spec or {}),
            },
        )  # fmt: skip
        self.api = ""

    def __enter__(self) -> ApiServer:
        env = {**os.environ, "INITIAL_API_SECRET": SECRET}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "routr.server.cli", "--config", "config.yml",
             "--log-level", "info"],
            cwd=self.dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60  # 10,000 Agents take a few seconds to load
        for line in self.proc.stdout:
            if "listening on" in line and "routr" in line:
                self.ports = {p: int(n) for p, n in _LISTEN.findall(line.split("; api ")[0])}
                found = _API.search(line)
                self.api = found.group(1) if found else ""
                break
            if time.monotonic() > deadline:
                break
        if not self.ports or not self.api:
            self.proc.kill()
            raise RuntimeError("routr-server did not start with its API")
        stdout = self.proc.stdout
        threading.Thread(target=lambda: [None for _ in stdout], daemon=True).start()
        return self

    def token(self) -> str:
        basic = base64.b64encode(f"admin:{SECRET}".encode()).decode()
        answer = httpx.get(f"{self.api}{BASE}/token", headers={"Authorization": f"Basic {basic}"})
        answer.raise_for_status()
        value: str = answer.json()["data"]
        return value


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _sipp_register(server: BenchServer, csv: Path, rate: int) -> tuple[bool, str]:
    users = USERS
    timeout = int(users / rate * 3 + 15)
    cmd = ["sipp", f"127.0.0.1:{server.ports['udp']}", "-sf", str(SCENARIO), "-inf", str(csv),
           "-m", str(users), "-r", str(rate), "-t", "u1", "-i", "127.0.0.1", "-p", "0",
           "-nostdin", "-timeout", f"{timeout}s", "-timeout_error",
           "-max_recv_loops", "10000", "-max_sched_loops", "10000"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout + 15)
    if result.returncode == 0:
        return True, ""
    lines = [" ".join(x.split()) for x in (result.stdout + result.stderr).splitlines() if x.strip()]
    failed = [x for x in lines if "Failed call" in x]
    return False, (failed or lines or ["sipp failed"])[-1]


# --- 1. GET /location with 10,000 bindings -----------------------------------------------


def location_latency(data: Path, csv: Path) -> list[str]:
    rows: list[str] = []
    with ApiServer(data) as server:
        ok, detail = _sipp_register(server, csv, 1000)
        headers = {"Authorization": f"Bearer {server.token()}"}
        with httpx.Client(base_url=f"{server.api}{BASE}", headers=headers, timeout=30) as client:
            total = client.get("/location").json()["meta"]["total"]
            rows.append(f"api location | bindings registered by SIPp | {total:,}"
                        + ("" if ok else f" (SIPp: {detail})"))  # fmt: skip
            if total < USERS:
                rows.append(f"api location | FAILED: {USERS:,} bindings asked, {total:,} held")
            asks = {
                "GET /location (default page, 30)": {},
                "GET /location?itemsPerPage=1000": {"itemsPerPage": 1000},
                "GET /location?filter=one AOR": {"filter": f"@.aor == 'sip:b04242@{DOMAIN}'"},
            }
            for label, params in asks.items():
                client.get("/location", params=params)  # warm
                times: list[float] = []
                cpu0, t0 = server.cpu_seconds(), time.monotonic()
                for _ in range(LOCATION_REQUESTS):
                    start = time.perf_counter()
                    answer = client.get("/location", params=params)
                    times.append(time.perf_counter() - start)
                    if answer.status_code != 200:
                        raise RuntimeError(f"{label}: {answer.status_code} {answer.text[:200]}")
                elapsed = time.monotonic() - t0
                cpu = (server.cpu_seconds() - cpu0) / elapsed
                size = len(answer.content)
                rows.append(
                    f"api location | {label}, {total:,} bindings, {LOCATION_REQUESTS} requests | "
                    f"p50 {_percentile(times, 50) * 1000:.1f} ms | "
                    f"p99 {_percentile(times, 99) * 1000:.1f} ms | "
                    f"{LOCATION_REQUESTS / elapsed:,.0f} req/s | server CPU {cpu:.0%} | "
                    f"{size:,} bytes"
                )
            start = time.perf_counter()
            pages, seen = 1, 0
            while True:
                page = client.get("/location", params={"itemsPerPage": 1000, "page": pages})
                got = len(page.json()["data"])
                seen += got
                if got < 1000:
                    break
                pages += 1
            rows.append(f"api location | all {seen:,} bindings in {pages} pages of 1,000 | "
                        f"{(time.perf_counter() - start) * 1000:.0f} ms")  # fmt: skip
    return rows


# --- 2. POST of 1,000 agents ------------------------------------------------------------------


def _agent(n: int) -> dict[str, Any]:
    return {"apiVersion": "v1beta1", "kind": "Agent", "metadata": {"name": f"Posted {n}"},
            "spec": {"credentials": {"username": f"p{n:05d}", "secret": f"pw{n}"},
                     "domains": [DOMAIN]}}  # fmt: skip


def _fresh_data(folder: Path) -> Path:
    data = folder / "data"
    data.mkdir(parents=True)
    domain = {"apiVersion": "v1beta1", "kind": "Domain", "metadata": {"name": "Bench"},
              "spec": {"context": {"domainUri": DOMAIN}}}  # fmt: skip
    (data / "domains.yml").write_text(yaml.safe_dump([domain]))
    return data


#: The list POST is one request that creates every Agent before it answers.
LIST_TIMEOUT = 900.0


def post_agents() -> list[str]:
    rows: list[str] = []
    for listed in (False, True):
        data = _fresh_data(Path(tempfile.mkdtemp(prefix="routr-bench-api-post-")))
        with ApiServer(data) as server:
            headers = {"Authorization": f"Bearer {server.token()}"}
            with httpx.Client(base_url=f"{server.api}{BASE}", headers=headers, timeout=120) as c:
                cpu0, t0 = server.cpu_seconds(), time.monotonic()
                failed, problem = 0, ""
                times: list[float] = []
                if listed:
                    body = [_agent(n) for n in range(POST_AGENTS)]
                    try:
                        answer = c.post("/agents", json=body, timeout=LIST_TIMEOUT)
                        failed = 0 if answer.status_code == 201 else POST_AGENTS
                    except httpx.TimeoutException:
                        failed, problem = POST_AGENTS, f"no answer in {LIST_TIMEOUT:.0f} s"
                else:
                    for n in range(POST_AGENTS):
                        start = time.perf_counter()
                        answer = c.post("/agents", json=_agent(n))
                        times.append(time.perf_counter() - start)
                        failed += answer.status_code != 201
                elapsed = time.monotonic() - t0
                cpu = (server.cpu_seconds() - cpu0) / elapsed
                held = c.get("/agents").json()["meta"]["total"]
        what = f"one list POST of {POST_AGENTS:,}" if listed else f"{POST_AGENTS:,} POSTs, one each"
        ok = failed == 0 and held == POST_AGENTS
        state = "ok" if ok else f"FAILED ({problem or f'{failed} refused'})"
        latency = ""
        if times:
            first, last = times[:100], times[-100:]
            latency = (f" | p50 {_percentile(times, 50) * 1000:.0f} ms, "
                       f"p99 {_percentile(times, 99) * 1000:.0f} ms; p50 of the first 100 "
                       f"{_percentile(first, 50) * 1000:.0f} ms, of the last 100 "
                       f"{_percentile(last, 50) * 1000:.0f} ms")  # fmt: skip
        rows.append(f"api post | {what} | {elapsed:.1f} s | {POST_AGENTS / elapsed:,.1f} agents/s"
                    f"{latency} | server CPU {cpu:.0%} | {held:,} held | {state}")  # fmt: skip
        print(rows[-1], flush=True)
    return rows


# --- 3. REGISTER with and without a watcher ------------------------------------------------


@dataclass
class Watcher:
    """Reads ``/location?watch=true`` line by line in a thread, as the lines come."""

    url: str
    token: str
    events: int = 0
    initial: int = 0
    errors: list[str] = field(default_factory=list)
    last: float = 0.0  # monotonic time of the last event
    started: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Watcher:
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        if not self.started.wait(10):
            raise RuntimeError("the watch stream did not start")
        return self

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = httpx.Timeout(10, read=None)
        try:
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream("GET", f"{self.url}{BASE}/location",
                              params={"watch": "true"}, headers=headers) as answer,
            ):  # fmt: skip
                if answer.status_code != 200:
                    self.errors.append(f"watch answered {answer.status_code}")
                    return
                self.started.set()
                for line in answer.iter_lines():
                    if not line.strip():
                        continue
                    kind = json.loads(line)["type"]
                    if kind == "ERROR":
                        self.errors.append(line)
                        continue
                    self.events += 1
                    self.last = time.monotonic()
        except httpx.HTTPError as exc:
            if self.started.is_set() and not self.errors:
                return  # the server stopped: the stream ended
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.started.set()


@dataclass
class RegisterStep:
    rate: int
    watched: bool
    achieved: float
    cpu: float
    ok: bool
    detail: str


def register_step(data: Path, csv: Path, rate: int, watched: bool) -> RegisterStep:
    watcher: Watcher | None = None
    seen, late = 0, 0.0
    with ApiServer(data) as server:
        if watched:
            watcher = Watcher(server.api, server.token()).start()
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        ok, detail = _sipp_register(server, csv, rate)
        elapsed = time.monotonic() - t0
        cpu = (server.cpu_seconds() - cpu0) / elapsed
        ended = time.monotonic()
        if watcher is not None:
            deadline = ended + 10
            while watcher.events < USERS and not watcher.errors and time.monotonic() < deadline:
                time.sleep(0.05)
            seen, late = watcher.events, max(0.0, watcher.last - ended)
    if watcher is not None and watcher.thread is not None:
        watcher.thread.join(10)
    achieved = USERS / elapsed
    if not ok:
        return RegisterStep(rate, watched, achieved, cpu, False, detail)
    if achieved < 0.97 * rate:
        return RegisterStep(rate, watched, achieved, cpu, False, "asked rate not reached")
    if watcher is not None:
        note = f"watcher got {seen:,} events, the last {late * 1000:.0f} ms after SIPp ended"
        if watcher.errors or seen < USERS:
            why = "; ".join(watcher.errors) or "events missing"
            return RegisterStep(rate, watched, achieved, cpu, False, f"{note}; {why}")
        return RegisterStep(rate, watched, achieved, cpu, True, note)
    return RegisterStep(rate, watched, achieved, cpu, True, "")


def register_rates(data: Path, csv: Path, rates: list[int]) -> list[str]:
    rows: list[str] = []
    for watched in (False, True):
        label = "with a /location?watch=true client" if watched else "no watcher"
        best = 0.0
        for rate in rates:
            step = register_step(data, csv, rate, watched)
            state = "ok" if step.ok else "FAILED"
            extra = f" ({step.detail})" if step.detail else ""
            rows.append(f"api register | {label} | asked {rate}/s | achieved {step.achieved:,.0f}/s"
                        f" | server CPU {step.cpu:.0%} | {state}{extra}")  # fmt: skip
            print(rows[-1], flush=True)
            if not step.ok:
                break
            best = max(best, step.achieved)
        rows.append(f"api register | {label} | highest step passed | {best:,.0f}/s")
        print(rows[-1], flush=True)
    return rows


def main(rates: list[int] | None = None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="routr-bench-api-"))
    data, csv = write_users(folder, USERS)
    for row in location_latency(data, csv):
        print(row, flush=True)
    register_rates(data, csv, rates or REGISTER_RATES)
    post_agents()  # last: the longest part


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or None)
