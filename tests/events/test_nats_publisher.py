"""The NATS publisher of a real routr-server: outages, overflow and JetStream replay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.registrar_kit import Registration
from support.data import agent, domain, write_resources
from support.nats import Collector, NatsServer, machine_nats, prefix
from support.server import RoutrProcess
from support.sip import UdpClient

USERS = [f"50{i:02}" for i in range(40)]


def _routr(tmp_path: Path, nats: dict[str, object]) -> RoutrProcess:
    data = write_resources(
        tmp_path / "data", domain("sip.local"), *(agent(u, f"pw{u}", ["sip.local"]) for u in USERS)
    )
    spec = {"events": {"nats": nats}, "registrar": {"minExpires": 1}}
    return RoutrProcess(tmp_path, ("udp",), spec, data=data).start()


def _register(server: RoutrProcess, users: list[str]) -> None:
    """REGISTER each user (digest) and check every one is answered: SIP does not stall."""
    client = UdpClient(("127.0.0.1", server.ports["udp"]))
    try:
        for user in users:
            reg = Registration(client, user, f"pw{user}")
            contact = f"<sip:{user}@{client.local[0]}:{client.local[1]}>"
            assert (
                reg.send(
                    [contact],
                    expires=60,
                ).status
                == 200
            )
    finally:
        client.sock.close()


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path).start()
    yield server
    server.kill()


def _aors(collector: Collector) -> set[str]:
    return {body["aor"] for _, body in collector.messages if body["event"] == "endpoint.registered"}


async def test_an_outage_queues_events_and_they_resume(tmp_path: Path, own_nats: NatsServer):
    subject = prefix()
    proc = _routr(tmp_path, {"url": own_nats.url, "subject": subject})
    collector = await Collector().start(own_nats.url, subject)
    try:
        await asyncio.to_thread(_register, proc, USERS[:2])
        await collector.wait_for(lambda c: len(_aors(c)) == 2)
        own_nats.kill()
        await asyncio.to_thread(proc.wait_for, "NATS: disconnected")
        await asyncio.to_thread(_register, proc, USERS[2:10])  # all answered meanwhile
        own_nats.start()
        await asyncio.to_thread(proc.wait_for, "NATS: reconnected", 15)
        # what happened during the outage arrives once NATS is back
        await collector.wait_for(lambda c: len(_aors(c)) == 10, timeout=15)
        assert [s for s, _ in collector.messages if s.endswith("registered")]
    finally:
        await collector.close()
        proc.stop()
    proc.assert_no_tracebacks()
    assert sum("NATS: disconnected" in line for line in proc.lines) == 1  # once, not per event


async def test_overflow_during_an_outage_is_dropped_and_counted(
    tmp_path: Path, own_nats: NatsServer
) -> None:
    subject = prefix()
    proc = _routr(tmp_path, {"url": own_nats.url, "subject": subject, "queueSize": 10})
    try:
        await asyncio.to_thread(proc.wait_for, "NATS: connected")
        own_nats.kill()
        await asyncio.to_thread(proc.wait_for, "NATS: disconnected")
        await asyncio.to_thread(_register, proc, USERS[:30])
        full = [line for line in proc.lines if "event queue nats is full" in line]
        assert len(full) == 1  # logged once for the outage
        own_nats.start()
        line = await asyncio.to_thread(proc.wait_for, "dropped while it was unreachable", 15)
        assert int(line.split("NATS: ")[1].split()[0]) >= 15
    finally:
        proc.stop()
    proc.assert_no_tracebacks()


async def test_nats_unreachable_at_start_does_not_stop_sip(tmp_path: Path) -> None:
    from support.binaries import free_port

    port = free_port()  # nobody listens there
    url = f"nats://alice:s3cret-pass@127.0.0.1:{port}"
    proc = _routr(tmp_path, {"url": url, "subject": prefix()})
    shown = f"NATS nats://127.0.0.1:{port} unreachable"  # the credentials left out
    try:
        await asyncio.to_thread(proc.wait_for, shown)
        await asyncio.to_thread(_register, proc, USERS[:3])
    finally:
        proc.stop()
    assert proc.proc is not None and proc.proc.returncode == 0
    assert sum(shown in line for line in proc.lines) == 1  # once
    assert "s3cret-pass" not in "\n".join(proc.raw)


async def test_jetstream_keeps_events_for_a_later_consumer(tmp_path: Path) -> None:
    import nats

    url = machine_nats()
    subject = prefix()
    stream = subject.upper()
    proc = _routr(tmp_path, {"url": url, "subject": subject, "stream": stream})
    client = await nats.connect(url)
    js = client.jetstream()
    try:
        await asyncio.to_thread(proc.wait_for, f"created JetStream stream {stream}")
        await asyncio.to_thread(_register, proc, USERS[:3])
        proc.stop()  # published and acknowledged before the consumer exists
        consumer = await js.pull_subscribe(f"{subject}.endpoint.registered", durable="late")
        messages = await consumer.fetch(3, timeout=5)
        bodies = [json.loads(m.data) for m in messages]
        assert {b["aor"] for b in bodies} == {f"sip:{u}@sip.local" for u in USERS[:3]}
        assert all(b["timestamp"].endswith("Z") or "+" in b["timestamp"] for b in bodies)
    finally:
        proc.stop()
        await js.delete_stream(stream)
        await client.close()
    proc.assert_no_tracebacks()
