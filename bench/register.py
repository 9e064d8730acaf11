"""REGISTER with digest authentication from SIPp: 10,000 distinct users, each registration a
401 + 200 exchange, with the location in memory and in Redis.

Every rate step starts a fresh server (and an empty Redis prefix), so each step registers
10,000 users that have no binding yet. The highest rate is the highest step SIPp completed
with no failed call (no timeout, no unexpected answer); the server's CPU is beside it.

The server runs on its default security settings, which offer MD5 alone: SIPp 3.6 answers
only the first challenge and knows only MD5.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from bench.data import write
from bench.server import BenchServer
from bench.sipp import Step, Target, sipp

SCENARIO = "register_digest.xml"
DOMAIN = "bench.local"
USERS = 10_000
REDIS_DB = 12


def credentials(users: int = USERS) -> list[tuple[str, str]]:
    """The benchmark's users: (username, password) pairs."""
    return [(f"b{n:05d}", f"pw{n}") for n in range(users)]


def write_users(folder: Path, users: int = USERS) -> tuple[Path, Path]:
    """The data folder (one Domain, ``users`` Agents) and SIPp's injection file."""
    pairs = credentials(users)
    data = write(folder / "data", {DOMAIN: pairs})
    return data, write_csv(folder / "users.csv", pairs)


def write_csv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    """SIPp's injection file for register_digest.xml."""
    path.write_text(
        "SEQUENTIAL\n"
        + "".join(
            f"{user};{DOMAIN};[authentication username={user} password={secret}]\n"
            for user, secret in pairs
        )
    )
    return path


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


def routr_spec(store: str, data: Path, prefix: str) -> dict[str, Any]:
    return {
        "dataSource": {"provider": "files_data_provider", "parameters": {"path": str(data)}},
        "location": _location(store, prefix),
        "registrar": {"minExpires": 60, "defaultExpires": 3600, "maxExpires": 3600},
    }


def run_step(target: Target, rate: int, csv: Path, users: int = USERS) -> Step:
    """``users`` registrations at ``rate`` against a server that has no binding yet."""
    return sipp(target, SCENARIO, rate, users, extra=("-inf", str(csv)))


def routr_step(store: str, rate: int, data: Path, csv: Path) -> Step:
    prefix = f"routr-bench-{uuid.uuid4().hex[:8]}"
    try:
        with _Server(("udp",), routr_spec(store, data, prefix)) as server:
            return run_step(server, rate, csv)
    finally:
        if store == "redis":
            _clean_redis(prefix)


def ramp(store: str, rates: list[int], data: Path, csv: Path) -> list[Step]:
    steps: list[Step] = []
    for rate in rates:
        step = routr_step(store, rate, data, csv)
        steps.append(step)
        if not step.ok:
            break
    return steps


RATES = [500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 7000, 8000, 9000]


def main(stores: tuple[str, ...] = ("memory", "redis"), rates: list[int] | None = None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="routr-bench-register-"))
    data, csv = write_users(folder)
    for store in stores:
        if store == "redis" and (problem := _redis_problem()) is not None:
            print(f"register redis | skipped: {problem}", flush=True)
            continue
        steps = ramp(store, rates or RATES, data, csv)
        for s in steps:
            print(f"register {store} | asked {s.rate}/s | achieved {s.achieved:,.0f}/s | "
                  f"server CPU {s.server_cpu:.0%} | {s.verdict}", flush=True)  # fmt: skip
        best = max((s.achieved for s in steps if s.ok), default=0.0)
        print(f"register {store} | highest rate with no failure ({USERS:,} users, 401+200 each)"
              f" | {best:,.0f}/s", flush=True)  # fmt: skip


if __name__ == "__main__":
    import sys

    args = sys.argv[1:]
    main(tuple(a for a in args if not a.isdigit()) or ("memory", "redis"),
         [int(a) for a in args if a.isdigit()] or None)  # fmt: skip
