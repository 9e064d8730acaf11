"""Enumeration resistance over real sockets (issue 17): a scanner that hides its User-Agent
learns nothing. Our own scanner sends REGISTER, INVITE, OPTIONS and MESSAGE for extensions
1001..1100 (a few exist) at a domain we serve and at one we do not, from an untrusted
loopback address, and every answer has the same shape; then password guessing is banned per
address, and from many addresses locked per AOR while the real user keeps registering."""

from __future__ import annotations

import re
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from registrar_kit import DOMAIN, Registration, build, challenges, final, hostport, running
from support.data import agent, domain, write_resources
from support.server import RoutrProcess
from support.sip import UdpClient

from routr.sip.digest import make_credentials
from routr.sip.message import Response

SCANNER_IP = "127.0.0.9"  # 127.0.0.1 is trusted by default, and trusted sources are not banned
NEUTRAL_UA = "Linphone/5.2.0 (belle-sip/5.2.0)"  # what a scanner that hides would claim
EXTENSIONS = [str(n) for n in range(1001, 1101)]
EXISTING = {"1001": "1234", "1002": "s3cret", "1042": "pw1042", "1077": "pw1077"}
FOREIGN = "nowhere.example"
METHODS = ("REGISTER", "INVITE", "OPTIONS", "MESSAGE")


def data(folder: Path) -> Path:
    agents = (agent(user, password, [DOMAIN]) for user, password in EXISTING.items())
    return write_resources(folder, domain(DOMAIN), *agents)


class Scanner:
    """Requests like svwar's (From = To = the extension, Request-URI at the domain), with a
    User-Agent that names no scanner; the answer of each, and how long it took."""

    def __init__(self, client: UdpClient) -> None:
        self.client = client

    def probe(
        self, method: str, ext: str, host: str, *, from_host: str | None = None,
        authorization: tuple[str, str] | None = None, timeout: float = 5.0,
        to: str | None = None,
    ) -> tuple[Response, float]:  # fmt: skip
        """``method`` from ``ext`` to ``to`` (else ``ext`` itself, as svwar does)."""
        ruri = f"sip:{host}" if method == "REGISTER" else f"sip:{to or ext}@{host}"
        headers = [("User-Agent", NEUTRAL_UA)]
        if authorization is not None:
            headers.append(authorization)
        raw = build(method, ruri, via=f"SIP/2.0/UDP {hostport(*self.client.local)}",
                    from_uri=f"sip:{ext}@{from_host or host}",
                    to_uri=f"sip:{ext}@{host}" if method == "REGISTER" else ruri,
                    contacts=[f"<sip:{ext}@{hostport(*self.client.local)}>"], headers=headers,
                    body="hello" if method == "MESSAGE" else "")  # fmt: skip
        started = time.perf_counter()
        self.client.send(raw)
        response = final(self.client, timeout)
        elapsed = time.perf_counter() - started
        if method == "INVITE":
            self._ack(raw, response)
        return response, elapsed

    def _ack(self, invite: bytes, response: Response) -> None:
        """ACK the INVITE's failure (§17.1.1.3), so the server transaction stops resending."""
        head = invite.decode().split("\r\n")
        keep = {h.split(":", 1)[0].lower(): h for h in head[1:] if ":" in h}
        ruri = head[0].split(" ")[1]
        lines = [f"ACK {ruri} SIP/2.0", keep["via"], "Max-Forwards: 70", keep["from"],
                 f"To: {response.get('to')}", keep["call-id"],
                 f"CSeq: {response.cseq.number} ACK", "Content-Length: 0"]  # fmt: skip
        self.client.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def guess(self, method: str, ext: str, host: str, first: Response, password: str,
              **kw: Any) -> tuple[Response, float]:  # fmt: skip
        """Answer ``first``'s challenge with ``password``."""
        key = "www-authenticate" if first.status == 401 else "proxy-authenticate"
        challenge = challenges(first, key)[0]
        uri = f"sip:{host}" if method == "REGISTER" else f"sip:{kw.get('to') or ext}@{host}"
        creds = make_credentials(challenge, method, uri, ext, password, uuid.uuid4().hex[:8])
        name = "Authorization" if key == "www-authenticate" else "Proxy-Authorization"
        return self.probe(method, ext, host, authorization=(name, creds), **kw)


