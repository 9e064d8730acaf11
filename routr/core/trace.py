"""Call traces: the SIP messages of recent calls, as they crossed routr.

A trace opens at an initial INVITE (all of them, a sample, or none: ``mode``) and takes
every later message with its Call-ID, in and out, up to ``messages``; the ``calls`` most
recent traces are kept. Messages are kept as the bytes on the wire; credentials are
redacted when a trace is read, not on the SIP path.
"""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

from routr.sip.errors import ParseError
from routr.sip.message import Message, Request

Mode = Literal["off", "sampled", "on"]
Direction = Literal["in", "out"]
Address = tuple[str, int]

_CREDENTIALS = re.compile(
    rb"^((?:proxy-)?authorization\s*:[^\r\n]*?\bresponse\s*=\s*)(\"[^\"]*\"|[^,\s\r\n]+)",
    re.I | re.M,
)
REDACTED = b'"<redacted>"'


def redact(data: bytes) -> bytes:
    """``data`` with each digest ``response=`` of (Proxy-)Authorization hidden."""
    return _CREDENTIALS.sub(lambda m: m.group(1) + REDACTED, data)


class Record:
    """One message: when, which way, over what, from where to where, and its bytes."""

    __slots__ = ("data", "destination", "direction", "origin", "time", "transport")

    def __init__(self, time: float, direction: Direction, transport: str, origin: Address,
                 destination: Address, data: bytes) -> None:  # fmt: skip
        self.time = time
        self.direction = direction
        self.transport = transport
        self.origin = origin
        self.destination = destination
        self.data = data


class CallTrace:
    __slots__ = ("call_id", "dropped", "records", "started")

    def __init__(self, call_id: str, started: float) -> None:
        self.call_id = call_id
        self.started = started
        self.records: list[Record] = []
        self.dropped = 0  # messages past the per-call bound


class Traces:
    """The bounded ring of call traces; ``on`` is False when nothing is ever traced."""

    def __init__(
        self,
        mode: Mode = "on",
        calls: int = 200,
        messages: int = 100,
        sample: float = 0.1,
        chance: Callable[[], float] = random.random,
        max_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.mode = mode
        self.max_bytes = max_bytes
        self.bytes = 0  # kept in all traces; the oldest go first past ``max_bytes``
        self.on = mode != "off"
        self.calls = calls
        self.messages = messages
        self.sample = sample
        self.chance = chance
        self._traces: OrderedDict[str, CallTrace] = OrderedDict()

    def __len__(self) -> int:
        return len(self._traces)

    def incoming(self, message: Message, data: bytes, transport: str, origin: Address,
                 local: Address, now: float) -> None:  # fmt: skip
        # the header as read, not ``call_id``: a message without one is refused later, with
        # the status the parser gives it
        call_id = message.get("call-id")
        if call_id is None:
            return
        trace = self._traces.get(call_id)
        if trace is None:
            trace = self._open(message, now)
            if trace is None:
                return
        self._add(trace, Record(now, "in", transport, origin, local, data))

    def traced(self, message: Message) -> bool:
        """Whether ``message`` belongs to a call being traced (cheap: one header, one dict)."""
        call_id = message.get("call-id")
        return call_id is not None and call_id in self._traces

    def outgoing(self, message: Message, data: Callable[[], bytes], transport: str,
                 local: Address, destination: Address, now: float) -> None:  # fmt: skip
        """``data`` is called only for a traced call: serializing costs."""
        call_id = message.get("call-id")
        trace = self._traces.get(call_id) if call_id is not None else None
        if trace is not None:
            self._add(trace, Record(now, "out", transport, local, destination, data()))

    def get(self, call_id: str) -> CallTrace | None:
        return self._traces.get(call_id)

    def call_ids(self) -> list[str]:
        """The traced calls, the most recent first."""
        return list(reversed(self._traces))

    def _open(self, message: Message, now: float) -> CallTrace | None:
        if not isinstance(message, Request) or message.method != "INVITE":
            return None
        try:
            if message.to.tag:
                return None  # a re-INVITE: its call's trace is gone already
        except ParseError:
            return None  # refused later, with the status the parser gives it
        if self.mode == "sampled" and self.chance() >= self.sample:
            return None
        call_id = message.call_id
        trace = self._traces[call_id] = CallTrace(call_id, now)
        if len(self._traces) > self.calls:
            self._forget_oldest()
        return trace

    def _forget_oldest(self) -> None:
        _, gone = self._traces.popitem(last=False)
        self.bytes -= sum(len(r.data) for r in gone.records)

    def _add(self, trace: CallTrace, record: Record) -> None:
        if len(trace.records) >= self.messages:
            trace.dropped += 1
            return
        trace.records.append(record)
        self.bytes += len(record.data)
        while self.bytes > self.max_bytes and len(self._traces) > 1:
            self._forget_oldest()
