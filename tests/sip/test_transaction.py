"""The four RFC 3261 §17 transaction machines (with RFC 6026's Accepted state), fake clock.

The machines are sans-IO: time is whatever ``now`` the test passes, so every timer is checked
at its exact instant. ``SPEC`` below restates the RFC's transitions independently of the
module's ``TABLE``; every (state, input) pair of every machine is run against it, on
reliable and unreliable transports.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from routr.sip.message import Message, Request, Response, make_request, parse_message
from routr.sip.transaction import (
    T1,
    T2,
    T4,
    TIMER_B,
    Action,
    ClientTransaction,
    Deliver,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    Send,
    ServerTransaction,
    State,
    Terminated,
    Timeout,
    Transaction,
    ack_for,
    client_key,
    client_transaction,
    input_of,
    server_key,
    server_transaction,
)

S = State
BRANCH = "z9hG4bKtx1"


def wire(*lines: str, body: str = "") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def make(
    method: str = "INVITE",
    *,
    branch: str | None = BRANCH,
    via: str | None = None,
    uri: str = "sip:bob@example.com",
    from_tag: str = "a1",
    to: str = "<sip:bob@example.com>",
    call_id: str = "call-1@example.com",
    cseq: int = 7,
    cseq_method: str | None = None,
    extra: tuple[str, ...] = (),
) -> Request:
    """A request parsed from the wire (a retransmission is the same call again)."""
    if via is None:
        params = f";branch={branch}" if branch is not None else ""
        via = f"SIP/2.0/UDP 192.0.2.1:5060{params}"
    msg = parse_message(
        wire(
            f"{method} {uri} SIP/2.0",
            f"Via: {via}",
            "Max-Forwards: 70",
            f"To: {to}",
            f"From: <sip:alice@example.com>;tag={from_tag}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {cseq_method or method}",
            "Contact: <sip:alice@192.0.2.1>",
            *extra,
        )
    )
    assert isinstance(msg, Request)
    return msg


M = TypeVar("M", Request, Response)


def reparse(message: M) -> M:
    """The same message as it would arrive again off the network (a new object)."""
    again = parse_message(bytes(message))
    assert isinstance(again, type(message))
    return again


def sends(actions: list[Action]) -> list[Message]:
    return [a.message for a in actions if isinstance(a, Send)]


def message_of(action: Action) -> Message:
    assert isinstance(action, Send | Deliver)
    return action.message


def kinds(actions: list[Action]) -> list[type]:
    return [type(a) for a in actions]


# -- the specification, restated from the RFCs ------------------------------------------

KINDS = ("invite_client", "non_invite_client", "invite_server", "non_invite_server")
CLASSES: dict[str, Callable[[Request, bool], Transaction]] = {
    "invite_client": InviteClientTransaction,
    "non_invite_client": NonInviteClientTransaction,
    "invite_server": InviteServerTransaction,
    "non_invite_server": NonInviteServerTransaction,
}
METHOD = {
    "invite_client": "INVITE",
    "non_invite_client": "OPTIONS",
    "invite_server": "INVITE",
    "non_invite_server": "OPTIONS",
}
TIMERS = ("A", "B", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M")
MESSAGE_INPUTS = ("1xx", "2xx", "final", "request", "ack", "tu_1xx", "tu_2xx", "tu_final")
INPUTS = MESSAGE_INPUTS + tuple("timer_" + t for t in TIMERS)
CLIENT_INPUTS = ("1xx", "2xx", "final")
SERVER_INPUTS = ("request", "ack", "tu_1xx", "tu_2xx", "tu_final")
RETRANSMISSION_TIMERS = {"A", "E", "G"}

# Symbolic actions: deliver = Deliver(the input); send_request = Send(the transaction's
# request); send_ack = Send(the ACK for the final response; the same object every time);
# send_input = Send(the response the TU passed); resend_last = Send(the last response sent).
Spec = dict[tuple[State, str], tuple[State, tuple[str, ...]]]
END = ("terminated",)
TIMEOUT = ("timeout", "terminated")

SPEC: dict[str, Spec] = {
    # §17.1.1, RFC 6026 §7.2 (Figure 5 of RFC 3261 as amended).
    "invite_client": {
        (S.CALLING, "1xx"): (S.PROCEEDING, ("deliver",)),
        (S.CALLING, "2xx"): (S.ACCEPTED, ("deliver",)),
        (S.CALLING, "final"): (S.COMPLETED, ("send_ack", "deliver")),
        (S.CALLING, "timer_A"): (S.CALLING, ("send_request",)),
        (S.CALLING, "timer_B"): (S.TERMINATED, TIMEOUT),
        (S.PROCEEDING, "1xx"): (S.PROCEEDING, ("deliver",)),
        (S.PROCEEDING, "2xx"): (S.ACCEPTED, ("deliver",)),
        (S.PROCEEDING, "final"): (S.COMPLETED, ("send_ack", "deliver")),
        (S.ACCEPTED, "2xx"): (S.ACCEPTED, ("deliver",)),
        (S.ACCEPTED, "timer_M"): (S.TERMINATED, END),
        (S.COMPLETED, "final"): (S.COMPLETED, ("send_ack",)),
        (S.COMPLETED, "timer_D"): (S.TERMINATED, END),
    },
    # §17.1.2 (Figure 6).
    "non_invite_client": {
        (S.TRYING, "1xx"): (S.PROCEEDING, ("deliver",)),
        (S.TRYING, "2xx"): (S.COMPLETED, ("deliver",)),
        (S.TRYING, "final"): (S.COMPLETED, ("deliver",)),
        (S.TRYING, "timer_E"): (S.TRYING, ("send_request",)),
        (S.TRYING, "timer_F"): (S.TERMINATED, TIMEOUT),
        (S.PROCEEDING, "1xx"): (S.PROCEEDING, ("deliver",)),
        (S.PROCEEDING, "2xx"): (S.COMPLETED, ("deliver",)),
        (S.PROCEEDING, "final"): (S.COMPLETED, ("deliver",)),
        (S.PROCEEDING, "timer_E"): (S.PROCEEDING, ("send_request",)),
        (S.PROCEEDING, "timer_F"): (S.TERMINATED, TIMEOUT),
        (S.COMPLETED, "timer_K"): (S.TERMINATED, END),
    },
    # §17.2.1, RFC 6026 §7.1 (Figure 7 as amended).
    "invite_server": {
        (S.PROCEEDING, "request"): (S.PROCEEDING, ("resend_last",)),
        (S.PROCEEDING, "tu_1xx"): (S.PROCEEDING, ("send_input",)),
        (S.PROCEEDING, "tu_2xx"): (S.ACCEPTED, ("send_input",)),
        (S.PROCEEDING, "tu_final"): (S.COMPLETED, ("send_input",)),
        (S.ACCEPTED, "tu_2xx"): (S.ACCEPTED, ("send_input",)),
        (S.ACCEPTED, "ack"): (S.ACCEPTED, ("deliver",)),
        (S.ACCEPTED, "timer_L"): (S.TERMINATED, END),
        (S.COMPLETED, "request"): (S.COMPLETED, ("resend_last",)),
        (S.COMPLETED, "ack"): (S.CONFIRMED, ()),
        (S.COMPLETED, "timer_G"): (S.COMPLETED, ("resend_last",)),
        (S.COMPLETED, "timer_H"): (S.TERMINATED, TIMEOUT),
        (S.CONFIRMED, "timer_I"): (S.TERMINATED, END),
    },
    # §17.2.2 (Figure 8).
    "non_invite_server": {
        (S.TRYING, "tu_1xx"): (S.PROCEEDING, ("send_input",)),
        (S.TRYING, "tu_2xx"): (S.COMPLETED, ("send_input",)),
        (S.TRYING, "tu_final"): (S.COMPLETED, ("send_input",)),
        (S.PROCEEDING, "request"): (S.PROCEEDING, ("resend_last",)),
        (S.PROCEEDING, "tu_1xx"): (S.PROCEEDING, ("send_input",)),
        (S.PROCEEDING, "tu_2xx"): (S.COMPLETED, ("send_input",)),
        (S.PROCEEDING, "tu_final"): (S.COMPLETED, ("send_input",)),
        (S.COMPLETED, "request"): (S.COMPLETED, ("resend_last",)),
        (S.COMPLETED, "timer_J"): (S.TERMINATED, END),
    },
}

# Timers running in each state: (unreliable, reliable). Retransmission timers A, E and G
# only run on unreliable transports.
ARMED: dict[str, dict[State, tuple[set[str], set[str]]]] = {
    "invite_client": {
        S.CALLING: ({"A", "B"}, {"B"}),
        S.PROCEEDING: (set(), set()),
        S.ACCEPTED: ({"M"}, {"M"}),
        S.COMPLETED: ({"D"}, {"D"}),
        S.TERMINATED: (set(), set()),
    },
    "non_invite_client": {
        S.TRYING: ({"E", "F"}, {"F"}),
        S.PROCEEDING: ({"E", "F"}, {"F"}),
        S.COMPLETED: ({"K"}, {"K"}),
        S.TERMINATED: (set(), set()),
    },
    "invite_server": {
        S.PROCEEDING: (set(), set()),
        S.ACCEPTED: ({"L"}, {"L"}),
        S.COMPLETED: ({"G", "H"}, {"H"}),
        S.CONFIRMED: ({"I"}, {"I"}),
        S.TERMINATED: (set(), set()),
    },
    "non_invite_server": {
        S.TRYING: (set(), set()),
        S.PROCEEDING: (set(), set()),
        S.COMPLETED: ({"J"}, {"J"}),
        S.TERMINATED: (set(), set()),
    },
}


def spec_for(kind: str, reliable: bool) -> Spec:
    """SPEC, less the retransmission timers' entries on a reliable transport."""
    if not reliable:
        return SPEC[kind]
    return {
        key: value
        for key, value in SPEC[kind].items()
        if key[1].removeprefix("timer_") not in RETRANSMISSION_TIMERS
    }