def shape(response: Response, host: str) -> tuple[Any, ...]:
    """Everything a scanner can read of an answer but its nonce, tags and echoed headers;
    the realm as "the request's domain" or not."""
    offered = []
    for key in ("www-authenticate", "proxy-authenticate"):
        for c in challenges(response, key):
            offered.append((key, c.realm == host, c.algorithm, c.qop, c.stale, c.opaque))
    return (response.status, response.reason, tuple(k for k, _, _ in response.headers),
            response.get("server"), tuple(offered), response.body)  # fmt: skip


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutrProcess]:
    # No bans in the way of the scan itself: what it learns is the question here.
    security = {"floodBan": {"requests": 100_000, "seconds": 1, "banSeconds": 300},
                "authFailureBan": {"failures": 100_000, "seconds": 600, "banSeconds": 900,
                                   "perAor": {"failures": 100_000}}}  # fmt: skip
    tmp = tmp_path_factory.mktemp("enumeration")
    with running(tmp, ("udp",), {"security": security}, data=data(tmp / "data")) as proc:
        yield proc


@pytest.mark.parametrize("method", METHODS)
def test_a_scan_learns_nothing_of_users_or_domains(scanned: RoutrProcess, method: str) -> None:
    with UdpClient((scanned.host, scanned.ports["udp"]), bind=SCANNER_IP) as client:
        scanner = Scanner(client)
        answers: dict[tuple[Any, ...], list[str]] = {}
        wrong: dict[tuple[Any, ...], list[str]] = {}
        times: dict[bool, list[float]] = {True: [], False: []}
        for host in (DOMAIN, FOREIGN):
            for ext in EXTENSIONS:
                response, elapsed = scanner.probe(method, ext, host)
                answers.setdefault(shape(response, host), []).append(f"{ext}@{host}")
                times[ext in EXISTING and host == DOMAIN].append(elapsed)
                if response.status in (401, 407):
                    again, _ = scanner.guess(method, ext, host, response, "guess")
                    wrong.setdefault(shape(again, host), []).append(f"{ext}@{host}")
        # One answer for all 200 targets, existing or not, at our domain or not ...
        assert len(answers) == 1, {k: v[:3] for k, v in answers.items()}
        [(status, *_)] = answers
        assert status == (401 if method == "REGISTER" else 407)
        # ... and one answer to a wrong password, whether the user exists or not.
        assert len(wrong) == 1 and set(wrong) == set(answers), list(wrong)
        # The same timing class: no known-user path does work (a lookup, a digest) that an
        # unknown one skips. Loose bounds: the machine is shared.
        known, unknown = (statistics.median(times[k]) for k in (True, False))
        assert known < unknown * 3 + 0.005 and unknown < known * 3 + 0.005, (known, unknown)


def test_a_registered_user_is_reached_by_inbound_messages_but_not_probed_by_options(
    scanned: RoutrProcess,
) -> None:
    """The one thing a stranger can tell: a request that is delivered is answered by the
    callee. OPTIONS is never relayed for a stranger; INVITE and MESSAGE are (a call from
    outside to a local AOR, as the routing table allows)."""
    server = (scanned.host, scanned.ports["udp"])
    with UdpClient(server) as phone, UdpClient(server, bind=SCANNER_IP) as client:
        reg = Registration(phone, "1042", "pw1042")
        assert reg.send([f"<sip:1042@{hostport(*phone.local)}>"], expires=120).status == 200
        scanner = Scanner(client)
        registered, _ = scanner.probe("OPTIONS", "1042", DOMAIN, from_host=FOREIGN)
        unknown, _ = scanner.probe("OPTIONS", "1099", DOMAIN, from_host=FOREIGN)
        assert registered.status == 407 and shape(registered, FOREIGN) == shape(unknown, FOREIGN)
        with pytest.raises(TimeoutError):
            phone.recv(0.3)
        assert reg.send([f"<sip:1042@{hostport(*phone.local)}>"], expires=0).status == 200


# -- password guessing ----------------------------------------------------------------------


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RoutrProcess]:
    security = {"floodBan": {"requests": 100_000, "seconds": 1, "banSeconds": 300},
                "authFailureBan": {"failures": 5, "seconds": 600, "banSeconds": 900,
                                   "perAor": {"failures": 20, "seconds": 600,
                                              "lockSeconds": 900}}}  # fmt: skip
    with running(tmp_path, ("udp",), {"security": security}, data=data(tmp_path / "data")) as p:
        yield p


