"""``routr_log_lines_suppressed``: the lines held back by the SIP core and the transports."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support.api import wait_until
from support.server import RoutrProcess

# No Content-Length: over a stream the framer cannot tell where the message ends.
UNFRAMED = (
    b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKx\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: unframed\r\n"
    b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n"
)


def suppressed(proc: RoutrProcess) -> float:
    text = httpx.get(f"{proc.api}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "routr_log_lines_suppressed":
            return float(family.samples[0].value)
    raise AssertionError("routr_log_lines_suppressed is missing")


def test_framing_closes_of_the_transports_are_counted_when_held_back(tmp_path: Path) -> None:
    proc = RoutrProcess(tmp_path, ("tcp",)).start()
    try:
        assert suppressed(proc) == 0
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", proc.ports["tcp"]), timeout=5) as c:
                c.sendall(UNFRAMED)
                assert c.recv(100) == b""  # closed by routr
        # one line for the first close, the other four held back for the next line
        wait_until(lambda: suppressed(proc) >= 4, timeout=10)
    finally:
        assert proc.stop() == 0
