"""Helpers of the rctl tests: rctl run in process or as a real program, manifests."""

from __future__ import annotations

import fcntl
import itertools
import os
import pty
import queue
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from e2e.registrar_kit import Registration
from support.server import RoutrProcess
from support.sip import UdpClient
from typer.testing import CliRunner

from rctl.cli import app

_serial = itertools.count(1)


@dataclass
class Outcome:
    code: int
    out: str
    err: str


class Rctl:
    """Runs rctl with its own config file: in process (CliRunner) or as the installed
    program (a real process, as an operator runs it)."""

    def __init__(self, config: Path, server: str) -> None:
        self.config = config
        self.server = server
        self.env = {"RCTL_CONFIG": str(config), "NO_COLOR": "1"}

    def __call__(self, *args: str, input: str | None = None) -> Outcome:
        result = CliRunner(env=self.env).invoke(app, list(args), input=input)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def process(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Outcome:
        done = subprocess.run(
            [sys.executable, "-m", "rctl.cli", *args],
            input=input,
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, **(env or {})},
            timeout=60,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, input: str | None = None) -> str:
        outcome = self(*args, input=input)
        assert outcome.code == 0, outcome
        return outcome.out


def unique_domain() -> str:
    return f"t{next(_serial)}.rctl.test"


def unique_user() -> str:
    return f"u{next(_serial):04d}"


def domain_doc(uri: str) -> dict[str, object]:
    return {
        "apiVersion": "v1beta1",
        "kind": "Domain",
        "metadata": {"name": f"Domain {uri}"},
        "spec": {"context": {"domainUri": uri}},
    }


def agent_yaml(username: str, secret: str, domain: str, name: str = "") -> str:
    return (
        "- apiVersion: v1beta1\n"
        "  kind: Agent\n"
        f"  metadata: {{name: {name or 'Agent ' + username}}}\n"
        f"  spec: {{credentials: {{username: '{username}', secret: '{secret}'}}, "
        f"domains: [{domain}]}}\n"
    )


def create_agents(rctl: Rctl, domain: str, *users: str) -> dict[str, str]:
    """Create Agents in ``domain``; username -> ref."""
    text = "".join(agent_yaml(u, f"secret-{u}", domain) for u in users)
    out = rctl.ok("create", "-f", "-", input=text)
    refs = [line.split()[0].split("/")[1] for line in out.splitlines()]
    assert len(refs) == len(users), out
    return dict(zip(users, refs, strict=True))


def register(server: RoutrProcess, user: str, secret: str, domain: str) -> int:
    """REGISTER over UDP with digest, as a phone does; the final status."""
    client = UdpClient(("127.0.0.1", server.ports["udp"]))
    try:
        reg = Registration(client, user, secret, domain)
        contact = f"<sip:{user}@{client.local[0]}:{client.local[1]}>"
        return reg.send([contact], expires=60).status
    finally:
        client.close()


class Follower:
    """A long-running rctl (``--watch``, ``logs -f``) as a real process; its stdout lines
    are read as they come."""

    def __init__(self, rctl: Rctl, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rctl.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **rctl.env},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, *texts: str, timeout: float = 10.0) -> str:
        """The first line holding every one of ``texts``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line with {texts}; seen: {self.seen}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"rctl ended ({self.proc.wait()}): {err}; seen: {self.seen}")
            self.seen.append(line)
            if all(t in line for t in texts):
                return line

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Terminal:
    """rctl as a real process whose stdout is a terminal (a pty, 200 columns wide)."""

    def __init__(self, rctl: Rctl, *args: str, env: dict[str, str] | None = None) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rctl.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env={**os.environ, **rctl.env, "COLUMNS": "200", **(env or {})},
        )
        os.close(slave)
        self.master = master
        self.text = ""
        self.ended = False
        self.changed = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the other side closed
                chunk = b""
            with self.changed:
                if not chunk:
                    self.ended = True
                    self.changed.notify_all()
                    return
                self.text += chunk.decode("utf-8", "replace")
                self.changed.notify_all()

    def wait_for(self, *texts: str, timeout: float = 10.0) -> str:
        """All output so far, once it holds every one of ``texts``."""
        with self.changed:
            done = self.changed.wait_for(
                lambda: self.ended or all(t in self.text for t in texts), timeout
            )
            if not done or not all(t in self.text for t in texts):
                raise TimeoutError(f"no {texts} in {self.text!r}")
            return self.text

    def finish(self, timeout: float = 30.0) -> str:
        self.proc.wait(timeout)
        with self.changed:
            self.changed.wait_for(lambda: self.ended, timeout)
            return self.text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        os.close(self.master)
