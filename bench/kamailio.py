"""Kamailio as the reference beside routr: the same traffic, its config in this folder.

Debian's ``kamailio`` (5.6 here) runs in the foreground with two UDP and two TCP workers,
as TESTING-NOTES.md describes a fair comparison; its CPU time is the sum over all its
processes (the main one and the children it forks).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from bench.server import cpu_seconds_of

CONFIG = Path(__file__).resolve().parent / "kamailio" / "compare.cfg"


def available() -> str | None:
    """Why Kamailio cannot run here, or None when it can."""
    if shutil.which("kamailio") is None and not Path("/usr/sbin/kamailio").exists():
        return "kamailio is not installed (Debian package kamailio)"
    return None


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


class KamailioServer:
    """Kamailio on loopback ports of its own, knowing ``users`` (username, password) and
    ``numbered`` users of the REGISTER benchmark (``bench.register.credentials``: one
    line of script each would not fit Kamailio's private memory, so its script makes them).
    """

    def __init__(self, users: Iterable[tuple[str, str]] = (), numbered: int = 0) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="routr-bench-kamailio-"))
        self.ports = {"udp": _free_port(socket.SOCK_DGRAM), "tcp": _free_port(socket.SOCK_STREAM)}
        lines = "".join(f'\t$sht(users=>{name}) = "{secret}";\n' for name, secret in users)
        text = (
            CONFIG.read_text()
            .replace("@UDP_PORT@", str(self.ports["udp"]))
            .replace("@TCP_PORT@", str(self.ports["tcp"]))
            .replace("@USERS@\n", lines)
            .replace("@NUMBERED@", str(numbered))
        )
        self.config = self.dir / "kamailio.cfg"
        self.config.write_text(text)
        self.proc: subprocess.Popen[bytes] | None = None
        self._pids: list[int] = []

    def __enter__(self) -> KamailioServer:
        binary = shutil.which("kamailio") or "/usr/sbin/kamailio"
        self.proc = subprocess.Popen(
            [binary, "-DD", "-E", "-f", str(self.config), "-n", "2", "-m", "256", "-M", "8",
             "-w", str(self.dir), "-P", str(self.dir / "kamailio.pid")],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "kamailio.log", "wb"),
        )  # fmt: skip
        self._wait_ready()
        self._pids = _children(self.proc.pid)
        return self

    def _wait_ready(self, seconds: float = 15.0) -> None:
        """Until an OPTIONS to the UDP port is answered (Kamailio has no readiness line)."""
        assert self.proc is not None
        deadline = time.monotonic() + seconds
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.2)
            port = sock.getsockname()[1]
            probe = (
                f"OPTIONS sip:127.0.0.1:{self.ports['udp']} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKready\r\n"
                "From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:probe@127.0.0.1>\r\n"
                "Call-ID: ready\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    log = (self.dir / "kamailio.log").read_text(errors="replace")
                    raise RuntimeError(f"kamailio exited: {log.strip().splitlines()[-1:]}")
                sock.sendto(probe, ("127.0.0.1", self.ports["udp"]))
                try:
                    if sock.recv(65536).startswith(b"SIP/2.0 200"):
                        return
                except TimeoutError:
                    continue
        raise RuntimeError("kamailio did not answer OPTIONS")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cpu_seconds(self) -> float:
        # Children forked once at start; the set is read again in case one was replaced.
        assert self.proc is not None
        self._pids = _children(self.proc.pid) or self._pids
        return sum(cpu_seconds_of(pid) for pid in self._pids)
