"""NATS for tests: the machine's server (127.0.0.1:4222), or one a test starts itself."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from support.binaries import free_port, missing, need_binary

MACHINE_NATS = "nats://127.0.0.1:4222"


def machine_nats() -> str:
    """The URL of the NATS this machine runs; skip (fail with CI=true) when it is not up."""
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError:
        missing("NATS is not running on 127.0.0.1:4222")
    return MACHINE_NATS


def prefix() -> str:
    """A subject prefix of this test alone (the machine's NATS is shared)."""
    return f"routrtest{uuid.uuid4().hex[:10]}"


class NatsServer:
    """A ``nats-server`` of the test's own on a loopback port: it can be killed and
    started again on the same port (an outage)."""

    def __init__(self, workdir: Path, jetstream: bool = False) -> None:
        self.binary = need_binary("nats-server", "nats-server")
        self.port = free_port()
        self.workdir = workdir
        self.jetstream = jetstream
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        args = [self.binary, "-a", "127.0.0.1", "-p", str(self.port)]
        if self.jetstream:
            args += ["-js", "-sd", str(self.workdir / "js")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"nats-server did not listen on {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Collector:
    """Subscribes to ``<prefix>.>`` and keeps every message's subject and JSON body."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.client: Any = None

    async def start(self, url: str, subject_prefix: str) -> Collector:
        import nats

        self.client = await nats.connect(
            url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, connect_timeout=2
        )

        async def keep(msg: Any) -> None:
            self.messages.append((msg.subject, json.loads(msg.data)))

        await self.client.subscribe(f"{subject_prefix}.>", cb=keep)
        await self.client.flush()
        return self

    def names(self) -> list[str]:
        return [body["event"] for _, body in self.messages]

    async def wait_for(self, check: Any, timeout: float = 10.0) -> None:
        """Until ``check(self)`` is true (polled), or TimeoutError."""
        async with asyncio.timeout(timeout):
            while not check(self):
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
