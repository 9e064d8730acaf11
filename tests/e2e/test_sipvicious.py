"""sipvicious (Debian ``sipvicious``) against the test server on loopback (issue 17): svmap,
svwar and svcrack find nothing and get banned when they scan on; with their User-Agent
changed to a phone's (the same tools, run through a small launcher written here), svwar
still finds no extension and svcrack is banned for its failures before it reaches the
password, while the real user keeps registering from its own address.

sipvicious 0.3.3 binds only svmap to ``-b``; svwar and svcrack send from 127.0.0.1 whatever
they are told, so these servers trust no network (``trusted: []``) and can ban 127.0.0.1.

Each tool, unanswered, sends one datagram and gives up. Over UDP one datagram with a
scanner's User-Agent is dropped but bans nothing (anyone can forge it in a Gateway's name);
``SCANNER_HITS`` within a minute do, so the test goes on scanning from the tool's address.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from registrar_kit import Registration, build, hostport, running
from support.binaries import free_port, missing
from support.server import RoutrProcess
from support.sip import UdpClient

from routr.core.guard import SCANNER_HITS

PHONE_UA = "Linphone/5.2.0 (belle-sip/5.2.0)"
#: Nothing trusted; floods are not what these tests are about (a scan of 11 numbers is
#: far below the default anyway); password guessing keeps its default of 10 failures.
SPEC = {"security": {"trusted": []}}

#: Runs a sipvicious tool with another User-Agent: its one request builder takes the
#: User-Agent as a default argument, replaced here before the tool's own script runs.
DISGUISE = """\
import os, runpy, sys
user_agent, tool, *args = sys.argv[1:]
sys.path.insert(0, os.path.dirname(tool))
from sipvicious.libs import svhelper
build = svhelper.makeRequest
build.__defaults__ = tuple(user_agent if d == "friendly-scanner" else d
                           for d in build.__defaults__)
sys.argv = [tool, *args]
runpy.run_path(tool, run_name="__main__")
"""


def tool(name: str) -> str:
    """The real path of a sipvicious tool (``svwar`` or ``sipvicious_svwar``)."""
    for candidate in (name, f"sipvicious_{name}"):
        path = shutil.which(candidate)
        if path is not None:
            return os.path.realpath(path)
    missing(f"{name} is not installed (apt-get install sipvicious)")
    raise AssertionError("unreachable")


def interpreter(path: str) -> str:
    with open(path, encoding="utf-8") as script:
        first = script.readline()
    return first[2:].strip().split()[0] if first.startswith("#!") else sys.executable


Result = subprocess.CompletedProcess[str]
Run = Callable[..., Result]


@pytest.fixture
def sipvicious(tmp_path: Path) -> Run:
    """``run(name, *args, user_agent=None)``: the tool's result (bounded in time)."""
    home = tmp_path / "home"  # svwar and svcrack keep their sessions in ~/.sipvicious
    home.mkdir()
    launcher = tmp_path / "disguise.py"
    launcher.write_text(DISGUISE)
    paths = {name: tool(name) for name in ("svmap", "svwar", "svcrack")}

    def run(name: str, *args: str, user_agent: str | None = None) -> Result:
        path = paths[name]
        cmd = [path, *args]
        if user_agent is not None:
            cmd = [interpreter(path), str(launcher), user_agent, path, *args]
        env = {**os.environ, "HOME": str(home)}
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120,
                              stdin=subprocess.DEVNULL)  # fmt: skip

    return run


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RoutrProcess]:
    with running(tmp_path / "routr", ("udp",), SPEC) as proc:
        yield proc


def found_nothing(result: Result) -> bool:
    return result.returncode == 0 and "found nothing" in result.stderr and "|" not in result.stdout


def local_port() -> str:
    # svwar and svcrack try 5060 first, and on from there: give each a free port.
    return str(free_port())


def scan(server: RoutrProcess, *extra: str) -> list[str]:
    return ["-P", local_port(), "-p", str(server.ports["udp"]), *extra, "127.0.0.1"]


@pytest.mark.parametrize(
    ("name", "source", "args"),
    [
        ("svmap", "127.0.0.9", ("-b", "127.0.0.9")),
        ("svwar", "127.0.0.1", ("-e1000-1010",)),
        ("svcrack", "127.0.0.1", ("-u1001", "-r1230-1240")),
    ],
)
def test_sipvicious_finds_nothing_and_is_banned(
    sipvicious: Run, server: RoutrProcess, name: str, source: str, args: tuple[str, ...]
) -> None:
    if name == "svmap":
        result = sipvicious(name, *args, "-p", str(server.ports["udp"]), "127.0.0.1")
    else:
        result = sipvicious(name, *scan(server, *args))
    assert found_nothing(result), (result.stdout, result.stderr)
    with UdpClient((server.host, server.ports["udp"]), bind=source) as client:
        reg = Registration(client, "1001", "1234")
        contact = [f"<sip:1001@{hostport(*client.local)}>"]
        # The tool's one datagram was dropped, its source not banned: a phone there is answered.
        assert client.request(reg.request(contact), timeout=5.0).status == 401
        assert not any("security.banned" in line for line in server.lines)
        for _ in range(SCANNER_HITS - 1):  # the scan goes on: banned
            client.send(scanner_options(client))
        server.wait_for(f"security.banned {source} for 300 s: scanner")
        # The ban outlives the scan: the next request from there, of anyone, is dropped too.
        with pytest.raises(TimeoutError):
            client.request(reg.request([f"<sip:1001@{hostport(*client.local)}>"]), timeout=1.0)


def scanner_options(client: UdpClient) -> bytes:
    return build("OPTIONS", "sip:100@127.0.0.1", via=f"SIP/2.0/UDP {hostport(*client.local)}",
                 from_uri="sip:100@127.0.0.1", to_uri="sip:100@127.0.0.1",
                 headers=[("User-Agent", "friendly-scanner")])  # fmt: skip


@pytest.mark.parametrize("method", ["REGISTER", "INVITE", "OPTIONS"])
@pytest.mark.parametrize("domain", ["sip.local", None])  # ours, and the address as svwar puts it
def test_svwar_with_a_phone_user_agent_finds_no_extension(
    sipvicious: Run, server: RoutrProcess, method: str, domain: str | None
) -> None:
    # 1001..1003 exist (registrar_kit's standard data) and lie inside the range.
    args = ["-e1000-1010", "-m", method, "--force", *(["--domain", domain] if domain else [])]
    result = sipvicious("svwar", *scan(server, *args), user_agent=PHONE_UA)
    assert found_nothing(result), (result.stdout, result.stderr)
    assert not any("security.banned" in line for line in server.lines)  # answered, not banned


def test_svcrack_with_a_phone_user_agent_is_banned_before_the_password(
    sipvicious: Run, server: RoutrProcess
) -> None:
    registered = (server.host, server.ports["udp"])
    with UdpClient(registered, bind="127.0.0.5") as phone:
        contact = [f"<sip:1001@{hostport(*phone.local)}>"]
        reg = Registration(phone, "1001", "1234")
        assert reg.send(contact, expires=300).status == 200
        # 1234 is the 35th guess; the 10th failure bans the address.
        args = ["-u1001", "--domain", "sip.local", "-r1200-1240"]
        result = sipvicious("svcrack", *scan(server, *args), user_agent=PHONE_UA)
        assert found_nothing(result), (result.stdout, result.stderr)
        server.wait_for("security.banned 127.0.0.1 for 900 s: authentication failures")
        # The real user, from its own address, is not affected.
        assert reg.send(contact, expires=300).status == 200
        assert reg.send(contact, expires=0).status == 200
