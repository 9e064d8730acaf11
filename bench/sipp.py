"""Drive SIPp at a fixed rate and report whether every call succeeded."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.server import BenchServer

SCENARIOS = Path(__file__).resolve().parents[1] / "tests" / "sipp"


@dataclass
class Run:
    rate: int
    calls: int
    ok: bool
    seconds: float
    server_cpu: float  # fraction of one core

    @property
    def achieved(self) -> float:
        return self.calls / self.seconds


def run_rate(
    server: BenchServer,
    scenario: str,
    rate: int,
    seconds: float = 5.0,
    transport: str = "u1",
    protocol: str = "udp",
    extra: tuple[str, ...] = (),
) -> Run:
    calls = int(rate * seconds)
    cmd = ["sipp", f"127.0.0.1:{server.ports[protocol]}", "-sf", str(SCENARIOS / scenario),
           "-m", str(calls), "-r", str(rate), "-t", transport, "-i", "127.0.0.1", "-p", "0",
           "-nostdin", "-timeout", f"{int(seconds * 3 + 10)}s", "-timeout_error",
           "-max_recv_loops", "10000", "-max_sched_loops", "10000", *extra]  # fmt: skip
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - t0
    cpu = (server.cpu_seconds() - cpu0) / elapsed
    return Run(rate, calls, result.returncode == 0, elapsed, cpu)


def ramp(server: BenchServer, scenario: str, rates: list[int], **kw: object) -> list[Run]:
    """Runs at increasing rates, stopping after the first one with a failure."""
    runs: list[Run] = []
    for rate in rates:
        run = run_rate(server, scenario, rate, **kw)  # type: ignore[arg-type]
        runs.append(run)
        if not run.ok:
            break
    return runs
