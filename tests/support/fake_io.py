"""The one fake I/O and clock of the sans-IO unit tests of ``routr.core``.

- :class:`FakeClock`: time that moves only when a test says so, and the timers it fires
  (earliest first; at the same time, in the order they were armed).
- :class:`FakeIO`: the clock and the I/O the core is given (``routr.core.routing.ProxyIO``,
  and ``routr.core.service.ServiceIO``; the gateways' ``RegistryIO`` is a part of it),
  keeping what was sent where, what was replied and the async work handed to it. routr is
  127.0.0.1:5060; the Via address it advertises can be set.
- :class:`FakeSource`, :class:`FakeConn`: where a packet came from, duck-typed like
  ``routr.transport.base.Source`` and its connection.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from routr.core.routing import Hop
from routr.sip.message import Message, Request, Response, parse_message
from routr.sip.uri import SipURI

ROUTR = ("udp", "127.0.0.1", 5060)


class FakeConn:
    __slots__ = ("closed", "id")

    def __init__(self, id: int) -> None:
        self.id = id
        self.closed = False


class FakeSource:
    __slots__ = ("conn", "ip", "local", "port", "protocol")

    def __init__(
        self,
        ip: str = "127.0.0.1",
        port: int = 5060,
        protocol: str = "udp",
        conn: FakeConn | None = None,
        local: tuple[str, int] = ("127.0.0.1", 5060),
    ) -> None:
        self.ip = ip
        self.port = port
        self.protocol = protocol
        self.conn = conn
        self.local = local  # the listener it came in on

    def __repr__(self) -> str:
        return f"<FakeSource {self.protocol}:{self.ip}:{self.port}>"


class FakeTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t
        self.timers: list[FakeTimer] = []  # armed, not fired yet (cancelled ones too)

    def now(self) -> float:
        return self.t

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(when, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, firing every timer due by then."""
        self.advance_to(self.t + seconds)

    def advance_to(self, end: float) -> None:
        """Move the clock to ``end``, firing every timer due by then, each at its time."""
        while True:
            due = [t for t in self.timers if not t.cancelled and t.when <= end]
            if not due:
                break
            timer = min(due, key=lambda t: t.when)
            self.timers.remove(timer)
            self.t = max(self.t, timer.when)
            timer.callback()
        self.t = end

    def live(self) -> int:
        """Timers armed and neither fired nor cancelled."""
        return sum(1 for t in self.timers if not t.cancelled)


class FakeIO(FakeClock):
    def __init__(self, t: float = 0.0, via: tuple[str, str, int] = ROUTR) -> None:
        super().__init__(t)
        self.via = via
        self.sent: list[tuple[Message, Hop]] = []
        self.replies: list[Response] = []
        self.work: list[Coroutine[Any, Any, None]] = []

    def send_back(self, data: bytes, source: Any, dest: tuple[str, int] | None) -> None:
        response = parse_message(data)
        assert isinstance(response, Response)
        self.replies.append(response)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self.work.append(work)

    async def run_work(self) -> None:
        """Run the async work handed over so far (and what it hands over in turn)."""
        while self.work:
            await self.work.pop(0)

    def reply(self, request: Request, response: Response, source: Any) -> None:
        self.replies.append(response)

    def send(self, message: Message, hop: Hop, on_error: Callable[[], None]) -> None:
        self.sent.append((message, hop))

    def via_for(self, hop: Hop) -> tuple[str, str, int]:
        return self.via

    def inbound_via(self, source: Any) -> tuple[str, str, int]:
        return ROUTR

    def is_self(self, uri: SipURI) -> bool:
        return uri.host_key == "127.0.0.1" and (uri.port or 5060) == 5060

    # -- what happened ----------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """Everything sent, in order, retransmissions included."""
        return [m for m, _ in self.sent]

    def requests(self, method: str) -> list[tuple[Request, Hop]]:
        """Sent requests of a method, retransmissions left out."""
        seen: set[str] = set()
        out = []
        for m, h in self.sent:
            if isinstance(m, Request) and m.method == method:
                if m.via.branch in seen and method != "ACK":
                    continue
                seen.add(m.via.branch or "")
                out.append((m, h))
        return out

    def finals(self) -> list[int]:
        """Final responses sent upstream, retransmissions left out."""
        out: list[int] = []
        for r in self.replies:
            if r.status >= 200 and (not out or out[-1] != r.status or r.status < 300):
                out.append(r.status)
        return out
