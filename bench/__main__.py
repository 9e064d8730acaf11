"""``nox -s bench``: every benchmark, printed as the rows of BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import sys

from bench import api, calls, compare, parser, register
from bench.server import BenchServer
from bench.sipp import ramp


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main(argv: list[str]) -> None:
    if argv and argv[0] in ("compare", "nats"):
        # routr beside Kamailio, or beside itself publishing on NATS: compare.py's doc
        print(f"machine: {machine()}")
        compare.main(argv[1:], against="kamailio" if argv[0] == "compare" else "nats")
        return
    which = set(argv) or {"parser", "options", "register", "calls", "api"}
    print(f"machine: {machine()}")
    if "parser" in which:
        for name, value in parser.main():
            print(f"parser | {name} | {value}")
    if "options" in which:
        with BenchServer(("udp",)) as server:
            runs = ramp(server, "options.xml", [2000, 4000, 6000, 8000, 10000, 12000, 14000])
        for run in runs:
            print(f"options udp | asked {run.rate}/s | achieved {run.achieved:,.0f}/s | "
                  f"server CPU {run.server_cpu:.0%} | {run.verdict}")  # fmt: skip
        best = max((r.achieved for r in runs if r.ok), default=0.0)
        print(f"options udp | highest rate with no failure | {best:,.0f}/s")
    if "register" in which:
        # 10,000 distinct users, digest auth (401 + 200 each), memory then Redis location.
        register.main()
    if "calls" in which:
        for row in calls.main():
            print(row)
    if "api" in which:
        # GET /location with 10,000 bindings, POST of 1,000 agents, REGISTER +/- a watcher.
        api.main()


if __name__ == "__main__":
    main(sys.argv[1:])