def armed(kind: str, state: State, reliable: bool) -> set[str]:
    return ARMED[kind][state][1 if reliable else 0]


# -- a harness that drives one machine through its public API ---------------------------


@dataclass
class Harness:
    kind: str
    reliable: bool
    now: float = 0.0
    extra: tuple[str, ...] = ()  # more header lines for the request
    request: Request = field(init=False)
    txn: Transaction = field(init=False)
    last_sent: Response | None = None  # server: the last response that went out
    ack: Request | None = None  # client: the ACK sent for a non-2xx
    final: Response | None = None  # client: the non-2xx final received
    log: list[Action] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.request = make(METHOD[self.kind], extra=self.extra)
        self.txn = CLASSES[self.kind](self.request, self.reliable)

    @property
    def client(self) -> ClientTransaction:
        assert isinstance(self.txn, ClientTransaction)
        return self.txn

    @property
    def invite_client(self) -> InviteClientTransaction:
        assert isinstance(self.txn, InviteClientTransaction)
        return self.txn

    @property
    def server(self) -> ServerTransaction:
        assert isinstance(self.txn, ServerTransaction)
        return self.txn

    def _note(self, actions: list[Action]) -> list[Action]:
        self.log += actions
        for action in actions:
            if isinstance(action, Send) and isinstance(action.message, Response):
                self.last_sent = action.message
            if (
                isinstance(action, Send)
                and isinstance(action.message, Request)
                and action.message.method == "ACK"
            ):
                self.ack = action.message
        return actions

    def start(self) -> list[Action]:
        return self._note(self.client.start(self.now))

    def receive(self, status: int) -> tuple[Response, list[Action]]:
        """A response from the network (a new object each time, as off the wire)."""
        response = reparse(self.request.response(status))
        assert isinstance(response, Response)
        if status >= 300:
            self.final = response
        return response, self._note(self.client.on_response(response, self.now))

    def respond(self, status: int) -> tuple[Response, list[Action]]:
        response = self.request.response(status)
        return response, self._note(self.server.respond(response, self.now))

    def retransmission(self) -> tuple[Request, list[Action]]:
        request = reparse(self.request)
        return request, self._note(self.server.on_retransmission(request, self.now))

    def make_ack(self) -> Request:
        """The ACK a UAC sends: for a non-2xx, §17.1.1.3; for a 2xx, a new branch."""
        last = self.last_sent
        if last is not None and last.status >= 300:
            ack = ack_for(self.request, last)
        else:
            to = last.get("to") if last is not None else self.request.get("to")
            ack = make("ACK", branch="z9hG4bKack2xx", to=to or "<sip:bob@example.com>", cseq=7)
        return reparse(ack)

    def send_ack(self) -> tuple[Request, list[Action]]:
        ack = self.make_ack()
        return ack, self._note(self.server.on_retransmission(ack, self.now))

    def advance(self, now: float) -> list[Action]:
        self.now = now
        return self._note(self.txn.on_timer(now))

    def expire(self) -> list[Action]:
        """Run to the next deadline."""
        when = self.txn.deadline()
        assert when is not None
        return self.advance(when)

    def state(self) -> State:
        return self.txn.state

    def timers(self) -> set[str]:
        return set(self.txn._timers)

    def run(self, until: float) -> list[tuple[float, list[Action]]]:
        """Fire timers at each deadline up to ``until``: [(instant, actions)]."""
        out: list[tuple[float, list[Action]]] = []
        while (when := self.txn.deadline()) is not None and when <= until:
            out.append((when, self.advance(when)))
        return out


