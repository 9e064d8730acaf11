"""INVITE->200 at a steady 200 calls/s, read from a loopback capture, with RSS over time.

SIPp's own response times come in steps of its ~4 ms scheduler tick, too coarse for a p99
target of 10 ms; the kernel's capture timestamps are not. For every call two figures:
at the caller (the INVITE reaching the server -> its 200 leaving the server, so the
callee's SIPp is inside it) and the server's own share (INVITE in -> INVITE out, plus
200 in -> 200 out). routr's RSS is sampled every second and its collector's pauses are
read from ``/metrics`` before and after (``routr_gc_pause_seconds``).
"""

from __future__ import annotations

import re
import shutil
import statistics
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import calls
from bench.server import BenchServer, rss_mb
from bench.sipp import Step, Target

_CALL_ID = re.compile(rb"\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+)", re.IGNORECASE)
_CSEQ = re.compile(rb"\r\nCSeq[ \t]*:[ \t]*\d+[ \t]+([A-Z]+)", re.IGNORECASE)


@dataclass
class Latency:
    side: str
    step: Step
    caller_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    packets: int = 0
    capture: str = ""  # dumpcap's closing words (captured/dropped)
    rss_mb: list[float] = field(default_factory=list)  # routr's, one a second
    #: per collector generation: (pauses over 10 ms during the run, longest since start, ms)
    gc: dict[str, tuple[float, float]] = field(default_factory=dict)


def packets(path: Path) -> Iterator[tuple[float, int, int, bytes]]:
    """(time, source port, destination port, payload) of each UDP/IPv4 packet of a pcap."""
    data = path.read_bytes()
    if len(data) < 24:
        return
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    scale = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    link = struct.unpack(endian + "I", data[20:24])[0]
    offset = {1: 14, 113: 16, 276: 20}.get(link)
    if offset is None:
        raise ValueError(f"capture link type {link} not read here")
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[pos : pos + 16])
        frame = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        ip = frame[offset:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4 :]
        sport, dport = struct.unpack("!HH", udp[:4])
        yield sec + frac * scale, sport, dport, udp[8:]


def times(path: Path, server: int, callee: int) -> tuple[list[float], list[float], int]:
    """Per-call caller-side and server-side INVITE->200 times (ms) from a capture."""
    first: dict[tuple[bytes, str], float] = {}
    count = 0
    for ts, sport, dport, payload in packets(path):
        count += 1
        call = _CALL_ID.search(payload)
        cseq = _CSEQ.search(payload)
        if call is None or cseq is None or cseq.group(1).upper() != b"INVITE":
            continue
        if payload.startswith(b"INVITE "):
            kind = "invite-in" if dport == server else "invite-out" if sport == server else ""
        elif payload.startswith(b"SIP/2.0 200"):
            if dport == server:
                kind = "ok-in"
            elif sport == server:
                kind = "ok-out" if dport != callee else ""
            else:
                kind = ""
        else:
            continue
        if kind:
            first.setdefault((call.group(1), kind), ts)
    caller, own = [], []
    for (call_id, kind), start in first.items():
        if kind != "invite-in":
            continue
        end = first.get((call_id, "ok-out"))
        relayed, answered = first.get((call_id, "invite-out")), first.get((call_id, "ok-in"))
        if end is not None:
            caller.append((end - start) * 1000)
            if relayed is not None and answered is not None:
                own.append(((relayed - start) + (end - answered)) * 1000)
    return caller, own, count


class _Capture:
    """dumpcap on the loopback for one UDP port, written as pcap."""

    def __init__(self, port: int, path: Path) -> None:
        self.path = path
        self.proc = subprocess.Popen(
            ["dumpcap", "-i", "lo", "-f", f"udp port {port}", "-w", str(path), "-P", "-B", "256"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 10
        for line in self.proc.stderr:
            if "Capturing on" in line or time.monotonic() > deadline:
                break
        self.words = ""

    def stop(self) -> None:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        found = re.search(r"received/dropped.*?: (\d+)/(\d+) ", err)
        self.words = f"{found.group(2)} dropped" if found else "capture count unknown"


def _gc(api: str) -> dict[str, tuple[float, float]]:
    """Per collector generation: (pauses over 10 ms, longest pause in ms since start)."""
    from prometheus_client.parser import text_string_to_metric_families

    over: dict[str, float] = {}
    longest: dict[str, float] = {}
    text = httpx.get(f"{api}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            generation = sample.labels.get("generation")
            if generation is None:
                continue
            if sample.name == "routr_gc_pause_seconds_count":
                over[generation] = over.get(generation, 0.0) + sample.value
            elif sample.name == "routr_gc_pause_seconds_bucket" and sample.labels["le"] == "0.01":
                over[generation] = over.get(generation, 0.0) - sample.value
            elif sample.name == "routr_gc_longest_pause_seconds":
                longest[generation] = sample.value * 1000
    return {g: (over.get(g, 0.0), longest.get(g, 0.0)) for g in sorted(over)}


def measure(side: str, target: Target, rate: int = 200, seconds: float = 60.0) -> Latency:
    callee = calls.Callee(target)
    with tempfile.TemporaryDirectory(prefix="routr-bench-latency-") as tmp:
        capture = _Capture(target.ports["udp"], Path(tmp) / "calls.pcap")
        rss: list[float] = []
        done = threading.Event()
        api = getattr(target, "api", None)
        pid = target.proc.pid if isinstance(target, BenchServer) and target.proc else None
        if pid is not None:

            def sample() -> None:
                while not done.wait(1.0):
                    rss.append(rss_mb(pid))

            threading.Thread(target=sample, daemon=True).start()
        gc_before = _gc(api) if api else {}
        try:
            step = calls.run_step(target, callee, rate, seconds=seconds)
        finally:
            done.set()
            capture.stop()
        result = Latency(side, step, rss_mb=rss, capture=capture.words)
        if api:
            result.gc = {g: (over - gc_before.get(g, (0.0, 0.0))[0], longest)
                         for g, (over, longest) in _gc(api).items()}  # fmt: skip
        result.caller_ms, result.server_ms, result.packets = times(
            capture.path, target.ports["udp"], callee.port
        )
    return result


def _q(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def rows(result: Latency) -> list[str]:
    step = result.step
    out = [
        f"latency {result.side} | {step.rate} calls/s for {step.seconds:.0f} s | "
        f"{step.verdict} | server CPU {step.server_cpu:.0%} | {result.packets:,} packets "
        f"captured ({result.capture})",
    ]
    for name, values in (("caller INVITE->200", result.caller_ms),
                         ("server's own share", result.server_ms)):  # fmt: skip
        out.append(
            f"latency {result.side} | {name} | p50 {_q(values, 50):.2f} ms | "
            f"p99 {_q(values, 99):.2f} ms | max {max(values, default=float('nan')):.2f} ms | "
            f"{len(values):,} calls"
        )
    if result.rss_mb:
        marks = result.rss_mb[::10]
        out.append(f"latency {result.side} | RSS every 10 s (MB) | "
                   + " ".join(f"{m:.0f}" for m in marks))  # fmt: skip
    for generation, (over, longest) in result.gc.items():
        out.append(f"latency {result.side} | collector generation {generation} | "
                   f"{over:.0f} pauses over 10 ms during the run | longest since start "
                   f"{longest:.1f} ms")  # fmt: skip
    return out


def available() -> str | None:
    if shutil.which("dumpcap") is None:
        return "dumpcap is not installed (Debian package tshark)"
    return None