def metric(proc: RoutrProcess, name: str) -> float:
    text = httpx.get(f"{proc.api}/metrics", timeout=5).text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, f"no {name}"
    return float(found.group(1))


def test_guessing_from_one_address_is_banned(guarded: RoutrProcess) -> None:
    with UdpClient((guarded.host, guarded.ports["udp"]), bind=SCANNER_IP) as client:
        scanner = Scanner(client)
        for i in range(5):
            first, _ = scanner.probe("REGISTER", "1001", DOMAIN)
            assert scanner.guess("REGISTER", "1001", DOMAIN, first, f"guess{i}")[0].status == 401
        # The next packet finds the count over the limit: dropped, and the source banned.
        with pytest.raises(TimeoutError):
            scanner.probe("REGISTER", "1001", DOMAIN, timeout=1.0)  # not even a challenge
        guarded.wait_for(f"security.banned {SCANNER_IP}")
        with pytest.raises(TimeoutError):
            scanner.probe("OPTIONS", "1001", DOMAIN, timeout=1.0)


def test_guessing_from_many_addresses_locks_the_aor_while_its_phone_registers(
    guarded: RoutrProcess,
) -> None:
    server = (guarded.host, guarded.ports["udp"])
    # The real user, at an untrusted address of its own: admitted through the lock by its
    # binding.
    with UdpClient(server, bind="127.0.0.5") as phone:
        contact = [f"<sip:1001@{hostport(*phone.local)}>"]
        reg = Registration(phone, "1001", "1234")
        assert reg.send(contact, expires=300).status == 200
        for n, last in enumerate(range(10, 41)):  # 31 addresses, one guess each
            with UdpClient(server, bind=f"127.0.0.{last}") as client:
                scanner = Scanner(client)
                first, _ = scanner.probe("REGISTER", "1001", DOMAIN)
                assert first.status == 401, last
                answer, _ = scanner.guess("REGISTER", "1001", DOMAIN, first, f"guess{last}")
                assert answer.status == 401
            if n % 5 == 0:
                assert reg.send(contact, expires=300).status == 200  # refreshing all along
        guarded.wait_for("sip:1001@sip.local locked for 900 s")
        assert metric(guarded, "routr_aor_locks_total") == 1
        assert metric(guarded, "routr_aors_locked") == 1
        # A new address with the right password: the answer of a wrong one.
        with UdpClient(server, bind="127.0.0.41") as client:
            scanner = Scanner(client)
            first, _ = scanner.probe("REGISTER", "1001", DOMAIN)
            wrong, _ = scanner.guess("REGISTER", "1001", DOMAIN, first, "nope")
            right, _ = scanner.guess("REGISTER", "1001", DOMAIN, first, "1234")
            assert right.status == 401 and shape(right, DOMAIN) == shape(wrong, DOMAIN)
            # Another AOR is not locked.
            other, _ = scanner.probe("REGISTER", "1002", DOMAIN)
            assert scanner.guess("REGISTER", "1002", DOMAIN, other, "s3cret")[0].status == 200
        assert metric(guarded, "routr_aor_lock_refusals_total") >= 1
        # The phone keeps registering, and its requests keep being authenticated: as 1001
        # it reaches the routing table (1077 is not registered: 480) ...
        assert reg.send(contact, expires=300).status == 200
        as_phone = Scanner(phone)
        first, _ = as_phone.probe("MESSAGE", "1001", DOMAIN, to="1077")
        assert first.status == 407
        assert as_phone.guess("MESSAGE", "1001", DOMAIN, first, "1234", to="1077")[0].status == 480
        # ... where a new address with the same password is challenged again.
        with UdpClient(server, bind="127.0.0.42") as client:
            other = Scanner(client)
            first, _ = other.probe("MESSAGE", "1001", DOMAIN, to="1077")
            assert other.guess("MESSAGE", "1001", DOMAIN, first, "1234", to="1077")[0].status == 407
        assert reg.send(contact, expires=0).status == 200
    assert len([line for line in guarded.lines if "locked for" in line]) == 1  # once per lock