# Public-API paths into each reachable state.
Step = Callable[[Harness], object]


def _start(h: Harness) -> object:
    return h.start()


def _rx(status: int) -> Step:
    return lambda h: h.receive(status)


def _tu(status: int) -> Step:
    return lambda h: h.respond(status)


def _ack(h: Harness) -> object:
    return h.send_ack()


def _expire(h: Harness) -> object:
    return h.expire()


PATHS: dict[str, dict[State, list[Step]]] = {
    "invite_client": {
        S.CALLING: [_start],
        S.PROCEEDING: [_start, _rx(180)],
        S.ACCEPTED: [_start, _rx(200)],
        S.COMPLETED: [_start, _rx(486)],
        S.TERMINATED: [_start, _rx(486), _expire],
    },
    "non_invite_client": {
        S.TRYING: [_start],
        S.PROCEEDING: [_start, _rx(100)],
        S.COMPLETED: [_start, _rx(404)],
        S.TERMINATED: [_start, _rx(404), _expire],
    },
    "invite_server": {
        S.PROCEEDING: [_tu(180)],
        S.ACCEPTED: [_tu(200)],
        S.COMPLETED: [_tu(486)],
        S.CONFIRMED: [_tu(486), _ack],
        S.TERMINATED: [_tu(486), _ack, _expire],
    },
    "non_invite_server": {
        S.TRYING: [],
        S.PROCEEDING: [_tu(100)],
        S.COMPLETED: [_tu(200)],
        S.TERMINATED: [_tu(200), _expire],
    },
}

STATUS = {"1xx": 180, "2xx": 200, "final": 486}
NON_INVITE_STATUS = {"1xx": 100, "2xx": 200, "final": 404}


def drive(kind: str, reliable: bool, state: State) -> Harness:
    h = Harness(kind, reliable)
    for step in PATHS[kind][state]:
        step(h)
    assert h.txn.state is state
    assert h.timers() == armed(kind, state, reliable)
    return h


def feed(h: Harness, name: str) -> tuple[Message | None, list[Action], bool]:
    """Apply input ``name``: through the public API when it exists for this machine.

    Returns the input message, the actions, and whether the public API was used. A timer
    goes through ``on_timer`` when it is the next one due; a timer that is not running
    cannot be fired by ``on_timer`` at all, and a message kind the machine has no method
    for (a response to a server) cannot be given to it, so those go to the table directly.
    """
    client = isinstance(h.txn, ClientTransaction)
    status = (STATUS if h.request.method == "INVITE" else NON_INVITE_STATUS).copy()
    status.update({"tu_" + k: v for k, v in status.items()})
    if status["tu_1xx"] == 180:
        status["tu_1xx"] = 183
    if name.startswith("timer_"):
        timer = name[6:]
        if timer in h.txn._timers and h.txn._timers[timer] == h.txn.deadline():
            return None, h.advance(max(h.now, h.txn._timers[timer])), True
        return None, h.txn._input(name, h.now, None), False
    if client and name in CLIENT_INPUTS:
        response, actions = h.receive(status[name])
        return response, actions, True
    if not client and name == "request":
        request, actions = h.retransmission()
        return request, actions, True
    if not client and name == "ack":
        ack, actions = h.send_ack()
        return ack, actions, True
    if not client and name.startswith("tu_"):
        response, actions = h.respond(status[name])
        return response, actions, True
    message: Message
    if name in CLIENT_INPUTS or name.startswith("tu_"):
        message = h.request.response(status[name])
    elif name == "ack":
        message = h.make_ack()
    else:
        message = h.request
    return message, h.txn._input(name, h.now, message), False


def check_ack(ack: Message, request: Request, response: Response) -> None:
    """§17.1.1.3: the ACK for a non-2xx final response."""
    assert isinstance(ack, Request)
    assert ack.method == "ACK"
    assert ack.uri_text == request.uri_text
    assert len(ack.vias) == 1
    assert str(ack.via) == str(request.via)
    assert ack.via.branch == request.via.branch
    assert ack.get("to") == response.get("to")
    assert ack.to.tag is not None
    assert ack.to.tag == response.to.tag
    assert ack.get("from") == request.get("from")
    assert ack.call_id == request.call_id
    assert ack.cseq.number == request.cseq.number
    assert ack.cseq.method == "ACK"
    assert ack.get_all("route") == request.get_all("route")
    assert ack.body == b""
    again = parse_message(bytes(ack))
    assert isinstance(again, Request)
    again.check()


def check_actions(
    h: Harness,
    expected: tuple[str, ...],
    message: Message | None,
    actions: list[Action],
    last_sent_before: Response | None,
    ack_before: Request | None,
) -> None:
    want: list[tuple[type, Message | None]] = []
    for symbol in expected:
        if symbol == "deliver":
            want.append((Deliver, message))
        elif symbol == "send_request":
            want.append((Send, h.request))
        elif symbol == "send_ack":
            want.append((Send, ack_before or h.ack))
        elif symbol == "send_input":
            want.append((Send, message))
        elif symbol == "resend_last":
            if last_sent_before is not None:
                want.append((Send, last_sent_before))
        elif symbol == "timeout":
            want.append((Timeout, None))
        else:
            assert symbol == "terminated"
            want.append((Terminated, None))
    assert kinds(actions) == [kind for kind, _ in want], actions
    for action, (_, msg) in zip(actions, want, strict=True):
        if isinstance(action, Send | Deliver):
            assert action.message is msg
    if "send_ack" in expected:
        assert h.final is not None
        assert h.ack is not None
        check_ack(h.ack, h.request, h.final)


# -- the spec matches the table, and the table uses only inputs its API can give -----------


@pytest.mark.parametrize("kind", KINDS)
def test_spec_is_the_table(kind: str) -> None:
    cls = {
        "invite_client": InviteClientTransaction,
        "non_invite_client": NonInviteClientTransaction,
        "invite_server": InviteServerTransaction,
        "non_invite_server": NonInviteServerTransaction,
    }[kind]
    assert set(cls.TABLE) == set(SPEC[kind])
    for key, (state, _) in SPEC[kind].items():
        assert cls.TABLE[key][0] is state
    api = CLIENT_INPUTS if issubclass(cls, ClientTransaction) else SERVER_INPUTS
    for _, name in cls.TABLE:
        assert name in api or name.startswith("timer_")


def reachable(kind: str) -> list[State]:
    return list(PATHS[kind])


