"""Bans through the real server: floods, password guessing and scanners from 127.0.0.2."""

from __future__ import annotations

import pytest
from support.data import agent, domain, write_resources
from support.server import RoutrProcess
from support.sip import UdpClient, options, register

from routr.core.guard import SCANNER_HITS


@pytest.fixture
def guarded(tmp_path):
    data = write_resources(tmp_path / "data", domain("sip.local"),
                           agent("1001", "secret1", ["sip.local"]))  # fmt: skip
    security = {
        "floodBan": {"requests": 20, "seconds": 60, "banSeconds": 600},
        "authFailureBan": {"failures": 2, "seconds": 60, "banSeconds": 600},
    }
    spec = {"security": security}
    proc = RoutrProcess(tmp_path, ("udp",), spec, data=data).start()
    yield proc
    assert proc.stop() == 0
    proc.assert_no_tracebacks()


def _options(client: UdpClient, proc: RoutrProcess, **kw: str) -> bytes:
    return options(f"127.0.0.1:{proc.ports['udp']}", "UDP", client.local, **kw)


def test_scanner_is_dropped_unanswered_and_banned(guarded):
    with UdpClient(("127.0.0.1", guarded.ports["udp"])) as trusted:
        # From a trusted network: dropped, not banned. Handled in order, synchronously:
        # the next answer is the plain OPTIONS's.
        trusted.send(_options(trusted, guarded, extra="User-Agent: friendly-scanner\r\n"))
        answer = trusted.request(_options(trusted, guarded, call_id="plain"))
        assert answer.status == 200 and answer.call_id == "plain@test"
    with UdpClient(("127.0.0.1", guarded.ports["udp"]), bind="127.0.0.2") as c:
        # One datagram, which anyone could forge in 127.0.0.2's name, is dropped; the
        # address is not banned for it ...
        c.send(_options(c, guarded, extra="User-Agent: friendly-scanner\r\n"))
        answer = c.request(_options(c, guarded, call_id="after-one"))
        assert answer.status == 200 and answer.call_id == "after-one@test"
        # ... a scan that goes on is.
        for _ in range(SCANNER_HITS - 1):
            c.send(_options(c, guarded, extra="User-Agent: friendly-scanner\r\n"))
        guarded.wait_for("security.banned 127.0.0.2 for 600 s: scanner")
        with pytest.raises(TimeoutError):
            c.request(_options(c, guarded), timeout=1.0)  # its next request, scanner or not


def test_flood_is_banned(guarded):
    with UdpClient(("127.0.0.1", guarded.ports["udp"]), bind="127.0.0.2") as c:
        for _ in range(20):
            assert c.request(_options(c, guarded)).status == 200
        c.send(_options(c, guarded))
        guarded.wait_for("security.banned 127.0.0.2")
        with pytest.raises(TimeoutError):
            c.request(_options(c, guarded), timeout=1.0)
    with UdpClient(("127.0.0.1", guarded.ports["udp"])) as trusted:
        assert trusted.request(_options(trusted, guarded)).status == 200


def test_password_guessing_is_banned(guarded):
    with UdpClient(("127.0.0.1", guarded.ports["udp"]), bind="127.0.0.2") as c:
        contact = f"<sip:1001@{c.local[0]}:{c.local[1]}>"
        for _ in range(2):
            assert register(c, "1001", "sip.local", "wrong", contact).status == 401
        c.send(_options(c, guarded))
        guarded.wait_for("security.banned 127.0.0.2")
        with pytest.raises(TimeoutError):
            register(c, "1001", "sip.local", "secret1", contact)
