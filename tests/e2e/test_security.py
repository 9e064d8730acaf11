"""Security end to end (issue 6): the global and domain ACLs (IPv4 and IPv6), 407 challenges
of Agents' requests, and no open relay -- the real server over real sockets."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from registrar_kit import (
    DOMAIN,
    Registration,
    UdpClient,
    answer,
    build,
    challenges,
    expect_request,
    final,
    hostport,
    message_from_outside,
    running,
    standard_data,
)
from support.server import RoutrProcess

from routr.sip.digest import make_credentials
from routr.sip.message import Request, Response, parse_message


def udp(proc: RoutrProcess, bind: str = "127.0.0.1") -> UdpClient:
    return UdpClient((proc.host, proc.ports["udp"]), bind=bind)


def options(client: UdpClient) -> Response:
    return client.request(
        build(
            "OPTIONS",
            f"sip:{hostport(*client.server)}",
            via=f"SIP/2.0/UDP {hostport(*client.local)}",
            from_uri=f"sip:probe@{hostport(*client.local)}",
            to_uri=f"sip:{hostport(*client.server)}",
        )
    )


def register(client: UdpClient, user: str = "1001", password: str = "1234") -> Response:
    contact = f"<sip:{user}@{hostport(*client.local)}>"
    return Registration(client, user, password).send([contact], expires=600)


# -- global ACL -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("acl", "allowed", "denied"),
    [
        ({"deny": ["0.0.0.0/0"], "allow": ["127.0.0.2"]}, ["127.0.0.2"],
         ["127.0.0.1", "127.0.0.3"]),
        ({"deny": ["0.0.0.0/0"], "allow": ["127.0.0.0/30"]}, ["127.0.0.2", "127.0.0.3"],
         ["127.0.0.4"]),
        # The most specific rule wins: one address denied inside an allowed network.
        ({"allow": ["127.0.0.0/8"], "deny": ["127.0.0.3/32"]}, ["127.0.0.1"], ["127.0.0.3"]),
        ({"deny": ["127.0.0.0/255.255.255.0"]}, ["127.0.1.1"], ["127.0.0.1"]),
    ],
)  # fmt: skip
def test_global_acl(tmp_path, acl, allowed, denied):
    with running(tmp_path, spec={"accessControlList": acl}) as proc:
        for ip in allowed:
            with udp(proc, ip) as client:
                assert options(client).status == 200
                assert register(client).status == 200, ip
        for ip in denied:
            with udp(proc, ip) as client:
                refused = options(client)
                assert (refused.status, refused.reason) == (403, "Forbidden By ACL"), ip
                assert register(client).status == 403
        assert proc.lines  # the server lives on


def test_global_acl_denied_source_cannot_reach_a_registered_user(tmp_path):
    spec = {"accessControlList": {"deny": ["127.0.0.9"]}}
    with running(tmp_path, spec=spec) as proc, udp(proc) as phone:
        assert register(phone).status == 200
        outsider = UdpClient((proc.host, proc.ports["udp"]), bind="127.0.0.9")
        with outsider:
            outsider.send(_message(outsider, f"sip:1001@{DOMAIN}"))
            assert final(outsider).status == 403
        with pytest.raises(TimeoutError):
            phone.recv(0.5)  # nothing was forwarded (the 403 came first, so this is short)


def _message(client: UdpClient, ruri: str, from_uri: str = "sip:stranger@outside.example") -> bytes:
    return build("MESSAGE", ruri, via=f"SIP/2.0/UDP {hostport(*client.local)}",
                 from_uri=from_uri, to_uri=ruri, body="hello")  # fmt: skip


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6(), reason="this machine has no IPv6 loopback (::1)")
@pytest.mark.parametrize(
    ("acl", "status"),
    [
        ({"deny": ["::/0"], "allow": ["::1"]}, 200),
        ({"deny": ["::/0"], "allow": ["::1/128"]}, 200),
        ({"deny": ["::1/128"]}, 403),
        ({"deny": ["::/0"]}, 403),
        ({"deny": ["0.0.0.0/0"]}, 200),  # IPv4 rules say nothing about IPv6 sources
        ({"deny": ["::/0"], "allow": ["127.0.0.1"]}, 403),
    ],
)
def test_global_acl_over_ipv6(tmp_path, acl, status):
    with (
        running(tmp_path, spec={"accessControlList": acl}, host="::1") as proc,
        UdpClient(("::1", proc.ports["udp"]), bind="::1") as client,
    ):
        assert options(client).status == status
        assert register(client).status == status


# -- domain ACL -----------------------------------------------------------------------------


def test_domain_acl_applies_to_requests_into_the_domain(tmp_path):
    data = standard_data(tmp_path / "data",
                         domain_acl={"deny": ["0.0.0.0/0"], "allow": ["127.0.0.2"]})  # fmt: skip
    with running(tmp_path, data=data) as proc, udp(proc, bind="127.0.0.2") as phone:
        # A REGISTER is a request into the domain too: refused from a denied source with the
        # 401 of a wrong password, right password or not (a 403 would tell it was right).
        with udp(proc) as outsider:
            refused = register(outsider)
            wrong = register(outsider, password="nope")
            assert (refused.status, refused.reason) == (wrong.status, wrong.reason)
            assert refused.status == 401
        assert register(phone).status == 200
        with UdpClient((proc.host, proc.ports["udp"]), bind="127.0.0.1") as denied:
            # A stranger is refused as at a domain we do not serve: it learns nothing.
            denied.send(_message(denied, f"sip:1001@{DOMAIN}"))
            assert final(denied).status == 407
            with pytest.raises(TimeoutError):
                phone.recv(0.3)
        with UdpClient((proc.host, proc.ports["udp"]), bind="127.0.0.2") as allowed:
            allowed.send(_message(allowed, f"sip:1001@{DOMAIN}"))
            answer(phone, expect_request(phone, "MESSAGE"))
            assert final(allowed).status == 200


# -- 407 for Agents and for strangers ------------------------------------------------------


@pytest.fixture
def routr(tmp_path: Path) -> Iterator[RoutrProcess]:
    with running(tmp_path) as proc:
        yield proc


class Call:
    """An INVITE transaction of ``user`` to ``callee``, built by hand so the test can ACK a
    failure and retry with Proxy-Authorization in the same dialog attempt."""

    def __init__(self, client: UdpClient, user: str, callee: str, domain: str = DOMAIN) -> None:
        self.client = client
        self.domain = domain
        self.user = user
        self.callee = callee
        self.call_id = f"{uuid.uuid4().hex}@e2e"
        self.from_tag = uuid.uuid4().hex[:8]
        self.cseq = 0
        self.sent: Request | None = None

    def send_invite(self, proxy_authorization: str | None = None) -> None:
        self.cseq += 1
        headers = [("Contact", f"<sip:{self.user}@{hostport(*self.client.local)}>")]
        if proxy_authorization:
            headers.append(("Proxy-Authorization", proxy_authorization))
        raw = build("INVITE", self.callee, via=f"SIP/2.0/UDP {hostport(*self.client.local)}",
                    from_uri=f"sip:{self.user}@{self.domain}", to_uri=self.callee,
                    call_id=self.call_id, cseq=self.cseq, headers=headers)  # fmt: skip
        # One From tag for every attempt, as a phone keeps it.
        raw = raw.replace(b";tag=f", f";tag={self.from_tag}x".encode(), 1)
        sent = parse_message(raw)
        assert isinstance(sent, Request)
        self.sent = sent
        self.client.send(raw)

    def final(self) -> Response:
        """The final response of the last INVITE, ACKed when it is a failure."""
        response = final(self.client)
        if response.status >= 300:
            self.ack(response)
        return response

    def invite(self, proxy_authorization: str | None = None) -> Response:
        self.send_invite(proxy_authorization)
        return self.final()

    def ack(self, response: Response) -> None:
        """ACK for a non-2xx final: same branch, To with the response's tag (§17.1.1.3)."""
        sent = self.sent
        assert sent is not None
        lines = [
            f"ACK {self.callee} SIP/2.0",
            f"Via: {sent.get('via')}",
            "Max-Forwards: 70",
            f"From: {sent.get('from')}",
            f"To: {response.get('to')}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} ACK",
            "Content-Length: 0",
        ]
        self.client.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def credentials(self, response: Response, password: str, user: str | None = None) -> str:
        challenge = challenges(response, "proxy-authenticate")[0]
        return make_credentials(challenge, "INVITE", self.callee, user or self.user, password,
                                uuid.uuid4().hex[:8])  # fmt: skip


