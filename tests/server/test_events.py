"""Every event on the bus comes from real traffic: the whole server runs in this test's
event loop on loopback sockets, the test subscribes to its bus and talks SIP to it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.data import agent, domain, gateway, write_resources
from support.nats import Collector, machine_nats, prefix

from routr.events import Event
from routr.events.bus import EventQueue
from routr.models import parse_resource
from routr.models.config import Config
from routr.server.app import Server
from routr.sip.digest import make_credentials, parse_challenge
from routr.sip.message import Request, Response, parse_message

PHONE_IP = "127.0.0.2"  # not trusted: it can be banned


class Udp(asyncio.DatagramProtocol):
    """A loopback UDP endpoint that keeps what arrives."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Request | Response] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        assert isinstance(message, Request | Response)
        self.inbox.put_nowait(message)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes | str, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data.encode() if isinstance(data, str) else data, to)

    async def next(self, what: str, timeout: float = 5.0) -> Request | Response:
        """The next request of method ``what`` or response of status ``what``."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.inbox.get()
                if isinstance(message, Request) and message.method == what:
                    return message
                if isinstance(message, Response) and str(message.status) == what:
                    return message


async def udp(host: str = "127.0.0.1") -> Udp:
    _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        Udp, local_addr=(host, 0)
    )
    return protocol


class Registrar(Udp):
    """A provider's registrar: answers REGISTER with ``status``."""

    status = 200

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = parse_message(data)
        if isinstance(request, Request) and request.method == "REGISTER":
            extra = [("Contact", f"{request.get('contact')};expires=600")]
            self.send(request.response(self.status, headers=extra).to_bytes(), addr)


async def next_events(queue: EventQueue, *names: str, timeout: float = 10.0) -> dict[str, Any]:
    """Wait for one event of each of ``names`` (in any order); their JSON bodies by name."""
    found: dict[str, Any] = {}
    async with asyncio.timeout(timeout):
        while len(found) < len(names):
            event: Event = await queue.get()
            if event.name in names:
                found[event.name] = event.to_dict()
    return found


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    good, bad = Registrar(), Registrar()
    bad.status = 403
    for r in (good, bad):
        await loop.create_datagram_endpoint(lambda r=r: r, local_addr=("127.0.0.1", 0))  # type: ignore[misc]
    creds = {"username": "pbx-1", "secret": "s3cret"}
    nats_url, subject = machine_nats(), prefix()
    data = write_resources(
        tmp_path / "data",
        domain("sip.local"),
        agent("1001", "1234", ["sip.local"]),
        agent("1002", "5678", ["sip.local"]),
        gateway("gw-good", "127.0.0.1", good.port, sendRegister=True, credentials=creds),
        gateway("gw-bad", "127.0.0.1", bad.port, sendRegister=True, credentials=creds),
    )
    config = Config.model_validate(
        {
            "spec": {
                "bindAddr": "127.0.0.1",
                "transport": [{"protocol": "udp", "port": 0}],
                "restService": {"port": 0},
                "events": {"nats": {"url": nats_url, "subject": subject}},
                "recordRoute": True,
                "registrar": {"minExpires": 1, "defaultExpires": 60},
                "security": {
                    "authenticateRequests": False,
                    "trusted": ["127.0.0.1/32"],
                    "floodBan": {"requests": 40, "seconds": 2, "banSeconds": 60},
                },
            }
        }
    )
    server = Server(config, data_dir=str(data), sweep_seconds=0.2)
    queue = server.bus.queue(name="test")
    everything = server.bus.queue(name="all")
    nats = await Collector().start(nats_url, subject)
    await server.start()
    assert server.transports is not None
    address = ("127.0.0.1", server.transports.listeners[0].port)
    try:
        yield {"server": server, "queue": queue, "routr": address, "all": everything,
               "nats": nats, "subject": subject}  # fmt: skip
    finally:
        await server.stop()
        await nats.close()
        for r in (good, bad):
            assert r.transport is not None
            r.transport.close()


def request(method: str, ruri: str, ua: Udp, user: str, to: str, call_id: str, cseq: int,
            extra: str = "") -> str:  # fmt: skip
    return (
        f"{method} {ruri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {PHONE_IP}:{ua.port};branch=z9hG4bK{uuid.uuid4().hex[:10]};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:{user}@sip.local>;tag=t{user}\r\nTo: {to}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: <sip:{user}@{PHONE_IP}:{ua.port}>\r\n{extra}Content-Length: 0\r\n\r\n"
    )


async def register(ua: Udp, routr: tuple[str, int], user: str, password: str, expires: int) -> None:
    to = f"<sip:{user}@sip.local>"
    call_id = uuid.uuid4().hex
    ua.send(request("REGISTER", "sip:sip.local", ua, user, to, call_id, 1), routr)
    challenge = await ua.next("401")
    offered = parse_challenge(challenge.get("www-authenticate") or "")
    auth = make_credentials(offered, "REGISTER", "sip:sip.local", user, password, "c0")
    extra = f"Authorization: {auth}\r\nExpires: {expires}\r\n"
    ua.send(request("REGISTER", "sip:sip.local", ua, user, to, call_id, 2, extra), routr)
    await ua.next("200")