PAIRS = [
    pytest.param(
        kind, reliable, state, name, id=f"{kind}-{'rel' if reliable else 'udp'}-{state}-{name}"
    )
    for kind in KINDS
    for reliable in (False, True)
    for state in State
    for name in INPUTS
]


@pytest.mark.parametrize(("kind", "reliable", "state", "name"), PAIRS)
def test_every_state_input_pair(kind: str, reliable: bool, state: State, name: str) -> None:
    spec = spec_for(kind, reliable)
    if state not in PATHS[kind]:
        # A state this machine never enters: nothing it is fed does anything.
        assert not any(s is state or key[0] is state for key, (s, _) in SPEC[kind].items())
        h = Harness(kind, reliable)
        if isinstance(h.txn, ClientTransaction):
            h.start()
        h.txn.state = state
        message, actions, _ = feed(h, name)
        assert actions == []
        assert h.txn.state is state
        return
    h = drive(kind, reliable, state)
    h.now += 0.25  # inputs arrive a little after the state was entered
    before_deadline = h.txn.deadline()
    before_timers = dict(h.txn._timers)
    last_sent_before, ack_before = h.last_sent, h.ack
    timer = name.removeprefix("timer_") if name.startswith("timer_") else None
    if timer is not None and timer not in armed(kind, state, reliable):
        # Not running here, so on_timer can never fire it. The table may still list it:
        # only a retransmission timer, which a reliable transport never starts.
        assert timer not in h.timers()
        assert (state, name) not in spec
        if (state, name) in h.txn.TABLE:
            assert reliable
            assert timer in RETRANSMISSION_TIMERS
            return
    message, actions, public = feed(h, name)
    entry = spec.get((state, name))
    if entry is None:
        assert actions == [], f"{state}/{name} must be ignored"
        assert h.txn.state is state
        assert h.txn.deadline() == before_deadline
        assert h.txn._timers == before_timers
        return
    next_state, expected = entry
    if timer is not None:
        assert timer in armed(kind, state, reliable)
    if not public:
        # Only a timeout timer behind a retransmission timer (B, F, H over UDP) is not the
        # next one due; test_timeouts fires those through on_timer.
        assert not reliable
        assert timer in {"B", "F", "H"}
    assert h.txn.state is next_state
    check_actions(h, expected, message, actions, last_sent_before, ack_before)
    assert h.timers() == armed(kind, next_state, reliable)
    if next_state is S.TERMINATED:
        assert h.txn.terminated
        assert h.txn.deadline() is None
    elif timer is None and next_state is state:
        # A message absorbed in place restarts no timer.
        assert h.txn._timers == before_timers


def test_pairs_are_exhaustive() -> None:
    assert len(PAIRS) == 4 * 2 * len(State) * len(INPUTS)
    listed = {(k, key) for k in KINDS for key in SPEC[k]}
    covered = {(p.values[0], (p.values[2], p.values[3])) for p in PAIRS}
    assert listed <= covered


# -- timer values (RFC 3261 Table 4) ---------------------------------------------------


def test_constants() -> None:
    assert T1 == 0.5
    assert T2 == 4.0
    assert T4 == 5.0
    assert TIMER_B == 64 * T1 == 32.0


def test_invite_client_udp_retransmits_with_doubling_a_until_b() -> None:
    h = Harness("invite_client", reliable=False, now=100.0)
    first = h.start()
    assert sends(first) == [h.request]
    assert h.txn.deadline() == 100.5
    assert h.txn._timers == {"A": 100.5, "B": 132.0}
    events = h.run(until=1000.0)
    retransmits = [t for t, actions in events if sends(actions) == [h.request]]
    assert [t - 100 for t in retransmits] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    # No T2 cap for INVITE: the intervals keep doubling past 4 s.
    gaps = [b - a for a, b in itertools.pairwise([100.0, *retransmits])]
    assert gaps == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    last_t, last = events[-1]
    assert last_t == 132.0
    assert kinds(last) == [Timeout, Terminated]
    assert sum(isinstance(a, Send) for a in h.log) == 7  # the request and 6 retransmissions
    assert h.txn.terminated
    assert h.txn.deadline() is None
    assert h.advance(2000.0) == []


def test_invite_client_a_is_not_capped() -> None:
    h = Harness("invite_client", reliable=False)
    h.start()
    h.run(until=31.5)
    assert h.txn._timers["A"] == 31.5 + 32.0
    assert h.txn.deadline() == 32.0


def test_invite_client_reliable_has_only_b() -> None:
    h = Harness("invite_client", reliable=True)
    assert sends(h.start()) == [h.request]
    assert h.txn.deadline() == 32.0
    assert h.advance(31.999) == []
    assert kinds(h.advance(32.0)) == [Timeout, Terminated]
    assert sum(isinstance(a, Send) for a in h.log) == 1


@pytest.mark.parametrize("reliable", [False, True])
def test_invite_client_provisional_stops_a_and_b(reliable: bool) -> None:
    h = Harness("invite_client", reliable)
    h.start()
    h.advance(0.5)
    h.now = 0.75
    h.receive(180)
    assert h.txn.state is S.PROCEEDING
    assert h.txn.deadline() is None
    assert h.advance(100.0) == []  # the TU's Timer C, not ours, ends a Proceeding INVITE
    assert h.txn.state is S.PROCEEDING


@pytest.mark.parametrize(("reliable", "d"), [(False, 32.0), (True, 0.0)])
def test_timer_d(reliable: bool, d: float) -> None:
    h = Harness("invite_client", reliable)
    h.start()
    h.now = 2.0
    h.receive(486)
    assert h.txn.state is S.COMPLETED
    assert h.txn.deadline() == 2.0 + d
    if d:
        assert h.advance(2.0 + d - 0.001) == []
        assert h.txn.state is S.COMPLETED
    assert kinds(h.advance(2.0 + d)) == [Terminated]
    assert h.txn.terminated


@pytest.mark.parametrize("reliable", [False, True])
def test_timer_m(reliable: bool) -> None:
    h = Harness("invite_client", reliable)
    h.start()
    h.now = 3.0
    h.receive(200)
    assert h.txn.state is S.ACCEPTED
    assert h.txn.deadline() == 35.0
    h.now = 20.0
    h.receive(200)
    assert h.txn.deadline() == 35.0  # a 2xx retransmission does not restart M
    assert h.advance(34.9) == []
    assert kinds(h.advance(35.0)) == [Terminated]