def test_agent_invite_is_challenged_then_accepted_with_credentials(routr):
    with udp(routr) as callee, udp(routr) as caller:
        assert register(callee, "1002", "s3cret").status == 200
        call = Call(caller, "1001", f"sip:1002@{DOMAIN}")
        challenge = call.invite()
        assert challenge.status == 407
        offered = challenges(challenge, "proxy-authenticate")
        assert [c.algorithm.upper() for c in offered] == ["MD5"]
        assert offered[0].realm == DOMAIN
        # A wrong password is challenged again.
        assert call.invite(call.credentials(challenge, "wrong")).status == 407
        # The right one goes through, without the credentials (they were for us).
        call.send_invite(call.credentials(challenge, "1234"))
        invite = expect_request(callee, "INVITE")
        assert not invite.has("proxy-authorization"), invite.to_bytes()
        assert invite.call_id == call.call_id
        answer(callee, invite, 486)
        assert call.final().status == 486
        # The proxy ACKs the 486 to the callee itself (hop by hop, RFC 3261 §17.1.1.3).
        expect_request(callee, "ACK")


def test_unknown_user_of_a_local_domain_is_challenged_like_an_agent(routr):
    with udp(routr) as callee, udp(routr) as caller:
        assert register(callee, "1002", "s3cret").status == 200
        call = Call(caller, "7777", f"sip:1002@{DOMAIN}")
        challenge = call.invite()
        assert challenge.status == 407
        assert call.invite(call.credentials(challenge, "anything")).status == 407
        with pytest.raises(TimeoutError):
            expect_request(callee, "INVITE", timeout=0.3)


