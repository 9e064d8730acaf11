"""routr beside another server under the same SIPp traffic, alternating, several runs.

``python -m bench compare`` puts routr beside Kamailio (when Debian's ``kamailio`` is
installed; config in ``bench/kamailio/``); ``python -m bench nats`` puts routr beside
itself publishing every event on the machine's NATS. Each scenario is a ramp per side:
rates step up until a step fails (a failed call, or under 97 % of the asked rate); the
sides alternate (A, B, then B, A ...) so drift in the machine hits both. For every run the
best clean rate and the CPU seconds per 1,000 operations at it are kept, and at the
highest step both sides passed (so a result capped by SIPp still compares efficiency).
Medians and the spread over runs are printed as a table and written as JSON.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import calls, latency, register
from bench.kamailio import KamailioServer
from bench.server import BenchServer
from bench.sipp import Step, Target, run_rate

#: Kinds of server set-up a scenario needs: its users and what routr is configured with.
Setup = str  # "register" | "calls" | "options"
Starter = Callable[[Setup], AbstractContextManager[Target]]

OPTIONS_RATES = [2000, 4000, 6000, 8000, 10000, 12000, 14000]


@dataclass
class Scenario:
    name: str
    unit: str  # what one operation is
    setup: Setup
    rates: list[int]
    ramp: Callable[[Starter, list[int]], list[Step]]


@dataclass
class Side:
    name: str
    start: Starter


@dataclass
class Result:
    scenario: str
    side: str
    run: int
    steps: list[dict[str, Any]] = field(default_factory=list)
    best_rate: float = 0.0  # achieved rate of the highest clean step
    best_asked: int = 0
    best_cpu_per_1000: float = float("nan")


class _Data:
    """The data folders and SIPp files, written once per benchmark run."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="routr-bench-compare-"))
        self.users, self.csv = register.write_users(self.dir / "register")
        self.calls = calls.write_data(self.dir / "calls")


def routr_side(data: _Data, name: str = "routr", extra: dict[str, Any] | None = None) -> Side:
    """routr on its defaults, plus what the scenario needs (and ``extra``)."""

    @contextmanager
    def start(setup: Setup) -> Iterator[Target]:
        if setup == "register":
            spec = register.routr_spec("memory", data.users, "")
            server: BenchServer = register._Server(("udp",), {**spec, **(extra or {})})
        else:
            server = BenchServer(("udp", "tcp"), {**calls.routr_spec(data.calls), **(extra or {})})
        with server:
            yield server

    return Side(name, start)


def kamailio_side() -> Side:
    @contextmanager
    def start(setup: Setup) -> Iterator[Target]:
        if setup == "register":
            server = KamailioServer(numbered=register.USERS)
        else:
            server = KamailioServer(calls.USERS)
        with server:
            yield server

    return Side("kamailio", start)


def _ramp_register(start: Starter, rates: list[int], csv: Path) -> list[Step]:
    """A fresh server per step: every step registers users that have no binding yet."""
    steps: list[Step] = []
    for rate in rates:
        with start("register") as target:
            steps.append(register.run_step(target, rate, csv))
        if not steps[-1].ok:
            break
    return steps


def _ramp_calls(start: Starter, rates: list[int], protocol: str) -> list[Step]:
    steps: list[Step] = []
    with start("calls") as target:
        callee = calls.Callee(target, protocol)
        for rate in rates:
            steps.append(calls.run_step(target, callee, rate))
            if not steps[-1].ok:
                break
    return steps


def _ramp_options(start: Starter, rates: list[int]) -> list[Step]:
    steps: list[Step] = []
    with start("options") as target:
        for rate in rates:
            steps.append(run_rate(target, "options.xml", rate))
            if not steps[-1].ok:
                break
    return steps


def scenarios(data: _Data) -> dict[str, Scenario]:
    return {
        "register": Scenario(
            "register", "registration (401 + 200)", "register", register.RATES,
            lambda start, rates: _ramp_register(start, rates, data.csv),
        ),
        "calls-udp": Scenario(
            "calls-udp", "call", "calls", calls.RATES,
            lambda start, rates: _ramp_calls(start, rates, "udp"),
        ),
        "calls-tcp": Scenario(
            "calls-tcp", "call", "calls", calls.RATES,
            lambda start, rates: _ramp_calls(start, rates, "tcp"),
        ),
        "options": Scenario("options", "OPTIONS", "options", OPTIONS_RATES, _ramp_options),
    }  # fmt: skip


def _result(scenario: Scenario, side: Side, run: int, steps: list[Step]) -> Result:
    result = Result(scenario.name, side.name, run)
    for step in steps:
        result.steps.append(
            {"asked": step.rate, "achieved": round(step.achieved, 1), "ok": step.ok,
             "cpuPer1000": round(step.cpu_per_1000, 4), "serverCpu": round(step.server_cpu, 3),
             "verdict": step.verdict}
        )  # fmt: skip
        if step.ok:
            result.best_rate, result.best_asked = step.achieved, step.rate
            result.best_cpu_per_1000 = step.cpu_per_1000
    return result


