"""SIPp, a real third-party SIP peer, sends OPTIONS over UDP and TCP."""

from __future__ import annotations

import pytest
from support.sipp import run_sipp


@pytest.mark.sipp
@pytest.mark.parametrize(("protocol", "mode"), [("udp", "u1"), ("tcp", "t1")])
def test_sipp_options(routr, tmp_path, protocol, mode):
    result = run_sipp(
        "options.xml",
        f"127.0.0.1:{routr.ports[protocol]}",
        calls=50,
        rate=100,
        transport=mode,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
