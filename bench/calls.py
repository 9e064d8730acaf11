"""Calls through the proxy: SIPp UAC -> routr -> SIPp UAS over UDP, zero hold time.

Each call is INVITE/100/180/200/ACK/BYE/200 with recordRoute on (ACK and BYE come back
through routr too): per call routr handles 2 requests with their transactions plus an ACK,
8 messages in and 8 out. Requests are not authenticated (``authenticateRequests: false``):
the digest cost is measured by the REGISTER benchmark.

Two figures: the highest rate of a ramp with zero failed calls (server CPU beside it), and
the INVITE->200 time seen by the caller at 200 calls/s (SIPp's response time 1, from
``-trace_rtt``; it includes both SIPp processes and the loopback, so it bounds routr's share
from above). SIPp stamps times with its scheduler tick: values come in steps of about 4 ms
here, so a p50 of 0 means "under one tick".
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.server import BenchServer
from routr.sip.digest import make_credentials, pick_challenge
from routr.sip.message import Response, parse_message

SCENARIOS = Path(__file__).resolve().parents[1] / "tests" / "sipp"
DOMAIN = "sip.local"
SECRET = "bench-secret"
RATES = [200, 400, 500, 600, 700, 800, 1000, 1200]
SECONDS = 5.0


@dataclass
class Step:
    rate: int
    calls: int
    ok: bool
    seconds: float
    server_cpu: float  # fraction of one core
    latencies_ms: list[float] = field(default_factory=list)
    detail: str = ""

    @property
    def achieved(self) -> float:
        return self.calls / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


def write_data(folder: Path) -> Path:
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "domains.yml").write_text(
        "- apiVersion: v1beta1\n  kind: Domain\n  metadata: {name: Bench}\n"
        f"  spec: {{context: {{domainUri: {DOMAIN}}}}}\n"
    )
    agents = "".join(
        f"- apiVersion: v1beta1\n  kind: Agent\n  metadata: {{name: Agent {u}}}\n"
        f"  spec: {{credentials: {{username: '{u}', secret: {SECRET}}}, domains: [{DOMAIN}]}}\n"
        for u in ("1001", "1002")
    )
    (data / "agents.yml").write_text(agents)
    return data


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def register(server_port: int, contact_port: int) -> None:
    """Bind sip:1002@sip.local to the UAS (from a socket whose Via is its source)."""
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
                    f"Contact: <sip:1002@127.0.0.1:{contact_port}>\r\nExpires: 3600\r\n"
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


def run_step(server: BenchServer, uas_port: int, rate: int, *, rtt: bool = False) -> Step:
    calls = int(rate * SECONDS)
    limit = int(SECONDS * 3 + 10)
    loops = ["-max_recv_loops", "10000", "-max_sched_loops", "10000"]
    with tempfile.TemporaryDirectory(prefix="routr-bench-calls-") as tmp:
        uas = subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / "proxy_uas.xml"), "-t", "u1", "-i", "127.0.0.1",
             "-p", str(uas_port), "-m", str(calls), "-nostdin", "-timeout", f"{limit + 5}s",
             "-timeout_error", "-default_behaviors", "all,-abortunexp", *loops],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(0.3)  # SIPp has no readiness signal; a late UAS shows up as failed calls
        extra = ["-trace_rtt", "-rtt_freq", "1"] if rtt else []
        cmd = ["sipp", f"127.0.0.1:{server.ports['udp']}", "-sf",
               str(SCENARIOS / "proxy_uac.xml"), "-m", str(calls), "-r", str(rate),
               "-t", "u1", "-i", "127.0.0.1", "-p", "0", "-nostdin", "-timeout", f"{limit}s",
               "-timeout_error", *loops, *extra]  # fmt: skip
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        uac = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - t0
        cpu = (server.cpu_seconds() - cpu0) / elapsed
        try:
            uas.wait(limit + 10)
        except subprocess.TimeoutExpired:
            uas.kill()
            uas.wait()
        latencies: list[float] = []
        for path in Path(tmp).glob("*_rtt.csv"):
            for line in path.read_text().splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 2:
                    try:
                        latencies.append(float(parts[1]))
                    except ValueError:
                        continue
    ok = uac.returncode == 0 and uas.returncode == 0
    detail = "" if ok else (uac.stderr.strip().splitlines() or ["?"])[-1]
    return Step(rate, calls, ok, elapsed, cpu, latencies, detail)


def main(rates: list[int] | None = None) -> list[str]:
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="routr-bench-data-") as tmp:
        data = write_data(Path(tmp))
        spec = {
            "recordRoute": True,
            "security": {"authenticateRequests": False},
            "dataSource": {"provider": "files_data_provider", "parameters": {"path": str(data)}},
        }
        with BenchServer(("udp",), spec) as server:
            uas_port = free_udp_port()
            register(server.ports["udp"], uas_port)
            latency = run_step(server, uas_port, 200, rtt=True)
            rows.append(
                f"calls udp | 200 calls/s, INVITE->200 at the caller | "
                f"p50 {latency.percentile(50):.2f} ms | p99 {latency.percentile(99):.2f} ms | "
                f"{len(latency.latencies_ms)} samples, ~4 ms ticks | "
                f"server CPU {latency.server_cpu:.0%} | "
                f"{'ok' if latency.ok else 'FAILED ' + latency.detail}"
            )
            best = 0.0
            for rate in rates or RATES:
                step = run_step(server, uas_port, rate)
                state = "ok" if step.ok else f"FAILED ({step.detail})"
                rows.append(
                    f"calls udp | asked {rate}/s | achieved {step.achieved:,.0f}/s | "
                    f"server CPU {step.server_cpu:.0%} | {state}"
                )
                if not step.ok:
                    break
                best = max(best, step.achieved)
            rows.append(f"calls udp | highest rate with no failed call | {best:,.0f}/s")
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
