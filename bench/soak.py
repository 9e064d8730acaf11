"""``nox -s soak``: calls and registrations at a steady rate for ten minutes, memory watched.

routr runs on its defaults with 10,000 Agents, under Python's allocation tracing
(``PYTHONTRACEMALLOC=1``: slower, which is why the rates are modest). SIPp places calls
(INVITE/180/200/ACK/BYE through the proxy, record-routed) and REGISTERs with digest round
the users at once. Every 10 s the server's RSS is read; after the warm-up minute and at the
end the top allocation sites come from ``GET /system/memory``, and their difference is the
growth. The target is flat memory: RSS after warm-up grows by less than 5 % (noise), and
every SIPp run completes with its rate held.

    python -m bench.soak [--minutes 10] [--calls 50] [--registers 50]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import calls, register
from bench.data import write
from bench.server import BenchServer, rss_mb
from bench.sipp import Step, sipp

ADMIN_SECRET = "soak-admin-secret"
#: At least this long before memory is expected to level off (and, with registrations,
#: until every user has registered once and 30 s more).
WARM_UP = 60.0


def _memory(server: BenchServer, token: str, **params: Any) -> dict[str, Any]:
    answer = httpx.get(f"{server.api}/api/v1beta1/system/memory", params=params,
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)  # fmt: skip
    traced: dict[str, Any] = answer.json()["data"].get("tracemalloc") or {}
    return traced


def _sites(server: BenchServer, token: str) -> dict[str, int]:
    sites = _memory(server, token, top=300).get("sites", [])
    return {s["site"]: s["sizeBytes"] for s in sites}


def _slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares MB per minute of (seconds, MB) samples."""
    if len(samples) < 2:
        return float("nan")
    xs, ys = [t / 60 for t, _ in samples], [m for _, m in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def main(argv: list[str]) -> int:
    opts = {"--minutes": 10.0, "--calls": 50.0, "--registers": 50.0}
    args = iter(argv)
    for arg in args:
        if arg not in opts:
            print(f"soak: unknown option {arg!r}; known: {', '.join(opts)}", file=sys.stderr)
            return 2
        opts[arg] = float(next(args))
    seconds = opts["--minutes"] * 60
    call_rate, reg_rate = int(opts["--calls"]), int(opts["--registers"])
    if min(call_rate, reg_rate) < 1 or seconds < 60:
        print("soak: rates of at least 1/s and at least one minute", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="routr-soak-"))
    pairs = register.credentials()
    data = write(folder / "data", {register.DOMAIN: pairs, calls.DOMAIN: calls.USERS})
    csv = register.write_csv(folder / "users.csv", pairs)
    spec: dict[str, Any] = calls.routr_spec(data)
    env = {"PYTHONTRACEMALLOC": "1", "INITIAL_API_SECRET": ADMIN_SECRET}
    warm_up = max(WARM_UP, len(pairs) / reg_rate + 30)
    if seconds < warm_up + 60:
        print(f"soak: {seconds:.0f} s leaves under a minute after the {warm_up:.0f} s warm-up",
              file=sys.stderr)  # fmt: skip
        return 2
    with BenchServer(("udp",), spec, env=env) as server:
        assert server.proc is not None
        pid = server.proc.pid
        token = httpx.get(f"{server.api}/api/v1beta1/token", auth=("admin", ADMIN_SECRET),
                          timeout=30).json()["data"]  # fmt: skip
        callee = calls.Callee(server)
        registrar_port = calls.free_port()
        samples: list[tuple[float, float]] = []  # (seconds, RSS MB)
        heap: list[tuple[float, float]] = []  # (seconds, traced MB)
        t0 = time.monotonic()
        done = threading.Event()

        def watch() -> None:
            while not done.wait(10.0):
                at = time.monotonic() - t0
                samples.append((at, rss_mb(pid)))
                traced = _memory(server, token, sites="false").get("tracedBytes", 0)
                heap.append((at, traced / 2**20))

        threading.Thread(target=watch, daemon=True).start()

        def phase(length: float) -> tuple[Step, Step]:
            """Calls and registrations side by side for ``length`` seconds."""
            found: list[Step] = []
            # One port for both phases: the users' second REGISTERs refresh their bindings
            # instead of adding one per user from a new Contact.
            thread = threading.Thread(target=lambda: found.append(sipp(
                server, "register_digest.xml", reg_rate, int(reg_rate * length),
                extra=("-inf", str(csv)), local_port=registrar_port,
            )))  # fmt: skip
            thread.start()
            placed = calls.run_step(server, callee, call_rate, seconds=length)
            thread.join()
            return placed, found[0]

        # Two phases with a snapshot after each: a snapshot stalls the server for seconds
        # (it copies every trace), which traffic would see as a missed rate; taken right
        # after each phase's last call, the two are alike and their difference is growth.
        steps = [*phase(warm_up)]
        warm = _sites(server, token)
        second_at = time.monotonic() - t0
        steps += phase(seconds - warm_up)
        done.set()
        end_sites = _sites(server, token)
    # Judged from 40 s into the second phase: the snapshot between the phases costs memory
    # the allocator keeps, and the pause lets finished transactions (kept 32 s) drain.
    after = [(t, m) for t, m in samples if t >= second_at + 40]
    live = [(t, m) for t, m in heap if t >= second_at + 40]
    for name, placed, registered in (("warm-up", *steps[:2]), ("soak", *steps[2:])):
        print(f"soak | {name} {placed.seconds:.0f} s | calls {call_rate}/s: {placed.verdict} | "
              f"registrations {reg_rate}/s over {len(pairs):,} users: {registered.verdict} | "
              f"server CPU {placed.server_cpu:.0%}")  # fmt: skip
    print("soak | RSS every 10 s (MB) | " + " ".join(f"{m:.0f}" for _, m in samples))
    print("soak | traced heap every 10 s (MB) | " + " ".join(f"{m:.0f}" for _, m in heap))
    flat = bool(after and live)
    for name, series in (("RSS", after), ("traced heap", live)):
        if not series:
            continue
        first, last = series[0][1], series[-1][1]
        growth = (last - first) / first if first else float("inf")
        steady = growth < 0.05
        flat = flat and steady
        print(f"soak | {name} after warm-up | {first:.0f} -> {last:.0f} MB ({growth:+.1%}), "
              f"{_slope(series):+.2f} MB/min | {'flat' if steady else 'GROWING'}")  # fmt: skip
    grown = sorted(((end_sites.get(k, 0) - warm.get(k, 0), k) for k in {*warm, *end_sites}),
                   reverse=True)[:10]  # fmt: skip
    for delta, site in grown:
        print(f"soak | tracemalloc growth after warm-up | {delta / 1024:+,.0f} KiB | {site}")
    ok = all(step.ok for step in steps) and flat
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