async def test_events_of_registrations_calls_gateways_bans_and_resources(
    world: dict[str, Any],
) -> None:
    server, queue, routr = world["server"], world["queue"], world["routr"]
    assert server.io.listeners() == [{"protocol": "udp", "host": "127.0.0.1", "port": routr[1]}]
    gateways = await next_events(queue, "gateway.registered", "gateway.registration.failed")
    assert gateways["gateway.registered"]["ref"] == "gw-good"
    assert gateways["gateway.registration.failed"]["status"] == 403

    caller, callee = await udp(PHONE_IP), await udp(PHONE_IP)
    await register(callee, routr, "1002", "5678", 60)
    registered = (await next_events(queue, "endpoint.registered"))["endpoint.registered"]
    assert registered["aor"] == "sip:1002@sip.local" and registered["expires"] == 60

    # A call: INVITE, 200, ACK, BYE through routr (record-routed), 200.
    to = "<sip:1002@sip.local>"
    caller.send(request("INVITE", "sip:1002@sip.local", caller, "1001", to, "call-e", 1), routr)
    invite = await callee.next("INVITE")
    assert isinstance(invite, Request)
    # As a UAS does: the Record-Route comes back in the 2xx.
    rr = [("Record-Route", v) for v in invite.get_all("record-route")]
    contact = [("Contact", f"<sip:1002@{PHONE_IP}:{callee.port}>"), *rr]
    callee.send(invite.response(200, to_tag="b1", headers=contact).to_bytes(), routr)
    answer = await caller.next("200")
    call = await next_events(queue, "call.started", "call.answered")
    assert call["call.started"]["strategy"] == "INTRA_DOMAIN"
    assert call["call.started"]["callId"] == call["call.answered"]["callId"] == "call-e"
    route = f"Route: {', '.join(reversed(answer.get_all('record-route')))}\r\n"
    tagged, target = f"{to};tag=b1", f"sip:1002@{PHONE_IP}:{callee.port}"
    caller.send(request("ACK", target, caller, "1001", tagged, "call-e", 1, route), routr)
    caller.send(request("BYE", target, caller, "1001", tagged, "call-e", 2, route), routr)
    bye = await callee.next("BYE")
    assert isinstance(bye, Request)
    callee.send(bye.response(200).to_bytes(), routr)
    await caller.next("200")
    ended = (await next_events(queue, "call.ended"))["call.ended"]
    assert (ended["callId"], ended["cause"], ended["answered"]) == ("call-e", "hangup", True)

    # A failed call (busy) and a cancelled one end too, with their causes.
    caller.send(request("INVITE", "sip:1002@sip.local", caller, "1001", to, "call-f", 1), routr)
    busy = await callee.next("INVITE")
    assert isinstance(busy, Request)
    callee.send(busy.response(486, to_tag="b2").to_bytes(), routr)
    await caller.next("486")
    failed = (await next_events(queue, "call.ended"))["call.ended"]
    assert (failed["callId"], failed["cause"], failed["answered"]) == ("call-f", "busy", False)
    invite_text = request("INVITE", "sip:1002@sip.local", caller, "1001", to, "call-c", 1)
    caller.send(invite_text, routr)
    ringing = await callee.next("INVITE")
    assert isinstance(ringing, Request)
    callee.send(ringing.response(180, to_tag="b3").to_bytes(), routr)
    await caller.next("180")
    caller.send(
        invite_text.replace("INVITE sip:", "CANCEL sip:", 1).replace(" INVITE\r", " CANCEL\r"),
        routr,
    )
    cancel = await callee.next("CANCEL")
    assert isinstance(cancel, Request)
    callee.send(cancel.response(200).to_bytes(), routr)
    callee.send(ringing.response(487, to_tag="b3").to_bytes(), routr)
    await caller.next("487")
    cancelled = (await next_events(queue, "call.ended"))["call.ended"]
    assert (cancelled["callId"], cancelled["cause"]) == ("call-c", "cancelled")

    # A short registration expires; an un-REGISTER is its own event.
    await register(caller, routr, "1001", "1234", 1)
    expired = (await next_events(queue, "endpoint.expired"))["endpoint.expired"]
    assert expired["aor"] == "sip:1001@sip.local"
    await register(callee, routr, "1002", "5678", 0)
    gone = (await next_events(queue, "endpoint.unregistered"))["endpoint.unregistered"]
    assert gone["aor"] == "sip:1002@sip.local" and gone["expires"] == 0

    # A resource written through the data source.
    assert server.provider is not None
    await server.provider.create(parse_resource(agent("1003", "9999", ["sip.local"])))
    created = (await next_events(queue, "resource.created"))["resource.created"]
    assert (created["kind"], created["name"]) == ("Agent", "Agent 1003")

    # A flood from an untrusted address.
    for i in range(60):
        caller.send(request("OPTIONS", "sip:sip.local", caller, "1001", to, f"o{i}", 1), routr)
    banned = (await next_events(queue, "security.banned"))["security.banned"]
    assert (banned["ip"], banned["reason"]) == (PHONE_IP, "flood")

    # Every one of those events went out on NATS too, under <subject>.<event>, same body.
    seen: list[Event] = []
    while len(world["all"]):
        seen.append(world["all"].get_nowait())
    nats = world["nats"]
    await nats.wait_for(lambda c: len(c.messages) >= len(seen))
    assert sorted(nats.names()) == sorted(e.name for e in seen)
    node = server.bus.node
    assert nats.messages[0][1] == seen[0].to_dict(node)
    assert all(subj == f"{world['subject']}.{body['event']}" for subj, body in nats.messages)
    for ua in (caller, callee):
        assert ua.transport is not None
        ua.transport.close()