def test_non_invite_client_udp_e_doubles_to_t2_until_f() -> None:
    h = Harness("non_invite_client", reliable=False, now=10.0)
    assert sends(h.start()) == [h.request]
    assert h.txn._timers == {"E": 10.5, "F": 42.0}
    events = h.run(until=1000.0)
    retransmits = [t - 10 for t, actions in events if sends(actions) == [h.request]]
    assert retransmits == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert events[-1][0] == 42.0
    assert kinds(events[-1][1]) == [Timeout, Terminated]
    assert sum(isinstance(a, Send) for a in h.log) == 11
    assert h.txn.deadline() is None


@pytest.mark.parametrize("provisional_at", [0.1, 2.0, 9.0])
def test_non_invite_client_e_is_t2_in_proceeding(provisional_at: float) -> None:
    h = Harness("non_invite_client", reliable=False)
    h.start()
    h.run(until=provisional_at)
    pending = h.txn._timers["E"]
    h.now = provisional_at
    _, actions = h.receive(100)
    assert kinds(actions) == [Deliver]
    assert h.txn.state is S.PROCEEDING
    assert h.txn._timers["E"] == pending  # entering Proceeding does not reset E
    events = h.run(until=1000.0)
    retransmits = [t for t, actions in events if sends(actions) == [h.request]]
    assert retransmits[0] == pending
    assert all(b - a == T2 for a, b in itertools.pairwise(retransmits))
    assert retransmits[-1] > 32.0 - T2
    assert kinds(events[-1][1]) == [Timeout, Terminated]
    assert events[-1][0] == 32.0


def test_non_invite_client_reliable_has_only_f() -> None:
    h = Harness("non_invite_client", reliable=True)
    h.start()
    assert h.txn.deadline() == 32.0
    h.now = 1.0
    h.receive(100)
    assert h.txn.deadline() == 32.0  # F keeps running in Proceeding
    assert h.advance(31.9) == []
    assert kinds(h.advance(32.0)) == [Timeout, Terminated]
    assert sum(isinstance(a, Send) for a in h.log) == 1


@pytest.mark.parametrize(("reliable", "k"), [(False, T4), (True, 0.0)])
@pytest.mark.parametrize("status", [200, 404])
def test_timer_k(reliable: bool, k: float, status: int) -> None:
    h = Harness("non_invite_client", reliable)
    h.start()
    h.now = 1.25
    h.receive(status)
    assert h.txn.state is S.COMPLETED
    assert h.txn.deadline() == 1.25 + k
    h.now = 1.25 + k / 2
    _, actions = h.receive(status)  # a retransmission, absorbed
    assert actions == []
    assert h.txn.deadline() == 1.25 + k
    assert kinds(h.advance(1.25 + k)) == [Terminated]


def test_invite_server_udp_g_doubles_to_t2_until_h() -> None:
    h = Harness("invite_server", reliable=False, now=5.0)
    final, actions = h.respond(486)
    assert sends(actions) == [final]
    assert h.txn._timers == {"G": 5.5, "H": 37.0}
    events = h.run(until=1000.0)
    resends = [t - 5 for t, actions in events if sends(actions) == [final]]
    assert resends == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert events[-1][0] == 37.0
    assert kinds(events[-1][1]) == [Timeout, Terminated]
    assert all(m is final for m in sends(h.log))
    assert h.txn.deadline() is None


def test_invite_server_reliable_has_only_h() -> None:
    h = Harness("invite_server", reliable=True)
    h.respond(180)
    assert h.txn.deadline() is None
    h.now = 1.0
    h.respond(603)
    assert h.txn.deadline() == 33.0
    assert h.advance(32.9) == []
    assert kinds(h.advance(33.0)) == [Timeout, Terminated]


@pytest.mark.parametrize(("reliable", "i"), [(False, T4), (True, 0.0)])
def test_timer_i(reliable: bool, i: float) -> None:
    h = Harness("invite_server", reliable)
    h.respond(486)
    h.now = 2.5
    ack, actions = h.send_ack()
    assert actions == []  # a non-2xx ACK is absorbed, not passed up
    assert h.txn.state is S.CONFIRMED
    assert h.txn.deadline() == 2.5 + i
    h.now = 2.5 + i / 2
    assert h.server.on_retransmission(ack, h.now) == []  # ACK retransmissions absorbed
    assert h.retransmission()[1] == []
    assert kinds(h.advance(2.5 + i)) == [Terminated]


@pytest.mark.parametrize("reliable", [False, True])
def test_timer_l(reliable: bool) -> None:
    h = Harness("invite_server", reliable)
    h.now = 1.0
    h.respond(200)
    assert h.txn.deadline() == 33.0
    assert h.advance(32.5) == []
    assert kinds(h.advance(33.0)) == [Terminated]


@pytest.mark.parametrize(("reliable", "j"), [(False, 32.0), (True, 0.0)])
@pytest.mark.parametrize("status", [200, 404])
def test_timer_j(reliable: bool, j: float, status: int) -> None:
    h = Harness("non_invite_server", reliable)
    h.now = 4.0
    h.respond(status)
    assert h.txn.state is S.COMPLETED
    assert h.txn.deadline() == 4.0 + j
    if j:
        assert h.advance(4.0 + j - 0.5) == []
    assert kinds(h.advance(4.0 + j)) == [Terminated]


@pytest.mark.parametrize("kind", KINDS)
def test_no_retransmission_timers_on_reliable_transports(kind: str) -> None:
    """Whatever happens, on a reliable transport a timer never sends anything."""
    for state in PATHS[kind]:
        h = drive(kind, True, state)
        assert not h.timers() & RETRANSMISSION_TIMERS
        for action in h.advance(10_000.0):
            assert not isinstance(action, Send)


def test_late_timer_call_fires_each_due_timer_once_then_times_out() -> None:
    h = Harness("invite_client", reliable=False)
    h.start()
    actions = h.advance(500.0)  # the event loop was stuck: no burst of retransmissions
    assert kinds(actions) == [Send, Timeout, Terminated]
    assert h.txn.deadline() is None


# -- ACK for non-2xx (§17.1.1.3) --------------------------------------------------------

ROUTED = (
    "Route: <sip:p1.example.com;lr>",
    "Route: <sip:p2.example.com;lr>, <sip:p3.example.com;lr>",
    "Content-Type: application/sdp",
)


@pytest.mark.parametrize(
    "via",
    [
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtx1",
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtx1, SIP/2.0/TCP 198.51.100.2;branch=z9hG4bKu",
    ],
    ids=["one-via", "comma-joined-vias"],
)
def test_ack_for_non_2xx(via: str) -> None:
    request = make(
        "INVITE", via=via, extra=(*ROUTED, "Via: SIP/2.0/UDP 203.0.113.9;branch=z9hG4bKw")
    )
    assert len(request.vias) >= 2
    response = reparse(request.response(486, to_tag="t486"))
    assert isinstance(response, Response)
    ack = ack_for(request, response)
    check_ack(ack, request, response)
    assert ack.to.tag == "t486"
    assert ack.get_all("route") == [
        "<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>",
    ]  # fmt: skip
    assert ack.get("cseq") == "7 ACK"
    assert ack.get("max-forwards") == "70"
    assert ack.get("contact") is None
    assert ack.get("content-type") is None


