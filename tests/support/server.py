"""Run ``routr-server`` as a real process on loopback ports chosen by the kernel."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from routr import __version__

_LISTEN = re.compile(r"(udp|tcp|tls|ws|wss) ([0-9a-fA-F.:]+):(\d+)")
_API = re.compile(r"api (https?://\S+?);")


class RoutrProcess:
    """A routr-server child process; ``ports[protocol]`` is where it listens."""

    def __init__(
        self,
        workdir: Path,
        protocols: tuple[str, ...] = ("udp", "tcp"),
        spec: dict[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        data: Path | None = None,
        launcher: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.launcher = launcher  # a command prefix, e.g. ("ip", "netns", "exec", NS)
        self.host = host
        config = {
            "apiVersion": "v1beta1",
            "spec": {
                "bindAddr": host,
                "transport": [{"protocol": p, "port": 0} for p in protocols],
                # the API on a port of the kernel's choosing too (several servers at once)
                "restService": {"port": 0},
                **(spec or {}),
            },
        }
        self.config_path = workdir / "config.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.env = {**os.environ, **(env or {})}
        self.args = (*args, "--data", str(data)) if data is not None else args
        self.ports: dict[str, int] = {}
        self.api = ""  # the REST API's URL, e.g. http://127.0.0.1:41234
        self.lines: list[str] = []  # log messages (with tracebacks)
        self.raw: list[str] = []  # the JSON lines as written
        self.proc: subprocess.Popen[str] | None = None
        self._queue: queue.Queue[str | None] = queue.Queue()

    def start(self, timeout: float = 15.0) -> RoutrProcess:
        cmd = [*self.launcher, sys.executable, "-m", "routr.server.cli",
               "--config", str(self.config_path), "--log-format", "json",
               "--log-level", "debug", *self.args]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        line = self.wait_for(f"routr {__version__} listening on", timeout)
        for proto, _, port in _LISTEN.findall(line.split("; api ")[0]):
            self.ports[proto] = int(port)
        api = _API.search(line)
        self.api = api.group(1) if api else ""
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.rstrip("\n")
            self.raw.append(line)
            try:
                record = json.loads(line)
                line = record["msg"]
                if record.get("exc"):  # keep tracebacks visible to assert_no_tracebacks
                    line += "\n" + record["exc"]
            except (ValueError, KeyError, TypeError):
                pass
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        """The first log line (from now on, or already seen) containing ``text``."""
        for line in self.lines:
            if text in line:
                return line
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no log line with {text!r}; log:\n" + "\n".join(self.lines))
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("routr-server exited; log:\n" + "\n".join(self.lines))
            if text in line:
                return line

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode

    def assert_no_tracebacks(self) -> None:
        bad = [line for line in self.lines if "Traceback" in line or "handler failed" in line]
        assert not bad, "\n".join(self.lines)
