"""Run baresip (Debian ``baresip-core`` 1.0) headless as a real phone on loopback.

No sound card: ``aubridge`` joins the phone's player to its source, so a phone in a call
sends as RTP what it plays (silence until the far end's audio arrives, then that audio
echoed): RTP flows both ways with no audio file and no sound device. Commands (``dial``,
``hangup``) are sent to the ``cons`` UDP console; ``-s`` traces every SIP message,
``rtp_stats`` prints packet counts when a call ends. The process quits by itself after
``lifetime`` seconds (``-t``) whatever happens.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from support.binaries import free_port, missing, need_binary

#: What the tests load: PCMU/PCMA, the audio bridge, accounts file, menu commands, console.
MODULES = ("g711.so", "aubridge.so", "cons.so", "account.so", "menu.so")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRACE = re.compile(r"^(UDP|TCP|TLS) (\S+) -> (\S+)\n(.+?)\r\n\r\n", re.MULTILINE | re.DOTALL)
_STATS = re.compile(r"^audio\s+Transmit:\s+Receive:\s*\npackets:\s+(\d+)\s+(\d+)", re.MULTILINE)


def baresip_binary() -> tuple[str, Path]:
    """baresip's path and its module folder; skip (CI: fail) when either is missing."""
    binary = need_binary("baresip", "baresip-core")
    modules = Path(binary).resolve().parents[1] / "lib" / "baresip" / "modules"
    absent = [m for m in MODULES if not (modules / m).exists()]
    if absent:
        missing(f"baresip modules {absent} not found in {modules}")
    return binary, modules


@dataclass
class SipTrace:
    """One SIP message as ``baresip -s`` printed it (start line and headers)."""

    protocol: str
    source: str
    destination: str
    head: str

    @property
    def start_line(self) -> str:
        return self.head.split("\r\n", 1)[0]

    def header(self, name: str) -> str | None:
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


class Baresip:
    """One baresip phone registered as ``user@domain`` through ``proxy`` over ``transport``
    (udp, tcp or tls). Its config folder and log live in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        user: str,
        password: str,
        domain: str,
        transport: str,
        proxy: tuple[str, int],
        *,
        ca_file: Path | None = None,
        lifetime: int = 60,
    ) -> None:
        self.binary, modules = baresip_binary()
        self.workdir = workdir
        self.user, self.domain, self.transport = user, domain, transport
        self.proxy = proxy
        self.lifetime = lifetime
        workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port(span=2)  # TLS listens on the SIP port + 1
        self.console_port = free_port()
        # An empty audio folder: no ring/ringback file is played. A ringback player on
        # the aubridge device would take the call's player slot and, when it stops, leave
        # the bridge without one: that phone would then never send RTP.
        (workdir / "sounds").mkdir(exist_ok=True)
        config = {
            "poll_method": "epoll",
            "sip_listen": f"127.0.0.1:{self.sip_port}",
            "net_interface": "127.0.0.1",  # the name "lo" is not accepted by 1.0
            "call_max_calls": "4",
            "audio_player": f"aubridge,{user}",
            "audio_source": f"aubridge,{user}",
            "audio_alert": f"aubridge,alert{user}",
            "audio_path": str(workdir / "sounds"),
            "ringback_disabled": "yes",
            "rtp_stats": "yes",
            "module_path": str(modules),
            "cons_listen": f"127.0.0.1:{self.console_port}",
        }
        if ca_file is not None:
            # baresip 1.0 has no sip_verify_server: it takes the CA but accepts any server
            # certificate (checked by hand). Newer versions verify against this file.
            config["sip_cafile"] = str(ca_file)
        lines = [f"{key}\t{value}" for key, value in config.items()]
        lines += [f"module\t{m}" for m in MODULES if m not in ("account.so", "menu.so")]
        lines += ["module_app\taccount.so", "module_app\tmenu.so"]
        (workdir / "config").write_text("\n".join(lines) + "\n")
        # The domain does not resolve: every request goes to the outbound proxy.
        outbound = f"sip:{proxy[0]}:{proxy[1]};transport={transport}"
        (workdir / "accounts").write_text(
            f"<sip:{user}@{domain};transport={transport}>;auth_pass={password};"
            f'regint=300;answermode=auto;outbound="{outbound}"\n'
        )
        self.text = ""  # everything printed so far, colour codes removed
        self._changed = threading.Condition()
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader = threading.Thread(target=self._pump, daemon=True)

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

    def start(self) -> Baresip:
        cmd = [self.binary, "-4", "-f", str(self.workdir), "-t", str(self.lifetime), "-v", "-s"]
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader.start()
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        pending = ""
        with open(self.workdir / "baresip.log", "w") as log:
            while chunk := _read(fd):
                text = pending + chunk.decode(errors="replace")
                # Hold back a colour code cut in two by the read.
                cut = text.rfind("\x1b")
                if cut != -1 and "m" not in text[cut:]:
                    text, pending = text[:cut], text[cut:]
                else:
                    pending = ""
                text = _ANSI.sub("", text)
                log.write(text)
                log.flush()
                with self._changed:
                    self.text += text
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 10.0, after: int = 0) -> re.Match[str]:
        """The first match of the regex ``pattern`` in the output from offset ``after``."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = regex.search(self.text, after)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    state = "running" if self.proc and self.proc.poll() is None else "exited"
                    raise AssertionError(
                        f"baresip {self.user} ({state}): no {pattern!r} within {timeout} s; "
                        f"output (tail):\n{self.text[-6000:]}"
                    )
                self._changed.wait(min(left, 0.5))

    def command(self, line: str) -> None:
        """A menu command (``dial sip:...``, ``hangup``) typed into the UDP console."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(f"/{line}\n".encode(), ("127.0.0.1", self.console_port))

    def registered(self, timeout: float = 10.0) -> None:
        """baresip prints ``user@domain: {0/TCP/v4} 200 OK (server) [1 binding]``."""
        proto = self.transport.upper()
        self.wait_for(rf"{self.user}@{self.domain}: \{{0/{proto}/v4\}} 200 OK", timeout)

    def trace(self) -> list[SipTrace]:
        """Every SIP message sent or received so far, in order."""
        return [SipTrace(*m.groups()) for m in _TRACE.finditer(self.text)]

    def from_proxy(self, start: str) -> list[SipTrace]:
        """Messages that came from the proxy and whose start line begins with ``start``."""
        proxy = f"{self.proxy[0]}:{self.proxy[1]}"
        return [t for t in self.trace() if t.source == proxy and t.start_line.startswith(start)]

    def rtp_packets(self, timeout: float = 5.0) -> tuple[int, int]:
        """(sent, received) RTP packets of the call, from the table printed as it ends."""
        found = self.wait_for(_STATS.pattern, timeout)
        return int(found[1]), int(found[2])

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (baresip hangs up and unregisters), SIGKILL when that takes too long."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout)  # the pipe is at its end once the process is gone


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""