def test_ack_to_keeps_the_response_to_verbatim() -> None:
    request = make("INVITE", to='"Bob" <sip:bob@example.com>')
    response = request.response(404, to_tag="zz")
    ack = ack_for(request, response)
    assert ack.get("to") == '"Bob" <sip:bob@example.com>;tag=zz'


@pytest.mark.parametrize("reliable", [False, True])
@pytest.mark.parametrize("status", [300, 486, 503, 699])
def test_invite_client_acks_non_2xx_once_and_resends_the_same_ack(
    reliable: bool, status: int
) -> None:
    h = Harness("invite_client", reliable, extra=ROUTED)
    h.start()
    h.now = 1.0
    response, actions = h.receive(status)
    assert kinds(actions) == [Send, Deliver]
    ack = message_of(actions[0])
    assert message_of(actions[1]) is response
    check_ack(ack, h.request, response)
    assert h.invite_client.ack is ack
    for t in (1.5, 2.0, 5.0):
        h.now = t
        again, actions = h.receive(status)
        assert again is not response
        assert kinds(actions) == [Send]  # the same ACK again, and the TU is not told again
        assert message_of(actions[0]) is ack
        assert bytes(message_of(actions[0])) == bytes(ack)
    for extra in (100, 180, 200):
        assert h.receive(extra)[1] == []
    assert h.txn.state is S.COMPLETED


def test_ack_is_built_from_the_first_final_only() -> None:
    h = Harness("invite_client", reliable=False)
    h.start()
    first, _ = h.receive(486)
    ack = h.ack
    assert ack is not None
    _, actions = h.receive(486)
    assert sends(actions) == [ack]
    assert ack.to.tag == first.to.tag


def test_no_ack_for_2xx() -> None:
    h = Harness("invite_client", reliable=False)
    h.start()
    _, actions = h.receive(200)
    assert kinds(actions) == [Deliver]
    assert h.invite_client.ack is None


# -- 2xx handling (RFC 6026) ------------------------------------------------------------


@pytest.mark.parametrize("reliable", [False, True])
@pytest.mark.parametrize("provisional", [False, True])
def test_invite_client_accepted_delivers_every_2xx(reliable: bool, provisional: bool) -> None:
    h = Harness("invite_client", reliable)
    h.start()
    if provisional:
        h.receive(180)
    delivered = []
    for t in (1.0, 1.5, 2.5, 4.5, 8.5):
        h.now = t
        response, actions = h.receive(200)
        assert kinds(actions) == [Deliver]
        assert message_of(actions[0]) is response
        delivered.append(response)
    # A 2xx from another fork (another To tag) is delivered too.
    forked = h.request.response(200, to_tag="fork2")
    actions = h.client.on_response(forked, h.now)
    assert [a.message for a in actions if isinstance(a, Deliver)] == [forked]
    # Late provisional or non-2xx answers are dropped; no ACK from the transaction.
    assert h.receive(180)[1] == []
    assert h.receive(486)[1] == []
    assert h.invite_client.ack is None
    assert h.txn.state is S.ACCEPTED
    assert not any(isinstance(a, Send) for a in h.log[1:])


@pytest.mark.parametrize("reliable", [False, True])
def test_invite_server_accepted_sends_tu_2xx_and_passes_acks_up(reliable: bool) -> None:
    h = Harness("invite_server", reliable)
    h.respond(180)
    ok, actions = h.respond(200)
    assert sends(actions) == [ok]
    assert h.txn.state is S.ACCEPTED
    assert h.timers() == {"L"}  # the transaction does not retransmit a 2xx itself
    assert h.advance(31.0) == []
    for t in (0.5, 1.5, 3.5):  # the TU's own retransmissions go out
        h.now = t
        again = h.request.response(200)
        assert sends(h.server.respond(again, t)) == [again]
    _, actions = h.retransmission()  # INVITE retransmissions are absorbed
    assert actions == []
    ack, actions = h.send_ack()
    assert kinds(actions) == [Deliver]
    assert message_of(actions[0]) is ack
    ack2 = reparse(ack)
    assert isinstance(ack2, Request)
    assert [message_of(a) for a in h.server.on_retransmission(ack2, h.now)] == [ack2]
    assert h.respond(486)[1] == []  # a final after a 2xx goes nowhere
    assert h.respond(183)[1] == []
    assert h.txn.state is S.ACCEPTED


# -- server absorption of retransmitted requests ---------------------------------------


@pytest.mark.parametrize("reliable", [False, True])
def test_invite_server_proceeding_resends_last_provisional(reliable: bool) -> None:
    h = Harness("invite_server", reliable)
    assert h.retransmission()[1] == []  # nothing sent yet: nothing to resend
    trying, _ = h.respond(100)
    assert sends(h.retransmission()[1]) == [trying]
    ringing, _ = h.respond(180)
    progress, _ = h.respond(183)
    for _ in range(3):
        assert sends(h.retransmission()[1]) == [progress]
    assert ringing is not progress
    assert h.txn.state is S.PROCEEDING
    assert h.txn.deadline() is None


@pytest.mark.parametrize("reliable", [False, True])
def test_invite_server_completed_resends_final(reliable: bool) -> None:
    h = Harness("invite_server", reliable)
    h.respond(180)
    final, _ = h.respond(486)
    before = dict(h.txn._timers)
    for _ in range(3):
        assert sends(h.retransmission()[1]) == [final]
    assert h.txn._timers == before
    assert h.respond(200)[1] == []  # the TU cannot change its mind
    assert h.respond(180)[1] == []


@pytest.mark.parametrize("reliable", [False, True])
def test_non_invite_server_absorption(reliable: bool) -> None:
    h = Harness("non_invite_server", reliable)
    assert h.retransmission()[1] == []  # Trying: discarded
    assert h.txn.state is S.TRYING
    trying, _ = h.respond(100)
    assert h.state() is S.PROCEEDING
    assert sends(h.retransmission()[1]) == [trying]
    final, _ = h.respond(200)
    assert h.state() is S.COMPLETED
    assert sends(h.retransmission()[1]) == [final]
    assert h.respond(404)[1] == []  # other finals from the TU are discarded
    assert h.respond(100)[1] == []
    assert sends(h.retransmission()[1]) == [final]


