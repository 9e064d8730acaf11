"""Run ``routr-server`` as a real process on loopback ports chosen by the kernel."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from routr import __version__

_LISTEN = re.compile(r"(udp|tcp|tls|ws|wss) ([0-9a-fA-F.:]+):(\d+)")
_API = re.compile(r"api (https?://\S+?);")

#: Where every server's whole log is kept for the session's secrets check (set by
#: ``tests/conftest.py``; ``None`` keeps nothing, e.g. outside pytest).
LOG_DIR: Path | None = None
_log_count = 0
_log_lock = threading.Lock()

#: The secrets the tests give servers, which no server log may hold (the session checks):
#: secret -> where it is used. Only distinctive ones: "1234" or "pw" would match ports and
#: words. Each server's own master secret (``.routr-secret``) is checked too.
TEST_SECRETS: dict[str, str] = {
    "admin-secret-for-tests": "support.api ADMIN_SECRET (INITIAL_API_SECRET)",
    "metrics-admin-secret": "api/test_metrics.py ADMIN_SECRET",
    "replica-secret-1": "api/test_replica.py REPLICA_SECRET",
    "changeit": "api/test_openapi.py SECRET",
    "s3cret-pw": "console/test_console.py SECRET",
    "s3cret-pass": "events/test_nats_publisher.py NATS password, server/test_admin_user.py",
    "s3cret": "e2e agents' passwords (test_proxy.py, test_routing.py, test_api.py)",
    "pw2002": "api/test_api.py agent 2002",
    "pw2003": "api/test_api.py agent 2003",
    "pw2030": "api/test_api.py agent 2030",
    "pw2031": "api/test_api.py agent 2031",
    "pw4001": "api/test_replica.py agent 4001",
    "pw4003": "api/test_replica.py agent 4003",
    "fuzzed-input-secret": "server/test_fuzzed_input.py agents",
}
#: Secrets met during the run (API tokens issued, servers' master secrets): value -> what.
RUN_SECRETS: dict[str, str] = {}


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
        self.data = data
        self.args = (*args, "--data", str(data)) if data is not None else args
        self.ports: dict[str, int] = {}
        self.api = ""  # the REST API's URL, e.g. http://127.0.0.1:41234
        self.lines: list[str] = []  # log messages (with tracebacks)
        self.raw: list[str] = []  # the JSON lines as written
        self.proc: subprocess.Popen[str] | None = None
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._log: IO[str] | None = None

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
        self._log = _open_log(self.workdir)
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
            if self._log is not None:
                self._log.write(raw)
            try:
                record = json.loads(line)
                line = record["msg"]
                if record.get("exc"):  # keep tracebacks visible to assert_no_tracebacks
                    line += "\n" + record["exc"]
            except (ValueError, KeyError, TypeError):
                pass
            self.lines.append(line)
            self._queue.put(line)
        if self._log is not None:
            self._log.close()
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
        self._note_master_secret()
        return self.proc.returncode

    def _note_master_secret(self) -> None:
        """Add this server's master secret, if it made one, to what no log may hold."""
        if self.data is None:
            return
        with contextlib.suppress(OSError):
            master = (self.data / ".routr-secret").read_text().strip()
            if master:
                RUN_SECRETS[master] = f"the master secret in {self.data}"

    def assert_no_tracebacks(self) -> None:
        bad = [line for line in self.lines if "Traceback" in line or "handler failed" in line]
        assert not bad, "\n".join(self.lines)


def _open_log(workdir: Path) -> IO[str] | None:
    """A file in :data:`LOG_DIR` for one server's log, named after the test that started it."""
    global _log_count
    if LOG_DIR is None:
        return None
    with _log_lock:
        _log_count += 1
        number = _log_count
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test or workdir.name)[-150:]
    path = LOG_DIR / f"{number:04d}-{name}.log"
    path.write_text(f"# started by {test or '?'} in {workdir}\n")
    return path.open("a", encoding="utf-8", buffering=1)


class NamespacedRoutr(RoutrProcess):
    """``routr-server`` started with ``ip netns exec NS``."""

    def __init__(self, workdir: Path, netns: str, **kw: Any) -> None:
        super().__init__(workdir, ("udp", "tcp"), launcher=("ip", "netns", "exec", netns), **kw)
        self.netns = netns

    def problems(self) -> list[str]:
        """Log lines with an exception, a traceback or an error."""
        bad = []
        for raw in self.raw:
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                if raw.strip():
                    bad.append(raw)  # not our JSON: a crash's stderr
                continue
            if (
                "exc" in entry
                or entry.get("level") in ("error", "critical")
                or ("Traceback" in raw or "handler failed" in raw)
            ):
                bad.append(raw)
        return bad


def unavailable(reason: str) -> None:
    """Skip, or fail on CI where the namespace is required."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the test must run)")
    pytest.skip(reason)


@contextlib.contextmanager
def network_namespace(prefix: str) -> Iterator[str]:
    """A loopback-only network namespace (root and iproute2), deleted afterwards: messages
    naming outside hosts cannot leave the machine from there."""
    if os.geteuid() != 0:
        unavailable("needs root for a network namespace (ip netns)")
    if shutil.which("ip") is None:
        unavailable("needs iproute2 (the ip command) for a network namespace")
    name = f"{prefix}-{secrets.token_hex(4)}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        unavailable(f"ip netns add failed: {made.stderr.strip()}")
    try:
        up = subprocess.run(
            ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
            capture_output=True,
            text=True,
        )
        if up.returncode != 0:
            unavailable(f"ip netns exec failed: {up.stderr.strip()}")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