def run(sides: list[Side], chosen: list[Scenario], runs: int) -> list[Result]:
    results: list[Result] = []
    for scenario in chosen:
        for n in range(runs):
            order = sides if n % 2 == 0 else sides[::-1]
            for side in order:
                steps = scenario.ramp(side.start, scenario.rates)
                result = _result(scenario, side, n + 1, steps)
                results.append(result)
                last = result.steps[-1] if result.steps else {}
                print(f"  {scenario.name} | {side.name} run {n + 1} | best "
                      f"{result.best_rate:,.0f}/s | stopped at {last.get('asked')}/s: "
                      f"{last.get('verdict')}", flush=True)  # fmt: skip
    return results


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def _common_cpu(results: list[Result], a: str, b: str) -> tuple[float, float, int]:
    """CPU per 1,000 ops of each side at the highest step both passed, medians of runs."""
    per_a, per_b, rates = [], [], []
    by_run: dict[int, dict[str, Result]] = {}
    for r in results:
        by_run.setdefault(r.run, {})[r.side] = r
    for pair in by_run.values():
        if a not in pair or b not in pair:
            continue
        ok_a = {s["asked"]: s for s in pair[a].steps if s["ok"]}
        ok_b = {s["asked"]: s for s in pair[b].steps if s["ok"]}
        both = set(ok_a) & set(ok_b)
        if both:
            rate = max(both)
            per_a.append(ok_a[rate]["cpuPer1000"])
            per_b.append(ok_b[rate]["cpuPer1000"])
            rates.append(rate)
    if not rates:
        return float("nan"), float("nan"), 0
    return statistics.median(per_a), statistics.median(per_b), int(statistics.median(rates))


def table(results: list[Result], sides: list[Side]) -> list[str]:
    a, b = sides[0].name, sides[1].name
    rows = [f"| scenario | {a} best clean rate | {b} best clean rate | ratio | "
            f"CPU s/1,000 ops at the best ({a} / {b}) | at the highest step both passed "
            f"({a} / {b}, ratio) |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for name in dict.fromkeys(r.scenario for r in results):
        mine = [r for r in results if r.scenario == name]
        rate_a = [r.best_rate for r in mine if r.side == a]
        rate_b = [r.best_rate for r in mine if r.side == b]
        cpu_a = [r.best_cpu_per_1000 for r in mine if r.side == a and r.best_rate]
        cpu_b = [r.best_cpu_per_1000 for r in mine if r.side == b and r.best_rate]
        ratio = _median(rate_a) / _median(rate_b) if _median(rate_b) else float("nan")
        ca, cb, rate = _common_cpu(mine, a, b)
        common = f"{ca:.3f} / {cb:.3f} at {rate}/s, {ca / cb:.2f}x" if rate else "-"
        rows.append(
            f"| {name} | {_spread(rate_a)}/s | {_spread(rate_b)}/s | {ratio:.2f} | "
            f"{_median(cpu_a):.3f} / {_median(cpu_b):.3f} | {common} |"
        )
    return rows


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str], *, against: str) -> None:
    """``against`` is ``kamailio`` or ``nats``; argv: scenario names, ``--runs N``,
    ``--json FILE``."""
    runs, out, names = 3, Path(f"bench-{against}.json"), []
    args = iter(argv)
    for arg in args:
        if arg == "--runs":
            runs = int(next(args))
        elif arg == "--json":
            out = Path(next(args))
        else:
            names.append(arg)
    data = _Data()
    known = scenarios(data)
    if against == "kamailio":
        from bench.kamailio import available

        if (why := available()) is not None:
            print(f"compare | skipped: {why}")
            return
        sides = [routr_side(data), kamailio_side()]
        names = names or ["register", "calls-udp", "calls-tcp", "options", "latency"]
    else:
        nats = {"events": {"nats": {"url": "nats://127.0.0.1:4222"}}}
        sides = [routr_side(data), routr_side(data, "routr+nats", nats)]
        names = names or ["register", "calls-udp"]
    unknown = [n for n in names if n not in known and n != "latency"]
    if unknown:
        raise SystemExit(f"unknown scenario {unknown[0]!r}; known: {', '.join(known)}, latency")
    results = run(sides, [known[n] for n in names if n != "latency"], runs)
    report: dict[str, Any] = {"ramps": [asdict(r) for r in results]}
    if results:
        for row in table(results, sides):
            print(row)
    if "latency" in names:
        report["latency"] = _latency(sides)
    out.write_text(json.dumps(report, indent=1))
    print(f"(every step of every run: {out})")


def _latency(sides: list[Side]) -> list[dict[str, Any]]:
    """The steady 200 calls/s run of bench/latency.py, once per side."""
    if (why := latency.available()) is not None:
        print(f"latency | skipped: {why}")
        return []
    found = []
    for side in sides:
        with side.start("calls") as target:
            result = latency.measure(side.name, target)
        for row in latency.rows(result):
            print(row, flush=True)
        found.append({"side": side.name, "rssMb": result.rss_mb, "gc": result.gc,
                      "summary": latency.rows(result)})  # fmt: skip
    return found
