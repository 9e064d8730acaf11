"""Drive SIPp at a fixed rate and judge the step: every call succeeded and the rate held."""

from __future__ import annotations

import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

SCENARIOS = Path(__file__).resolve().parents[1] / "tests" / "sipp"

#: A step whose achieved rate is under this share of the asked one has failed, even with
#: zero failed calls: SIPp (or the server) fell behind the schedule.
RATE_HELD = 0.97


class Target(Protocol):
    """A SIP server under test: routr (:class:`bench.server.BenchServer`) or Kamailio."""

    ports: dict[str, int]

    def cpu_seconds(self) -> float: ...


@dataclass
class Step:
    rate: int  # asked, per second
    ops: int  # calls, registrations or OPTIONS transactions sent
    completed: bool  # SIPp's verdict: no failed call, no timeout
    seconds: float
    cpu: float  # the server's CPU seconds over the step
    detail: str = ""
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def achieved(self) -> float:
        return self.ops / self.seconds

    @property
    def ok(self) -> bool:
        return self.completed and self.achieved >= RATE_HELD * self.rate

    @property
    def server_cpu(self) -> float:
        """Fraction of one core."""
        return self.cpu / self.seconds

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.cpu / self.ops

    @property
    def verdict(self) -> str:
        if self.ok:
            return "ok"
        if self.completed:
            return f"FAILED (rate not held: {self.achieved:,.0f}/s)"
        return f"FAILED ({self.detail or 'sipp failed'})"

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


def failure(text: str, code: int) -> str:
    """What in SIPp's output says why it failed: its count of failed calls when there are
    any, else its last error or timeout line, else its exit code."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    for line in lines:
        if "Failed call" in line and line.rstrip(" |").split("|")[-1].strip() not in ("", "0"):
            return line
    for line in reversed(lines):
        if "rror" in line or "imeout" in line:
            return line[:160]
    return f"sipp exit code {code}"


def sipp(
    target: Target,
    scenario: str,
    rate: int,
    count: int,
    *,
    protocol: str = "udp",
    extra: tuple[str, ...] = (),
    cwd: Path | None = None,
    local_port: int = 0,
) -> Step:
    """One SIPp client run of ``count`` calls at ``rate`` against ``target`` (from
    ``local_port``; 0: one the kernel picks)."""
    limit = int(count / rate * 3 + 10)
    mode = "t1" if protocol == "tcp" else "u1"
    cmd = ["sipp", f"127.0.0.1:{target.ports[protocol]}", "-sf", str(SCENARIOS / scenario),
           "-m", str(count), "-r", str(rate), "-t", mode, "-i", "127.0.0.1", "-p", str(local_port),
           "-nostdin", "-timeout", f"{limit}s", "-timeout_error",
           "-max_recv_loops", "10000", "-max_sched_loops", "10000", *extra]  # fmt: skip
    cpu0, t0 = target.cpu_seconds(), time.monotonic()
    result = subprocess.run(
        cmd, capture_output=True, text=True, check=False, timeout=limit + 20, cwd=cwd
    )
    elapsed = time.monotonic() - t0
    cpu = target.cpu_seconds() - cpu0
    completed = result.returncode == 0
    detail = "" if completed else failure(result.stdout + result.stderr, result.returncode)
    return Step(rate, count, completed, elapsed, cpu, detail)


def run_rate(target: Target, scenario: str, rate: int, seconds: float = 5.0) -> Step:
    return sipp(target, scenario, rate, int(rate * seconds))


def ramp(target: Target, scenario: str, rates: list[int], seconds: float = 5.0) -> list[Step]:
    """Runs at increasing rates, stopping after the first one that failed."""
    steps: list[Step] = []
    for rate in rates:
        step = run_rate(target, scenario, rate, seconds)
        steps.append(step)
        if not step.ok:
            break
    return steps