def test_ack_on_a_non_invite_server_is_ignored() -> None:
    h = Harness("non_invite_server", reliable=False)
    h.respond(200)
    ack = make("ACK", cseq_method="ACK", cseq=7)
    assert h.server.on_retransmission(ack, 0.0) == []
    assert h.txn.state is S.COMPLETED


# -- timeouts, termination, transport errors -------------------------------------------


@pytest.mark.parametrize("reliable", [False, True])
@pytest.mark.parametrize(
    ("kind", "steps", "timeout_at"),
    [
        ("invite_client", [_start], 32.0),  # B
        ("non_invite_client", [_start], 32.0),  # F in Trying
        ("non_invite_client", [_start, _rx(100)], 32.0),  # F in Proceeding
        ("invite_server", [_tu(500)], 32.0),  # H
    ],
)
def test_timeouts(kind: str, steps: list[Step], timeout_at: float, reliable: bool) -> None:
    h = Harness(kind, reliable)
    for step in steps:
        step(h)
    events = h.run(until=10_000.0)
    assert events[-1][0] == timeout_at
    assert kinds(events[-1][1])[-2:] == [Timeout, Terminated]
    assert sum(isinstance(a, Timeout) for a in h.log) == 1
    assert sum(isinstance(a, Terminated) for a in h.log) == 1
    assert h.txn.terminated
    assert h.txn.state is S.TERMINATED
    # After the end: nothing does anything.
    assert h.advance(20_000.0) == []
    if isinstance(h.txn, ClientTransaction):
        for status in (100, 200, 486):
            assert h.receive(status)[1] == []
        assert h.client.on_transport_error(h.now) == []
    else:
        assert h.retransmission()[1] == []
        assert h.send_ack()[1] == []
        assert h.respond(200)[1] == []
    assert h.txn.state is S.TERMINATED


@pytest.mark.parametrize("reliable", [False, True])
@pytest.mark.parametrize("kind", ["invite_client", "non_invite_client"])
def test_on_transport_error(kind: str, reliable: bool) -> None:
    for state in PATHS[kind]:
        h = drive(kind, reliable, state)
        actions = h.client.on_transport_error(h.now)
        if state is S.TERMINATED:
            assert actions == []
            continue
        assert kinds(actions) == [Timeout, Terminated]
        assert h.txn.terminated
        assert h.txn.deadline() is None
        assert h.client.on_transport_error(h.now) == []
        assert h.advance(1000.0) == []
        assert h.receive(200)[1] == []


def test_client_before_start_is_inert() -> None:
    txn = InviteClientTransaction(make(), reliable=False)
    assert txn.deadline() is None
    assert txn.on_timer(100.0) == []
    assert txn.on_response(make().response(200), 0.0) == []


@pytest.mark.parametrize("kind", KINDS)
def test_terminated_is_reported_once(kind: str) -> None:
    for reliable in (False, True):
        h = drive(kind, reliable, S.TERMINATED)
        assert sum(isinstance(a, Terminated) for a in h.log) == 1
        assert isinstance(h.log[-1], Terminated)


# -- input classification and factories -------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name"),
    [(100, "1xx"), (180, "1xx"), (199, "1xx"), (200, "2xx"), (299, "2xx"), (300, "final"),
     (404, "final"), (699, "final")],
)  # fmt: skip
def test_input_of(status: int, name: str) -> None:
    assert input_of(Response(status, "x")) == name


@pytest.mark.parametrize(
    ("method", "client_cls", "server_cls"),
    [
        ("INVITE", InviteClientTransaction, InviteServerTransaction),
        ("OPTIONS", NonInviteClientTransaction, NonInviteServerTransaction),
        ("BYE", NonInviteClientTransaction, NonInviteServerTransaction),
        ("CANCEL", NonInviteClientTransaction, NonInviteServerTransaction),
    ],
)
def test_factories(method: str, client_cls: type, server_cls: type) -> None:
    request = make(method)
    for reliable in (False, True):
        c = client_transaction(request, reliable)
        s = server_transaction(request, reliable)
        assert type(c) is client_cls
        assert type(s) is server_cls
        assert c.key == client_key(request)
        assert s.key == server_key(request)
        assert c.reliable is s.reliable is reliable
        assert c.request is s.request is request
        assert not s.terminated


# -- matching keys (§17.1.3, §17.2.3) -----------------------------------------------------


def test_server_key_rfc3261() -> None:
    invite = make("INVITE")
    assert server_key(invite).startswith("z9hG4bKtx1|192.0.2.1:5060|")
    assert server_key(invite).endswith("|INVITE")
    assert server_key(reparse(invite)) == server_key(invite)
    # The ACK of a non-2xx carries the INVITE's branch and maps to the INVITE's key.
    ack = ack_for(invite, invite.response(486))
    assert server_key(ack) == server_key(invite)
    # CANCEL shares the branch but is its own transaction.
    cancel = make("CANCEL")
    assert server_key(cancel) != server_key(invite)
    assert server_key(cancel).endswith("|CANCEL")
    # Another branch, or another sent-by, is another transaction.
    assert server_key(make(branch="z9hG4bKother")) != server_key(invite)
    for via in (
        "SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKtx1",
        "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKtx1",
        "SIP/2.0/UDP host.example.com:5060;branch=z9hG4bKtx1",
    ):
        assert server_key(make(via=via)) != server_key(invite), via
    # Host names compare case-insensitively; the transport is not part of sent-by matching.
    a = make(via="SIP/2.0/UDP Host.Example.COM:5060;branch=z9hG4bKtx1")
    b = make(via="SIP/2.0/TCP host.example.com:5060;branch=z9hG4bKtx1")
    assert server_key(a) == server_key(b)
    v6a = make(via="SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKtx1")
    assert "2001:db8::1" in server_key(v6a)
    # Non-INVITE requests: each method its own key, retransmissions the same.
    options = make("OPTIONS")
    assert server_key(options) != server_key(invite)
    assert server_key(options) == server_key(make("OPTIONS"))
    # A 2xx ACK has a new branch: not the INVITE's transaction.
    assert server_key(make("ACK", branch="z9hG4bKnew")) != server_key(invite)
    # A retransmission repeats Call-ID and CSeq; a request that reuses the branch with
    # another Call-ID or CSeq number is a new one (RFC 4475 §3.3.13's two REGISTERs).
    assert server_key(make(from_tag="zz")) == server_key(invite)
    assert server_key(make(call_id="other")) != server_key(invite)
    assert server_key(make(cseq=99)) != server_key(invite)
    # CANCEL names the transaction of the INVITE it cancels.
    assert server_key(cancel, method="INVITE") == server_key(invite)


LEGACY = "SIP/2.0/UDP 192.0.2.1:5060;branch=1234abcd"


