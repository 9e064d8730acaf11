"""Each limit of ``spec.security.limits`` over real sockets: a message past it gets its
answer, ``routr_limit_hits_total`` moves, and the listener keeps serving."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from registrar_kit import DOMAIN, Registration, build, running
from support.metrics import hits, wait_for_hits
from support.server import RoutrProcess
from support.sip import UdpClient, WsClient, options
from websockets.exceptions import ConnectionClosed

from routr.sip.message import Request, Response

LIMITS = {
    "maxHeaders": 30,
    "maxVias": 5,
    "maxRoutes": 5,
    "maxContacts": 3,
    "maxTransactionsPerSource": 2,
    "maxWsFrameSize": 4096,
}
SPEC = {"security": {"maxMessageSize": 2048, "authenticateRequests": False, "limits": LIMITS}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutrProcess]:
    with running(tmp_path_factory.mktemp("limits"), ("udp", "ws"), SPEC) as proc:
        yield proc


def assert_serving(proc: RoutrProcess) -> None:
    with UdpClient(("127.0.0.1", proc.ports["udp"])) as client:
        target = f"127.0.0.1:{proc.ports['udp']}"
        assert client.request(options(target, "UDP", client.local)).status == 200


def vias(n: int) -> str:
    return "".join(f"Via: SIP/2.0/UDP 192.0.2.{i}:5060;branch=z9hG4bK-v{i}\r\n" for i in range(n))


def routes(n: int) -> str:
    # one header with a comma list and one on its own line: both count
    return f"Route: {', '.join(['<sip:192.0.2.1;lr>'] * (n - 1))}\r\nRoute: <sip:192.0.2.2;lr>\r\n"


@pytest.mark.parametrize(
    ("limit", "extra", "status", "reason"),
    [
        ("headers", "".join(f"X-Pad-{i}: {i}\r\n" for i in range(30)), 400, "Too Many Headers"),
        ("vias", vias(5), 400, "Too Many Via Headers"),  # 5 below the client's own
        ("routes", routes(6), 400, "Too Many Route Headers"),
        ("message_size", "X-Pad: " + "a" * 2100 + "\r\n", 513, "Message Too Large"),
    ],
)
def test_a_message_past_a_count_is_answered(server, limit, extra, status, reason):
    before = hits(server, limit)
    with UdpClient(("127.0.0.1", server.ports["udp"])) as client:
        target = f"127.0.0.1:{server.ports['udp']}"
        response = client.request(options(target, "UDP", client.local, extra=extra))
    assert (response.status, response.reason) == (status, reason)
    assert hits(server, limit) == before + 1
    assert_serving(server)


def test_a_message_at_the_counts_is_served(server):
    extra = vias(4) + routes(5)[: -len("Route: <sip:192.0.2.2;lr>\r\n")]  # 4 Routes
    extra += "".join(f"X-Pad-{i}: {i}\r\n" for i in range(10))
    with UdpClient(("127.0.0.1", server.ports["udp"])) as client:
        # Routes that are not us go on to 192.0.2.1: only parsing is at stake, so the
        # request is an OPTIONS to the server itself, its Route headers to other hosts
        # aside; anything but a 400 shows the counts were let through.
        target = f"127.0.0.1:{server.ports['udp']}"
        response = client.request(options(target, "UDP", client.local, extra=extra))
    assert response.status != 400, response.reason


def test_a_register_with_too_many_contacts_is_answered(server):
    before = hits(server, "contacts")
    with UdpClient(("127.0.0.1", server.ports["udp"])) as client:
        contacts = [f"<sip:1001@127.0.0.1:{5070 + i}>" for i in range(4)]
        response = Registration(client, "1001", "1234").send(contacts)
        assert (response.status, response.reason) == (400, "Too Many Contacts")
        assert hits(server, "contacts") == before + 1
        # three are fine (1001 may have five bindings)
        assert Registration(client, "1001", "1234").send(contacts[:3], expires=60).status == 200
    assert_serving(server)


def test_a_websocket_message_over_the_frame_size_closes_with_1009(server):
    before = hits(server, "ws_frame")
    client = WsClient(f"ws://127.0.0.1:{server.ports['ws']}")
    target = f"127.0.0.1:{server.ports['ws']}"
    client.send(options(target, "WS", tuple(client.local), extra="X-Pad: " + "a" * 5000 + "\r\n"))
    with pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    wait_for_hits(server, "ws_frame", before + 1)
    with WsClient(f"ws://127.0.0.1:{server.ports['ws']}") as other:
        assert other.request(options(target, "WS", tuple(other.local))).status == 200


def test_bindings_past_ex_max_contact_are_counted(server):
    before = hits(server, "bindings")
    with UdpClient(("127.0.0.1", server.ports["udp"])) as client:
        registration = Registration(client, "1003", "pw1003")  # ex_maxContact: 2
        contacts = [f"<sip:1003@127.0.0.1:{5080 + i}>" for i in range(3)]
        assert registration.send(contacts, expires=60).status == 200
    assert hits(server, "bindings") == before + 1


def test_requests_in_progress_per_source_are_bounded(tmp_path: Path):
    """Two INVITEs from 127.0.0.5 ring a callee that never answers; the third gets 503
    with Retry-After, a retransmission of the first does not, another source is served,
    and once one INVITE is answered the next one is taken."""
    with (
        running(tmp_path, ("udp",), SPEC) as proc,
        UdpClient(("127.0.0.1", proc.ports["udp"])) as callee,
        UdpClient(("127.0.0.1", proc.ports["udp"]), bind="127.0.0.5") as caller,
    ):
        host, port = callee.local
        assert (
            Registration(callee, "1002", "s3cret")
            .send([f"<sip:1002@{host}:{port}>"], expires=60)
            .status
            == 200
        )
        before = hits(proc, "transactions")

        def invite() -> bytes:
            return build(
                "INVITE", f"sip:1002@{DOMAIN}", via=f"SIP/2.0/UDP 127.0.0.5:{caller.local[1]}",
                from_uri=f"sip:1001@{DOMAIN}", to_uri=f"sip:1002@{DOMAIN}",
                contacts=[f"<sip:1001@127.0.0.5:{caller.local[1]}>"],
            )  # fmt: skip

        first = invite()
        ringing = []
        for data in (first, invite()):
            caller.send(data)
            assert provisional(caller).status == 100
            ringing.append(expect(callee, "INVITE"))
        caller.send(invite())
        refused = final(caller)
        assert (refused.status, refused.reason) == (503, "Too Many Transactions")
        assert refused.get("retry-after") == "5"
        assert hits(proc, "transactions") == before + 1
        caller.send(first)  # a retransmission is no new transaction
        assert provisional(caller).status == 100
        assert_serving(proc)  # 127.0.0.1 is another source
        callee.send(ringing[0].response(486).to_bytes())
        assert final(caller).status == 486
        caller.send(invite())
        assert provisional(caller).status == 100


def provisional(client: UdpClient) -> Response:
    message = client.recv(timeout=5)
    assert isinstance(message, Response) and message.status < 200, message
    return message


def final(client: UdpClient) -> Response:
    deadline = time.monotonic() + 5
    while True:
        message = client.recv(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(message, Response) and message.status >= 200:
            return message


def expect(client: UdpClient, method: str) -> Request:
    deadline = time.monotonic() + 5
    while True:
        message = client.recv(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(message, Request) and message.method == method:
            return message
