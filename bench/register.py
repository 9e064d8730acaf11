"""REGISTER with digest authentication from SIPp: 10,000 distinct users, each registration a
401 + 200 exchange, with the location in memory and in Redis.

Every rate step starts a fresh server (and an empty Redis prefix), so each step registers
10,000 users that have no binding yet. The highest rate is the highest step SIPp completed
with no failed call (no timeout, no unexpected answer); the server's CPU is beside it.

The server runs on its default security settings, which offer MD5 alone: SIPp 3.6 answers
only the first challenge and knows only MD5.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.server import BenchServer

SCENARIO = Path(__file__).resolve().parents[1] / "tests" / "sipp" / "register_digest.xml"
DOMAIN = "bench.local"
USERS = 10_000
REDIS_DB = 12


@dataclass
class Step:
    store: str
    rate: int
    calls: int
    ok: bool
    seconds: float
    server_cpu: float  # fraction of one core
    detail: str = ""

    @property
    def achieved(self) -> float:
        return self.calls / self.seconds


def write_users(folder: Path, users: int = USERS) -> tuple[Path, Path]:
    """The data folder (one Domain, ``users`` Agents) and SIPp's injection file."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "domains.yml").write_text(
        "- apiVersion: v1beta1\n  kind: Domain\n  metadata: {name: Bench}\n"
        f"  spec: {{context: {{domainUri: {DOMAIN}}}}}\n"
    )
    agents = [
        f"- apiVersion: v1beta1\n  kind: Agent\n  metadata: {{name: Agent {n}}}\n"
        f"  spec: {{credentials: {{username: 'b{n:05d}', secret: 'pw{n}'}}, domains: [{DOMAIN}]}}\n"
        for n in range(users)
    ]
    (data / "agents.yml").write_text("".join(agents))
    csv = folder / "users.csv"
    csv.write_text(
        "SEQUENTIAL\n"
        + "".join(
            f"b{n:05d};{DOMAIN};[authentication username=b{n:05d} password=pw{n}]\n"
            for n in range(users)
        )
    )
    return data, csv


class _Server(BenchServer):
    """BenchServer whose log is read to the end (a registration logs a line: an unread
    pipe would stall the server)."""

    def __enter__(self) -> _Server:
        super().__enter__()
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout
        threading.Thread(target=lambda: [None for _ in stdout], daemon=True).start()
        return self


def _location(store: str, prefix: str) -> dict[str, Any]:
    if store == "memory":
        return {"provider": "memory"}
    return {"provider": "redis", "parameters": {"host": "127.0.0.1", "port": 6379,
                                                "db": REDIS_DB, "prefix": prefix}}  # fmt: skip


def _clean_redis(prefix: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        keys = client.keys(f"{prefix}:*")
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _redis_problem() -> str | None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable on 127.0.0.1:6379 ({exc})"
    finally:
        client.close()
    return None


def run_step(store: str, rate: int, data: Path, csv: Path, users: int = USERS) -> Step:
    prefix = f"routr-bench-{uuid.uuid4().hex[:8]}"
    spec = {
        "dataSource": {"provider": "files_data_provider", "parameters": {"path": str(data)}},
        "location": _location(store, prefix),
        "registrar": {"minExpires": 60, "defaultExpires": 3600, "maxExpires": 3600},
    }
    try:
        with _Server(("udp",), spec) as server:
            timeout = int(users / rate * 3 + 15)
            cmd = ["sipp", f"127.0.0.1:{server.ports['udp']}", "-sf", str(SCENARIO),
                   "-inf", str(csv), "-m", str(users), "-r", str(rate), "-t", "u1",
                   "-i", "127.0.0.1", "-p", "0", "-nostdin", "-timeout", f"{timeout}s",
                   "-timeout_error", "-max_recv_loops", "10000",
                   "-max_sched_loops", "10000"]  # fmt: skip
            cpu0, t0 = server.cpu_seconds(), time.monotonic()
            result = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                    timeout=timeout + 15)  # fmt: skip
            elapsed = time.monotonic() - t0
            cpu = (server.cpu_seconds() - cpu0) / elapsed
    finally:
        if store == "redis":
            _clean_redis(prefix)
    detail = "" if result.returncode == 0 else _failure(result.stdout + result.stderr)
    return Step(store, rate, users, result.returncode == 0, elapsed, cpu, detail)


def _failure(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "Failed call" in line:
            return " ".join(line.split())
    return lines[-1] if lines else "sipp failed"


def ramp(store: str, rates: list[int], data: Path, csv: Path) -> list[Step]:
    steps: list[Step] = []
    for rate in rates:
        step = run_step(store, rate, data, csv)
        steps.append(step)
        if not step.ok:
            break
    return steps


RATES = [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000]


def main(stores: tuple[str, ...] = ("memory", "redis"), rates: list[int] | None = None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="routr-bench-register-"))
    data, csv = write_users(folder)
    for store in stores:
        if store == "redis" and (problem := _redis_problem()) is not None:
            print(f"register redis | skipped: {problem}", flush=True)
            continue
        steps = ramp(store, rates or RATES, data, csv)
        for s in steps:
            state = "ok" if s.ok else f"FAILED ({s.detail})"
            print(f"register {store} | asked {s.rate}/s | achieved {s.achieved:,.0f}/s | "
                  f"server CPU {s.server_cpu:.0%} | {state}", flush=True)  # fmt: skip
        best = max((s.achieved for s in steps if s.ok), default=0.0)
        print(f"register {store} | highest rate with no failure ({USERS:,} users, 401+200 each)"
              f" | {best:,.0f}/s", flush=True)  # fmt: skip


if __name__ == "__main__":
    import sys

    args = sys.argv[1:]
    main(tuple(a for a in args if not a.isdigit()) or ("memory", "redis"),
         [int(a) for a in args if a.isdigit()] or None)  # fmt: skip
