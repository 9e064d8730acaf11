"""Real SIP clients on routr's default security settings (issue 10, "real phones on the
defaults"): baresip phones register and call each other with RTP flowing, sipsak
registers, and a SIPp caller answers the proxy's 407. Nothing is configured for digest:
the default challenge (MD5 alone) is what these clients can answer.

Domain ``sip.local`` (it does not resolve: the clients are pointed at routr as their
outbound proxy). Everything stays on 127.0.0.1. A missing client binary skips its test,
or fails it with ``CI=true``.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from registrar_kit import answer, expect_request, final, message_from_outside
from support.baresip import Baresip, baresip_binary
from support.binaries import need_binary
from support.data import agent, domain, write_resources
from support.server import RoutrProcess
from support.sip import UdpClient, register
from support.sipp import SCENARIOS, run_sipp, sipp_binary

DOMAIN = "sip.local"
SECRETS = {"1001": "1001-pass", "1002": "1002-pass"}

Start = Callable[..., RoutrProcess]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A trustme CA (``caFile``) and a server certificate for 127.0.0.1 signed by it."""
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {
        "certFile": folder / "sip.pem",
        "keyFile": folder / "sip.key",
        "caFile": folder / "ca.pem",
    }
    for i, pem in enumerate(cert.cert_chain_pems):
        pem.write_to_path(str(paths["certFile"]), append=i > 0)
    cert.private_key_pem.write_to_path(str(paths["keyFile"]))
    ca.cert_pem.write_to_path(str(paths["caFile"]))
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start routr on the given transports; stopped and checked at teardown."""
    procs: list[RoutrProcess] = []
    data = write_resources(
        tmp_path / "data",
        domain(DOMAIN),
        *(agent(user, secret, [DOMAIN]) for user, secret in SECRETS.items()),
    )

    def factory(protocols: tuple[str, ...], spec: dict[str, Any] | None = None) -> RoutrProcess:
        workdir = tmp_path / "routr"
        workdir.mkdir()
        procs.append(RoutrProcess(workdir, protocols, spec, data=data).start())
        return procs[-1]

    yield factory
    for proc in procs:
        assert proc.stop() == 0
        proc.assert_no_tracebacks()


# -- baresip ----------------------------------------------------------------------------


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[Callable[..., Baresip]]:
    """baresip phones, always stopped (killed if need be) at teardown."""
    made: list[Baresip] = []

    def factory(user: str, transport: str, proxy: tuple[str, int], **kw: Any) -> Baresip:
        phone = Baresip(tmp_path / f"baresip-{user}", user, SECRETS[user], DOMAIN, transport,
                        proxy, **kw)  # fmt: skip
        made.append(phone)
        return phone.start()

    yield factory
    for phone in made:
        phone.stop()


@pytest.mark.baresip
@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_baresip_phones_register_and_call(start, phones, tls_files, transport):
    """Two baresip phones register, 1001 calls 1002 (auto-answer), RTP flows both ways for
    over a second, 1001 hangs up: the BYE and its 200 cross routr, both phones close."""
    baresip_binary()  # skip before starting anything
    # recordRoute so that ACK and BYE come through routr too; security stays default.
    spec: dict[str, Any] = {"recordRoute": True}
    if transport == "tls":
        spec["securityContext"] = {k: tls_files[k] for k in ("certFile", "keyFile")}
    routr = start((transport,), spec)
    proxy = ("127.0.0.1", routr.ports[transport])
    ca = Path(tls_files["caFile"]) if transport == "tls" else None
    callee = phones("1002", transport, proxy, ca_file=ca)
    caller = phones("1001", transport, proxy, ca_file=ca)
    for phone in (callee, caller):
        phone.registered()
        binding = routr.wait_for(f"endpoint.registered {phone.aor} ->")
        assert (f";transport={transport}" in binding) == (transport != "udp"), binding

    caller.command(f"dial sip:1002@{DOMAIN}")
    caller.wait_for(rf"Call established: sip:1002@{DOMAIN}")
    callee.wait_for(rf"Call established: sip:1001@{DOMAIN}")
    for phone in (caller, callee):
        # Printed on the first RTP packet this phone receives: one line per direction.
        phone.wait_for(r"stream: incoming rtp for 'audio' established")
    # Two seconds into the call on both status lines (their clock starts before the
    # audio does): over a second of 20 ms packets each way by then.
    for phone in (caller, callee):
        phone.wait_for(r"\[0:00:02\] audio=")
    caller.command("hangup")
    caller.wait_for(rf"Call with sip:1002@{DOMAIN}\S* terminated")
    # libre reports a BYE received as the session "closed: Connection reset by peer".
    callee.wait_for(r"session closed: Connection reset by peer")
    callee.wait_for(rf"Call with sip:1001@{DOMAIN}\S* terminated")
    caller.wait_for(r"^SIP/2\.0 200 OK\r\n(?:[^\r\n]+\r\n)*?CSeq: \d+ BYE\r\n")

    sent_1001, received_1001 = caller.rtp_packets()
    sent_1002, received_1002 = callee.rtp_packets()
    assert min(sent_1001, received_1001, sent_1002, received_1002) >= 25, (
        (sent_1001, received_1001),
        (sent_1002, received_1002),
    )
    assert received_1002 <= sent_1001 and received_1001 <= sent_1002
    # The BYE reached the callee from routr, and its 200 reached the caller from routr.
    byes = callee.from_proxy("BYE ")
    assert len(byes) == 1, [t.start_line for t in callee.trace()]
    assert byes[0].header("From") is not None and "sip:1001@" in byes[0].header("From")
    oks = [t for t in caller.from_proxy("SIP/2.0 200") if str(t.header("CSeq")).endswith("BYE")]
    assert len(oks) == 1, [t.start_line for t in caller.trace()]
    assert not caller.from_proxy("BYE "), "the callee did not hang up by itself"


# -- sipsak -----------------------------------------------------------------------------


def sipsak_register(
    routr: RoutrProcess, contact: str, password: str
) -> subprocess.CompletedProcess[str]:
    """``sipsak -U``: one REGISTER of ``contact`` for 1001, answering the 401 once.

    ``-u`` is needed: without it sipsak 0.9.8 answers here as username "1001@" (and is
    refused). ``-p``: sip.local does not resolve, the request goes to routr. ``-S``
    (symmetric): without it sipsak sends from another port than its Via names, so routr
    rightly takes it for a NAT'd phone and binds the source port, where nobody listens."""
    sipsak = need_binary("sipsak", "sipsak")
    cmd = [sipsak, "-U", "-C", contact, "-x", "300", "-u", "1001", "-a", password,
           "-p", "127.0.0.1", "-r", str(routr.ports["udp"]), "-H", "127.0.0.1", "-S", "-i", "-vv",
           "-s", f"sip:1001@{DOMAIN}"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.sipsak
def test_sipsak_registers_on_the_defaults(start):
    """sipsak answers the default challenge and exits 0; routr logs the binding and
    routes to it: a MESSAGE for the AOR reaches the registered contact."""
    need_binary("sipsak", "sipsak")
    routr = start(("udp",))
    with UdpClient(("127.0.0.1", routr.ports["udp"])) as phone:
        contact = f"sip:1001@127.0.0.1:{phone.local[1]}"
        result = sipsak_register(routr, contact, SECRETS["1001"])
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert "usrloc tests completed successful" in result.stdout
        line = routr.wait_for(f"endpoint.registered sip:1001@{DOMAIN} ->")
        assert contact in line
        with message_from_outside(("127.0.0.1", routr.ports["udp"]), f"sip:1001@{DOMAIN}") as s:
            answer(phone, expect_request(phone, "MESSAGE"))
            assert final(s).status == 200


@pytest.mark.sipsak
def test_sipsak_with_a_wrong_password_fails(start):
    """A wrong password: sipsak exits non-zero and nothing is bound."""
    need_binary("sipsak", "sipsak")
    routr = start(("udp",))
    result = sipsak_register(routr, "sip:1001@127.0.0.1:5999", "wrong")
    assert result.returncode != 0, result.stdout[-3000:]
    # sipsak gives up after answering once: routr challenged the answer again.
    assert "authorization failed" in result.stdout + result.stderr
    assert not any("endpoint.registered" in line for line in routr.lines)


# -- SIPp: a call that answers the proxy's challenge -----------------------------------


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.sipp
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_call_answers_the_proxy_challenge(start, tmp_path, transport):
    """SIPp UAC -> routr -> SIPp UAS, 5 calls: each INVITE gets a 407, is ACKed, sent again
    with Proxy-Authorization and completes (200/ACK/BYE/200 along the recorded route)."""
    calls = 5
    sipp_binary()
    routr = start(("udp", "tcp"), {"recordRoute": True})
    port = free_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
    mode = "u1" if transport == "udp" else "t1"
    uas_log, uac_log = tmp_path / "uas.log", tmp_path / "uac.log"
    uas = subprocess.Popen(
        [sipp_binary(), "-sf", str(SCENARIOS / "proxy_uas.xml"), "-t", mode, "-i", "127.0.0.1",
         "-p", str(port), "-m", str(calls), "-nostdin", "-timeout", "20s", "-timeout_error",
         "-default_behaviors", "all,-abortunexp", "-trace_msg", "-message_file", str(uas_log)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    uac: subprocess.CompletedProcess[str] | None = None
    try:
        # The callee's binding, from a socket whose Via is its source (no NAT rewrite).
        params = ";transport=tcp" if transport == "tcp" else ""
        with UdpClient(("127.0.0.1", routr.ports["udp"])) as client:
            response = register(client, "1002", DOMAIN, SECRETS["1002"],
                                f"<sip:1002@127.0.0.1:{port}{params}>")  # fmt: skip
        assert response.status == 200, response.to_bytes()
        users = tmp_path / "users.csv"
        users.write_text(
            f"SEQUENTIAL\n1001;[authentication username=1001 password={SECRETS['1001']}]\n"
        )
        uac = run_sipp("proxy_uac_auth.xml", f"127.0.0.1:{routr.ports[transport]}", "-inf",
                       str(users), "-trace_msg", "-message_file", str(uac_log), calls=calls,
                       rate=10, transport=mode, timeout=20, cwd=tmp_path)  # fmt: skip
    finally:
        if uac is None:
            uas.terminate()  # it would wait for calls that never come
        try:
            uas_out, _ = uas.communicate(timeout=35)
        except subprocess.TimeoutExpired:
            uas.kill()
            uas_out, _ = uas.communicate()
    assert uac is not None
    assert uac.returncode == 0, uac.stdout[-3000:] + uac.stderr[-2000:]
    assert uas.returncode == 0, uas_out[-3000:]
    received = uac_log.read_text(errors="replace")
    assert len(re.findall(r"^SIP/2\.0 407 ", received, flags=re.MULTILINE)) >= calls
    # Only the authenticated INVITEs reached the callee, their credentials consumed.
    blocks = re.split(r"\n(?=-{5,} )", uas_log.read_text(errors="replace"))
    invites = [b for b in blocks if "message received" in b and "\nINVITE sip:" in b]
    assert len(invites) == calls
    for invite in invites:
        assert re.search(r"^CSeq: 2 INVITE", invite, flags=re.MULTILINE), invite
        assert not re.search(r"^Proxy-Authorization:", invite, flags=re.M | re.I), invite
