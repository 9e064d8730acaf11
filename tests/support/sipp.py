"""Run SIPp (Debian ``sip-tester``) scenarios against the server, bounded in count and time."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[1] / "sipp"


def sipp_binary() -> str:
    """The sipp path; skip (or, under CI, fail) when it is not installed."""
    path = shutil.which("sipp")
    if path is None:
        message = "SIPp is not installed (apt-get install sip-tester)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_sipp(
    scenario: str,
    target: str,
    *args: str,
    calls: int = 10,
    rate: int = 10,
    transport: str = "u1",
    timeout: float = 30,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one SIPp client to completion; SIPp exits 0 when every call succeeded."""
    cmd = [
        sipp_binary(), target, "-sf", str(SCENARIOS / scenario), "-m", str(calls), "-r",
        str(rate), "-t", transport, "-i", "127.0.0.1", "-p", "0", "-nostdin",
        "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err", *args,
    ]  # fmt: skip
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout + 15, cwd=cwd, check=False
    )
