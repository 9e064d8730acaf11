"""Calls through the proxy: SIPp UAC -> server -> SIPp UAS, zero hold time.

Each call is INVITE/100/180/200/ACK/BYE/200 with recordRoute on (ACK and BYE come back
through the server too): per call routr handles 2 requests with their transactions plus an
ACK, 8 messages in and 8 out. Requests are not authenticated (``authenticateRequests:
false``): the digest cost is measured by the REGISTER benchmark. The callee registers once
(with digest) before the first step, over UDP with ``transport=tcp`` in its Contact for the
TCP variant.

Two figures: the highest rate of a ramp at which every call succeeded and the asked rate
held (server CPU beside it), and the INVITE->200 time seen by the caller at 200 calls/s
(SIPp's response time 1, from ``-trace_rtt``, in steps of SIPp's ~4 ms scheduler tick; the
latency benchmark reads a capture instead). Both SIPp ends ignore unexpected messages
instead of aborting the call (``-default_behaviors all,-abortunexp``): at zero hold time a
180 may arrive after the 200 and a BYE overtake the ACK.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.data import write
from bench.server import BenchServer
from bench.sipp import SCENARIOS, Step, Target, sipp
from routr.sip.digest import make_credentials, pick_challenge
from routr.sip.message import Response, parse_message

DOMAIN = "sip.local"
SECRET = "bench-secret"
USERS = (("1001", SECRET), ("1002", SECRET))
RATES = [200, 300, 400, 500, 600, 700, 800, 1000, 1200, 1400, 1600]
SECONDS = 5.0


def write_data(folder: Path) -> Path:
    return write(folder / "data", {DOMAIN: USERS})


def routr_spec(data: Path) -> dict[str, Any]:
    return {
        "recordRoute": True,
        "security": {"authenticateRequests": False},
        "dataSource": {"provider": "files_data_provider", "parameters": {"path": str(data)}},
    }


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def register(server_port: int, contact_port: int, protocol: str = "udp") -> None:
    """Bind sip:1002@sip.local to the UAS (from a socket whose Via is its source)."""
    suffix = ";transport=tcp" if protocol == "tcp" else ""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        call_id = uuid.uuid4().hex

        def send(cseq: int, auth: str) -> Response:
            sock.sendto(
                (
                    f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
                    f"Max-Forwards: 70\r\nFrom: <sip:1002@{DOMAIN}>;tag=b{cseq}\r\n"
                    f"To: <sip:1002@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
                    f"Contact: <sip:1002@127.0.0.1:{contact_port}{suffix}>\r\nExpires: 3600\r\n"
                    f"{auth}Content-Length: 0\r\n\r\n"
                ).encode(),
                ("127.0.0.1", server_port),
            )
            while True:
                message = parse_message(sock.recvfrom(65536)[0])
                if isinstance(message, Response) and message.status >= 200:
                    return message

        first = send(1, "")
        challenge = pick_challenge(first.get_all("www-authenticate"))
        if challenge is None:
            raise RuntimeError(f"no challenge to REGISTER: {first.status}")
        creds = make_credentials(challenge, "REGISTER", f"sip:{DOMAIN}", "1002", SECRET, "b1")
        second = send(2, f"Authorization: {creds}\r\n")
        if second.status != 200:
            raise RuntimeError(f"REGISTER failed: {second.status} {second.reason}")


class Callee:
    """The callee's port, registered on ``target`` over ``protocol``."""

    def __init__(self, target: Target, protocol: str = "udp") -> None:
        self.protocol = protocol
        kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
        self.port = free_port(kind)
        register(target.ports["udp"], self.port, protocol)


def run_step(
    target: Target, callee: Callee, rate: int, *, seconds: float = SECONDS, rtt: bool = False
) -> Step:
    calls = int(rate * seconds)
    limit = int(seconds * 3 + 10)
    mode = "t1" if callee.protocol == "tcp" else "u1"
    with tempfile.TemporaryDirectory(prefix="routr-bench-calls-") as tmp:
        uas = subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / "proxy_uas.xml"), "-t", mode, "-i", "127.0.0.1",
             "-p", str(callee.port), "-m", str(calls), "-nostdin", "-timeout", f"{limit + 5}s",
             "-timeout_error", "-default_behaviors", "all,-abortunexp",
             "-max_recv_loops", "10000", "-max_sched_loops", "10000"],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _wait_listening(callee)
        # A multi-process server (Kamailio's workers) may pass a 180 after the 200 behind it:
        # a late provisional answer is not a failed call, for the caller as for the callee.
        extra = ("-default_behaviors", "all,-abortunexp")
        extra += ("-trace_rtt", "-rtt_freq", "1") if rtt else ()
        step = sipp(target, "proxy_uac.xml", rate, calls, protocol=callee.protocol,
                    extra=extra, cwd=Path(tmp))  # fmt: skip
        try:
            uas.wait(limit + 10)
        except subprocess.TimeoutExpired:
            uas.kill()
            uas.wait()
        for path in Path(tmp).glob("*_rtt.csv"):
            for line in path.read_text().splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 2:
                    try:
                        step.latencies_ms.append(float(parts[1]))
                    except ValueError:
                        continue
    if uas.returncode != 0 and step.completed:
        step.completed, step.detail = False, "the callee's SIPp failed"
    return step


def _wait_listening(callee: Callee, seconds: float = 5.0) -> None:
    """Until the callee's SIPp holds its port (it prints no readiness line)."""
    kind = socket.SOCK_STREAM if callee.protocol == "tcp" else socket.SOCK_DGRAM
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", callee.port))
            except OSError:
                return  # taken: SIPp is there
        time.sleep(0.02)
    raise RuntimeError(f"the callee's SIPp did not take port {callee.port}")


def main(rates: list[int] | None = None) -> list[str]:
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="routr-bench-data-") as tmp:
        data = write_data(Path(tmp))
        with BenchServer(("udp",), routr_spec(data)) as server:
            callee = Callee(server)
            latency = run_step(server, callee, 200, rtt=True)
            rows.append(
                f"calls udp | 200 calls/s, INVITE->200 at the caller | "
                f"p50 {latency.percentile(50):.2f} ms | p99 {latency.percentile(99):.2f} ms | "
                f"{len(latency.latencies_ms)} samples, ~4 ms ticks | "
                f"server CPU {latency.server_cpu:.0%} | {latency.verdict}"
            )
            best = 0.0
            for rate in rates or RATES:
                step = run_step(server, callee, rate)
                rows.append(
                    f"calls udp | asked {rate}/s | achieved {step.achieved:,.0f}/s | "
                    f"server CPU {step.server_cpu:.0%} | {step.verdict}"
                )
                if not step.ok:
                    break
                best = max(best, step.achieved)
            rows.append(f"calls udp | highest rate with no failed call | {best:,.0f}/s")
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