def test_stranger_invite_to_an_outside_domain_is_refused_with_a_challenge(routr):
    with udp(routr) as client:
        call = Call(client, "mallory", "sip:bob@elsewhere.example", domain="outside.example")
        # Neither from nor to anyone we know: relaying it would make us an open relay. The
        # refusal is the challenge any undelivered request of a stranger gets (realm: its
        # From host), so it does not tell which domains are ours.
        response = call.invite()
        assert response.status == 407
        assert {c.realm for c in challenges(response, "proxy-authenticate")} == {"outside.example"}
        assert call.invite(call.credentials(response, "guess")).status == 407


def test_agent_invite_to_an_outside_domain_without_egress_is_403(routr):
    with udp(routr) as client:
        call = Call(client, "1001", "sip:bob@elsewhere.example")
        challenge = call.invite()
        assert challenge.status == 407
        assert call.invite(call.credentials(challenge, "1234")).status == 403


def test_stranger_may_reach_a_local_user_without_credentials(routr):
    # Inbound to a local AOR is allowed (as in Kamailio's default configuration).
    with udp(routr) as phone:
        assert register(phone).status == 200
        with message_from_outside((routr.host, routr.ports["udp"]), f"sip:1001@{DOMAIN}") as s:
            answer(phone, expect_request(phone, "MESSAGE"))
            assert final(s).status == 200
