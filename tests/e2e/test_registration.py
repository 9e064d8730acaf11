"""The registrar end to end (issue 6): the real server process, real sockets, real clocks.

Digest challenges and answers, contacts and expiry, and the flows a registration keeps
(NAT, TCP, WebSocket, a Redis location shared by two servers)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from registrar_kit import (
    DOMAIN,
    Registration,
    StreamClient,
    UdpClient,
    WsClient,
    answer,
    bound,
    challenges,
    expect_request,
    final,
    hostport,
    message_from_outside,
    nonce_issued_at,
    running,
    standard_data,
)
from support.server import RoutrProcess
from support.sipp import run_sipp

from routr.sip.message import Response

AOR_1001 = f"sip:1001@{DOMAIN}"


@pytest.fixture
def routr(tmp_path: Path) -> Iterator[RoutrProcess]:
    with running(tmp_path, spec={"registrar": {"minExpires": 60}}) as proc:
        yield proc


def udp(proc: RoutrProcess, bind: str = "127.0.0.1") -> UdpClient:
    return UdpClient((proc.host, proc.ports["udp"]), bind=bind)


def contact_of(client: UdpClient | StreamClient, user: str = "1001", transport: str = "") -> str:
    tp = f";transport={transport}" if transport else ""
    return f"<sip:{user}@{hostport(*client.local)}{tp}>"


# -- challenges and credentials -------------------------------------------------------------


def test_first_register_is_challenged_with_md5_on_the_defaults(routr):
    with udp(routr) as client:
        reg = Registration(client, "1001", "1234")
        response = client.request(reg.request([contact_of(client)]))
    assert response.status == 401
    (offered,) = challenges(response)
    assert offered.algorithm.upper() == "MD5"
    assert offered.realm == DOMAIN
    assert "auth" in offered.qop
    assert not offered.stale


SHA256_FIRST = {"security": {"digestAlgorithms": ["SHA-256", "MD5"]}}


def test_digest_algorithms_are_offered_in_the_configured_order(tmp_path):
    with running(tmp_path, spec=SHA256_FIRST) as proc, udp(proc) as client:
        reg = Registration(client, "1001", "1234")
        response = client.request(reg.request([contact_of(client)]))
    offered = challenges(response)
    assert [c.algorithm.upper() for c in offered] == ["SHA-256", "MD5"]
    assert offered[0].nonce == offered[1].nonce


def _registers(proc: RoutrProcess, algorithm: str) -> None:
    with udp(proc) as client:
        reg = Registration(client, "1001", "1234", algorithm=algorithm)
        response = reg.send([contact_of(client)], expires=600)
    assert response.status == 200, response.to_bytes()
    assert bound(response) == {f"sip:1001@{hostport(*client.local)}": 600}
    proc.wait_for(f"endpoint.registered {AOR_1001}")


def test_good_credentials_register(routr):
    _registers(routr, "MD5")


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_good_credentials_register_with_sha256_offered(tmp_path, algorithm):
    with running(tmp_path, spec=SHA256_FIRST) as proc:
        _registers(proc, algorithm)


def _refused(proc: RoutrProcess, user: str, password: str) -> Response:
    with udp(proc) as client:
        reg = Registration(client, user, password)
        response = reg.send([contact_of(client, user)])
    return response


def test_wrong_password_and_unknown_user_get_the_same_answer(routr):
    wrong = _refused(routr, "1001", "not-the-password")
    unknown = _refused(routr, "9999", "whatever")
    for response in (wrong, unknown):
        assert response.status == 401
        assert response.reason == wrong.reason
        assert [c.algorithm for c in challenges(response)] == ["MD5"]
        assert not any(c.stale for c in challenges(response))
        # Nothing but the nonce and the tags tells them apart.
        assert sorted(k for k, _, _ in response.headers) == sorted(k for k, _, _ in wrong.headers)
    assert "endpoint.registered" not in "\n".join(routr.lines)


def test_credentials_for_another_user_are_refused(routr):
    # 1002's good password does not register 1001's AOR.
    with udp(routr) as client:
        reg = Registration(client, "1001", "s3cret", auth_user="1002")
        response = reg.send([contact_of(client)])
    assert response.status == 403


def test_a_branch_reused_by_another_register_is_a_new_request(routr):
    # RFC 4475 §3.3.13: two REGISTERs from one sent-by share a branch but not Call-ID/CSeq.
    with udp(routr) as client:
        first = Registration(client, "1001", "1234").request([contact_of(client)])
        branch = first.split(b";branch=", 1)[1].split(b";", 1)[0]
        second = Registration(client, "1001", "1234").request([contact_of(client)])
        old = second.split(b";branch=", 1)[1].split(b";", 1)[0]
        second = second.replace(old, branch, 1)
        answers = [client.request(first), client.request(second)]
    assert [a.status for a in answers] == [401, 401]
    assert answers[0].call_id != answers[1].call_id


def test_replayed_nonce_count_is_refused(routr):
    with udp(routr) as client:
        reg = Registration(client, "1001", "1234")
        assert reg.send([contact_of(client)]).status == 200
        # The same nonce with the same nc once more (a replay, though with a new CSeq).
        replay = client.request(
            reg.request([contact_of(client)], authorization=reg.credentials(nc=reg.nc))
        )
        assert replay.status == 401
        # A real client counts on: the nonce still works with nc=2.
        again = client.request(
            reg.request([contact_of(client)], authorization=reg.credentials(nc=2))
        )
        assert again.status == 200


def test_stale_nonce_is_challenged_again_with_stale_true(tmp_path):
    lifetime = 1.0
    spec = {"security": {"nonceLifetime": lifetime}}
    with running(tmp_path, spec=spec) as proc, udp(proc) as client:
        reg = Registration(client, "1001", "1234")
        assert reg.send([contact_of(client)]).status == 200
        # Wait until the nonce is past its lifetime by the server's own stamp.
        expired_at = nonce_issued_at(reg.challenge.nonce) + lifetime
        while time.time() <= expired_at + 0.05:
            time.sleep(expired_at + 0.05 - time.time() + 0.01)
        response = client.request(reg.request([contact_of(client)],
                                              authorization=reg.credentials()))  # fmt: skip
        assert response.status == 401
        offered = challenges(response)
        assert offered and all(c.stale for c in offered)
        assert offered[0].nonce != reg.challenge.nonce
        # The fresh nonce works.
        reg.take_challenge(response)
        ok = client.request(reg.request([contact_of(client)], authorization=reg.credentials()))
        assert ok.status == 200


def test_unregister_needs_credentials_too(routr):
    with udp(routr) as client:
        reg = Registration(client, "1001", "1234")
        assert reg.send([contact_of(client)]).status == 200
        bare = client.request(Registration(client, "1001", "1234").request(["*"], expires=0))
        assert bare.status == 401
        assert reg.send([contact_of(client)], expires=0).status == 200


# -- contacts and expiry ----------------------------------------------------------------------


def test_several_contacts_per_contact_expires_and_the_cap(routr):
    with udp(routr) as client:
        reg = Registration(client, "1001", "1234")
        a = "<sip:1001@127.0.0.1:7001>;expires=120"
        b = "<sip:1001@127.0.0.1:7002>"
        c = "<sip:1001@127.0.0.1:7003>;expires=999999"
        response = reg.send([a, f"{b}, {c}"], expires=300)
        assert response.status == 200, response.to_bytes()
        assert bound(response) == {
            "sip:1001@127.0.0.1:7001": 120,
            "sip:1001@127.0.0.1:7002": 300,
            "sip:1001@127.0.0.1:7003": 3600,  # maxExpires
        }
        # A REGISTER without Contact lists the bindings; no Expires: defaultExpires applies
        # to new contacts only.
        query = reg.send()
        assert set(bound(query)) == set(bound(response))
        # Removing one contact with expires=0 keeps the others.
        left = reg.send(["<sip:1001@127.0.0.1:7002>;expires=0"])
        assert set(bound(left)) == {"sip:1001@127.0.0.1:7001", "sip:1001@127.0.0.1:7003"}
        routr.wait_for(f"endpoint.unregistered {AOR_1001} -> sip:1001@127.0.0.1:7002")
        # Contact: * with Expires: 0 removes every binding.
        cleared = reg.send(["*"], expires=0)
        assert cleared.status == 200
        assert bound(cleared) == {}
        # Contact: * without Expires: 0 is a bad request.
        assert reg.send(["*"], expires=60).status == 400


def test_default_expires_applies_when_nothing_is_said(tmp_path):
    spec = {"registrar": {"minExpires": 10, "defaultExpires": 900, "maxExpires": 1800}}
    with running(tmp_path, spec=spec) as proc, udp(proc) as client:
        response = Registration(client, "1001", "1234").send([contact_of(client)])
        assert list(bound(response).values()) == [900]


def test_too_brief_is_423_with_min_expires(routr):
    with udp(routr) as client:
        reg = Registration(client, "1001", "1234")
        response = reg.send([contact_of(client)], expires=10)
        assert response.status == 423
        assert response.get("min-expires") == "60"
        # Nothing was bound: a one-contact request is all or nothing.
        retry = reg.send(["<sip:1001@127.0.0.1:7001>", "<sip:1001@127.0.0.1:7002>;expires=5"])
        assert retry.status == 423
        assert bound(reg.send()) == {}


def test_ex_max_contact_replaces_the_oldest(routr):
    with udp(routr) as client:
        reg = Registration(client, "1003", "pw1003")
        for port in (7001, 7002, 7003):
            response = reg.send([f"<sip:1003@127.0.0.1:{port}>"], expires=600)
            assert response.status == 200
        assert set(bound(response)) == {"sip:1003@127.0.0.1:7002", "sip:1003@127.0.0.1:7003"}
        routr.wait_for(f"endpoint.unregistered sip:1003@{DOMAIN} -> sip:1003@127.0.0.1:7001 "
                       "(replaced)")  # fmt: skip


def test_binding_expires_when_its_time_passes(tmp_path):
    spec = {"registrar": {"minExpires": 1, "defaultExpires": 60, "maxExpires": 3600}}
    with running(tmp_path, spec=spec) as proc, udp(proc) as client:
        reg = Registration(client, "1001", "1234")
        response = reg.send([contact_of(client)], expires=1)
        assert bound(response) == {f"sip:1001@{hostport(*client.local)}": 1}
        # The sweeper reports it (it runs every few seconds) ...
        proc.wait_for(f"endpoint.expired {AOR_1001}", timeout=20)
        # ... and then a request for the AOR finds nobody (refused to a stranger with the
        # challenge that every undelivered request of a stranger gets).
        with message_from_outside((proc.host, proc.ports["udp"]), AOR_1001) as sender:
            assert final(sender).status == 407
        assert bound(reg.send()) == {}


# -- flows: NAT, TCP, WebSocket -------------------------------------------------------------


def test_nat_binding_is_reached_at_the_source_address(routr):
    # Via and Contact name 127.0.0.99:5999 (nobody listens there); the packets come
    # from 127.0.0.1 and an ephemeral port, as from behind a NAT.
    with udp(routr) as phone:
        reg = Registration(phone, "1001", "1234", via_host=("127.0.0.99", 5999))
        response = reg.send(["<sip:1001@127.0.0.99:5999>"], expires=600)
        assert response.status == 200, response.to_bytes()
        assert bound(response) == {"sip:1001@127.0.0.99:5999": 600}
        with message_from_outside((routr.host, routr.ports["udp"]), AOR_1001, "behind nat") as s:
            msg = expect_request(phone, "MESSAGE")
            assert msg.body == b"behind nat"
            assert msg.uri_text == "sip:1001@127.0.0.99:5999"
            answer(phone, msg)
            assert final(s).status == 200


def test_tcp_registration_is_reached_over_its_connection(routr):
    with StreamClient((routr.host, routr.ports["tcp"])) as phone:
        reg = Registration(phone, "1001", "1234", transport="TCP")
        contact = contact_of(phone, transport="tcp")
        response = reg.send([contact], expires=600)
        assert response.status == 200, response.to_bytes()
        with message_from_outside((routr.host, routr.ports["udp"]), AOR_1001, "over tcp") as s:
            msg = expect_request(phone, "MESSAGE")  # on the very connection it registered on
            assert msg.body == b"over tcp"
            assert msg.via.transport.upper() == "TCP"
            answer(phone, msg)
            assert final(s).status == 200


def test_websocket_registration_with_invalid_contact_is_reached_over_its_socket(tmp_path):
    with running(tmp_path, ("udp", "ws")) as proc:
        phone = WsClient(f"ws://127.0.0.1:{proc.ports['ws']}")
        try:
            host = f"{uuid.uuid4().hex[:10]}.invalid"
            # As JsSIP does: Via and Contact name a host nobody can resolve.
            reg = Registration(phone, "1001", "1234", transport="WS", via_host=(host, 0))
            contact = f"<sip:abc{uuid.uuid4().hex[:6]}@{host};transport=ws>"
            response = reg.send([contact], expires=600)
            assert response.status == 200, response.to_bytes()
            with message_from_outside((proc.host, proc.ports["udp"]), AOR_1001, "ws!") as s:
                msg = expect_request(phone, "MESSAGE")
                assert msg.body == b"ws!"
                answer(phone, msg)
                assert final(s).status == 200
        finally:
            phone.close()


# -- Redis location shared by two servers ---------------------------------------------------


def _redis_or_skip(db: int):
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=db, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis is not reachable on 127.0.0.1:6379 ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return client


def test_servers_on_one_data_folder_accept_each_others_nonces(tmp_path):
    # The nonce key is kept in the data folder: a challenge from one server is answered
    # to the other (two processes, or two nodes behind one name).
    data = standard_data(tmp_path / "data")
    with (
        running(tmp_path / "a", data=data) as a,
        running(tmp_path / "b", data=data) as b,
        udp(a) as to_a,
        udp(b) as to_b,
    ):
        reg = Registration(to_a, "1001", "1234")
        reg.take_challenge(to_a.request(reg.request([contact_of(to_a)])))
        response = to_b.request(reg.request([contact_of(to_b)], authorization=reg.credentials()))
    assert response.status == 200, response.to_bytes()


def test_redis_location_is_shared_by_two_servers(tmp_path):
    db = 12
    redis_client = _redis_or_skip(db)
    prefix = f"routr-e2e-{uuid.uuid4().hex[:8]}"
    location = {
        "provider": "redis",
        "parameters": {"host": "127.0.0.1", "port": 6379, "db": db, "prefix": prefix},
    }
    data = standard_data(tmp_path / "data")
    try:
        with (
            running(tmp_path / "a", spec={"location": location}, data=data) as a,
            running(tmp_path / "b", spec={"location": location}, data=data) as b,
            udp(a) as phone,
        ):
            assert "RedisStore" in a.wait_for("listening on")
            response = Registration(phone, "1001", "1234").send([contact_of(phone)], expires=600)
            assert response.status == 200, response.to_bytes()
            # The request goes through the other server, which finds the binding in Redis.
            with message_from_outside((b.host, b.ports["udp"]), AOR_1001, "via b") as sender:
                msg = expect_request(phone, "MESSAGE")
                assert msg.body == b"via b"
                answer(phone, msg)
                assert final(sender).status == 200
            assert redis_client.keys(f"{prefix}:*")
    finally:
        keys = redis_client.keys(f"{prefix}:*")
        if keys:
            redis_client.delete(*keys)
        redis_client.close()


# -- SIPp --------------------------------------------------------------------------------------


@pytest.mark.sipp
@pytest.mark.parametrize(("protocol", "mode"), [("udp", "u1"), ("tcp", "t1")])
def test_sipp_registers_with_digest(tmp_path, protocol, mode):
    # On the defaults: SIPp 3.6.1 answers the first challenge only and knows MD5 alone.
    with running(tmp_path / "server") as proc:
        _sipp_register(proc, tmp_path, protocol, mode)


def _sipp_register(routr: RoutrProcess, tmp_path: Path, protocol: str, mode: str) -> None:
    users = tmp_path / "users.csv"
    users.write_text(
        "SEQUENTIAL\n"
        + "".join(
            f"{u};{DOMAIN};[authentication username={u} password={p}]\n"
            for u, p in (("1001", "1234"), ("1002", "s3cret"))
        )
    )
    result = run_sipp(
        "register_digest.xml",
        f"127.0.0.1:{routr.ports[protocol]}",
        "-inf",
        str(users),
        calls=20,
        rate=50,
        transport=mode,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    routr.wait_for(f"endpoint.registered sip:1002@{DOMAIN}")
