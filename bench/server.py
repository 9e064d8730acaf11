"""Start the real server for a benchmark and read its CPU time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

_LISTEN = re.compile(r"(udp|tcp|tls|ws|wss) [0-9a-fA-F.:]+:(\d+)")
_API = re.compile(r"api (https?://\S+?);")
_TICKS = os.sysconf("SC_CLK_TCK")


class BenchServer:
    """routr-server on loopback with kernel-chosen ports, logging at warning level."""

    def __init__(
        self,
        protocols: tuple[str, ...] = ("udp",),
        spec: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ):
        self.dir = Path(tempfile.mkdtemp(prefix="routr-bench-"))
        # the API on a free port too: 4567 may be taken by a routr already running here
        config = {"spec": {"bindAddr": "127.0.0.1",
                           "transport": [{"protocol": p, "port": 0} for p in protocols],
                           "restService": {"port": 0},
                           **(spec or {})}}  # fmt: skip
        (self.dir / "config.yml").write_text(yaml.safe_dump(config))
        self.ports: dict[str, int] = {}
        self.api = ""  # the REST API's base URL (for /metrics)
        self.proc: subprocess.Popen[str] | None = None
        self.env = {**os.environ, **(env or {})}

    def __enter__(self) -> BenchServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "routr.server.cli", "--config", "config.yml",
             "--log-level", "info"],
            cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=self.env,
        )  # fmt: skip
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in self.proc.stdout:
            if "listening on" in line and "routr" in line:
                self.ports = {p: int(n) for p, n in _LISTEN.findall(line)}
                if (api := _API.search(line)) is not None:
                    self.api = api.group(1)
                break
            if time.monotonic() > deadline:
                break
        if not self.ports:
            raise RuntimeError("routr-server did not start")
        # Keep reading its log: a full pipe would stall the server mid-benchmark.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return cpu_seconds_of(self.proc.pid)


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