@pytest.mark.parametrize(
    "via",
    [LEGACY, "SIP/2.0/UDP 192.0.2.1:5060", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK"],
    ids=["old-branch", "no-branch", "bare-cookie"],
)
def test_server_key_rfc2543(via: str) -> None:
    invite = make("INVITE", via=via)
    key = server_key(invite)
    assert key.startswith("2543|")
    assert server_key(reparse(invite)) == key
    # The ACK for a non-2xx: same Request-URI, From tag, Call-ID, CSeq number and Via,
    # plus the To tag the response added; it still matches the INVITE.
    response = invite.response(486, to_tag="srv")
    ack = ack_for(invite, response)
    assert ack.to.tag == "srv"
    assert server_key(ack) == key
    ack_wire = reparse(ack)
    assert isinstance(ack_wire, Request)
    assert server_key(ack_wire) == key
    # An INVITE retransmission that already has a To tag is still the same transaction.
    assert server_key(make("INVITE", via=via, to="<sip:bob@example.com>;tag=srv")) == key
    # CANCEL has its own transaction; so does a non-INVITE.
    assert server_key(make("CANCEL", via=via)) != key
    assert server_key(make("OPTIONS", via=via)) != key
    # Each matched field matters.
    for other in (
        make("INVITE", via=via, uri="sip:carol@example.com"),
        make("INVITE", via=via, from_tag="zz"),
        make("INVITE", via=via, call_id="call-2@example.com"),
        make("INVITE", via=via, cseq=8),
        make("INVITE", via=via.replace("192.0.2.1", "192.0.2.2")),
    ):
        assert server_key(other) != key
    # A cookie branch never collides with the RFC 2543 form.
    assert server_key(make("INVITE")) != key


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS", "BYE", "REGISTER", "CANCEL"])
def test_client_key_of_request_and_responses(method: str) -> None:
    request = make(method)
    key = client_key(request)
    assert key == f"{BRANCH}|{method}"
    for status in (100, 180, 200, 302, 486, 503, 603):
        response = request.response(status)
        assert client_key(response) == key
        wire_response = reparse(response)
        assert client_key(wire_response) == key
    txn = client_transaction(request, reliable=False)
    assert txn.key == key


def test_client_key_separates_cancel_and_branches() -> None:
    invite = make("INVITE")
    cancel = make("CANCEL")
    assert client_key(invite) != client_key(cancel)
    assert client_key(invite.response(200)) != client_key(cancel.response(200))
    assert client_key(make("INVITE", branch="z9hG4bKb2")) != client_key(invite)
    # The ACK we send for a non-2xx belongs with the INVITE.
    assert client_key(ack_for(invite, invite.response(404))) == client_key(invite)


def test_transaction_keys_use_the_top_via() -> None:
    request = make(
        "INVITE",
        via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtop, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKlow",
    )
    assert client_key(request).startswith("z9hG4bKtop|")
    assert server_key(request).startswith("z9hG4bKtop|")
    built = make_request(
        "OPTIONS",
        "sip:bob@example.com",
        [
            ("Via", "SIP/2.0/TCP 198.51.100.7;branch=z9hG4bKmade"),
            ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbelow"),
            ("Call-ID", "built@example.com"),
            ("CSeq", "1 OPTIONS"),
        ],
    )
    assert client_key(built) == "z9hG4bKmade|OPTIONS"
    assert server_key(built).startswith("z9hG4bKmade|198.51.100.7")
    assert server_key(built).endswith("|OPTIONS")


# -- random sequences never raise and are silent after Terminated ------------------------

STATUSES = st.sampled_from([100, 180, 183, 200, 202, 301, 404, 486, 503, 603])


class TransactionMachine(RuleBasedStateMachine):
    """Any mix of inputs and timer advances, on any of the four machines."""

    h: Harness
    ended: bool
    ended_at: int
    responses: list[Response]

    @initialize(kind=st.sampled_from(KINDS), reliable=st.booleans(), t0=st.floats(0, 1e6))
    def setup(self, kind: str, reliable: bool, t0: float) -> None:
        self.h = Harness(kind, reliable, now=t0)
        self.ended = False
        self.responses = []
        if isinstance(self.h.txn, ClientTransaction):
            self.check(self.h.start())

    @property
    def is_client(self) -> bool:
        return isinstance(self.h.txn, ClientTransaction)

    def check(self, actions: list[Action], *, timer: bool = False) -> None:
        if self.ended:
            assert actions == [], f"actions after Terminated: {actions}"
            return
        for i, action in enumerate(actions):
            assert isinstance(action, Send | Deliver | Timeout | Terminated)
            if isinstance(action, Terminated):
                assert i == len(actions) - 1
                self.ended = True
            if isinstance(action, Timeout):
                assert actions[i + 1 :] and isinstance(actions[i + 1], Terminated)
            if isinstance(action, Send):
                if timer:
                    assert not self.h.reliable, "a retransmission on a reliable transport"
                if self.is_client:
                    msg = action.message
                    assert msg is self.h.request or (
                        isinstance(msg, Request) and msg.method == "ACK"
                    )
                else:
                    assert any(action.message is r for r in self.responses)
        assert self.h.txn.terminated == self.ended

    @rule(status=STATUSES, dt=st.floats(0, 3))
    def response(self, status: int, dt: float) -> None:
        self.h.now += dt
        if self.is_client:
            self.check(self.h.receive(status)[1])
        else:
            response, actions = self.h.respond(status)
            self.responses.append(response)
            self.check(actions)

    @rule()
    def retransmitted_request(self) -> None:
        if not self.is_client:
            self.check(self.h.retransmission()[1])

    @rule()
    def ack(self) -> None:
        if not self.is_client:
            self.check(self.h.send_ack()[1])

    @rule(dt=st.floats(0, 40))
    def advance(self, dt: float) -> None:
        now = self.h.now + dt
        self.check(self.h.advance(now), timer=True)
        when = self.h.txn.deadline()
        assert when is None or when > now  # everything due has fired

    @rule()
    def to_deadline(self) -> None:
        when = self.h.txn.deadline()
        if when is not None:
            self.check(self.h.advance(max(when, self.h.now)), timer=True)

    @rule()
    def transport_error(self) -> None:
        if self.is_client:
            self.check(self.h.client.on_transport_error(self.h.now))

    @invariant()
    def consistent(self) -> None:
        if not hasattr(self, "h"):
            return
        txn = self.h.txn
        assert txn.state in ARMED[self.h.kind]
        assert set(txn._timers) <= armed(self.h.kind, txn.state, self.h.reliable)
        if txn.terminated:
            assert txn.deadline() is None


TestRandomSequences = TransactionMachine.TestCase
TestRandomSequences.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
