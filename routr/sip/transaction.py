"""The four transaction state machines of RFC 3261 §17 (with RFC 6026's Accepted state).

Sans-IO: a transaction is fed inputs (a message, or ``on_timer(now)``) and returns
actions (:class:`Send`, :class:`Deliver`, :class:`Timeout`, :class:`Terminated`). Timers
are deadlines: ``deadline()`` says when the next one is due; there is no clock inside.

Each machine's transitions are a table ``(state, input) -> (next state, actions)``, so what a
state does with each input is written once and can be tested exhaustively.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from routr.sip.headers import split_values
from routr.sip.message import Header, Message, Request, Response

T1 = 0.5
T2 = 4.0
T4 = 5.0
TIMER_B = 64 * T1  # also F, H, J, L, M


class State(StrEnum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


# -- actions ---------------------------------------------------------------------------


class Send:
    """Put ``message`` on the wire (the transaction's request, a response or an ACK)."""

    __slots__ = ("message",)

    def __init__(self, message: Message) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"Send({self.message!r})"


class Deliver:
    """Hand ``response`` (client side) or ``request`` (server side, ACK) to the TU."""

    __slots__ = ("message",)

    def __init__(self, message: Message) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"Deliver({self.message!r})"


class Timeout:
    """Timer B/F/H fired: no answer (client) or no ACK (server)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Timeout()"


class Terminated:
    """The transaction is over; drop it from the table."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Terminated()"


Action = Send | Deliver | Timeout | Terminated
_TIMEOUT = Timeout()
_TERMINATED = Terminated()


def input_of(response: Response) -> str:
    """The table input a response is: ``1xx``, ``2xx`` or ``final`` (300-699)."""
    if response.status < 200:
        return "1xx"
    return "2xx" if response.status < 300 else "final"


# -- base ------------------------------------------------------------------------------


class Transaction:
    """What the four machines share: state, timers as deadlines, the transition table."""

    __slots__ = ("_timers", "key", "reliable", "request", "state")

    #: (state, input) -> (next state, names of step methods to run, in order)
    TABLE: dict[tuple[State, str], tuple[State, tuple[str, ...]]] = {}

    def __init__(self, request: Request, reliable: bool, key: str) -> None:
        self.request = request
        self.reliable = reliable
        self.key = key
        self.state = State.TERMINATED
        self._timers: dict[str, float] = {}  # timer name -> deadline

    def deadline(self) -> float | None:
        """When :meth:`on_timer` must next be called, or ``None`` when no timer runs."""
        if not self._timers:
            return None
        return min(self._timers.values())

    def on_timer(self, now: float) -> list[Action]:
        """Fire every timer that is due at ``now``, earliest first."""
        out: list[Action] = []
        while self._timers and self.state is not State.TERMINATED:
            name, when = min(self._timers.items(), key=lambda item: item[1])
            if when > now:
                break
            out += self._input("timer_" + name, now, None)
        return out

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def _input(self, name: str, now: float, message: Message | None) -> list[Action]:
        entry = self.TABLE.get((self.state, name))
        if entry is None:
            if name.startswith("timer_"):
                self._timers.pop(name[6:], None)
            return []  # an input a state ignores (a late retransmission, say)
        next_state, steps = entry
        if name.startswith("timer_"):
            # Fired: a retransmission timer re-arms itself in its step.
            self._timers.pop(name[6:], None)
        self.state = next_state
        out: list[Action] = []
        for step in steps:
            method: Callable[[float, Message | None], list[Action]] = getattr(self, step)
            out += method(now, message)
        if next_state is State.TERMINATED:
            self._timers.clear()
            out.append(_TERMINATED)
        return out

    def _start(self, name: str, now: float, delay: float) -> None:
        self._timers[name] = now + delay

    def _stop(self, *names: str) -> None:
        for name in names:
            self._timers.pop(name, None)

    # steps shared by several machines
    def _timeout(self, now: float, message: Message | None) -> list[Action]:
        return [_TIMEOUT]

    def _deliver(self, now: float, message: Message | None) -> list[Action]:
        assert message is not None
        return [Deliver(message)]


# -- client transactions (§17.1) -------------------------------------------------------


class ClientTransaction(Transaction):
    """Base of the client machines: ``start`` sends the request."""

    __slots__ = ("last_response",)

    def __init__(self, request: Request, reliable: bool) -> None:
        super().__init__(request, reliable, client_key(request))
        self.last_response: Response | None = None

    def start(self, now: float) -> list[Action]:
        raise NotImplementedError

    def on_response(self, response: Response, now: float) -> list[Action]:
        self.last_response = response
        return self._input(input_of(response), now, response)

    def on_transport_error(self, now: float) -> list[Action]:
        """The request could not be sent (§17.1.4): report a timeout and end."""
        if self.state is State.TERMINATED:
            return []
        self.state = State.TERMINATED
        self._timers.clear()
        return [_TIMEOUT, _TERMINATED]

    def abandon(self) -> list[Action]:
        """Give up without a final response (a proxy's Timer C): end, report nothing."""
        if self.state is State.TERMINATED:
            return []
        self.state = State.TERMINATED
        self._timers.clear()
        return [_TERMINATED]

    def _retransmit(self, now: float, message: Message | None) -> list[Action]:
        return [Send(self.request)]


class InviteClientTransaction(ClientTransaction):
    """§17.1.1, with RFC 6026: a 2xx moves to Accepted so 2xx retransmissions still match."""

    __slots__ = ("_a", "ack")

    TABLE = {
        (State.CALLING, "1xx"): (State.PROCEEDING, ("_stop_a", "_deliver")),
        (State.CALLING, "2xx"): (State.ACCEPTED, ("_start_m", "_deliver")),
        (State.CALLING, "final"): (State.COMPLETED, ("_start_d", "_send_ack", "_deliver")),
        (State.CALLING, "timer_A"): (State.CALLING, ("_retransmit", "_backoff_a")),
        (State.CALLING, "timer_B"): (State.TERMINATED, ("_timeout",)),
        (State.PROCEEDING, "1xx"): (State.PROCEEDING, ("_deliver",)),
        (State.PROCEEDING, "2xx"): (State.ACCEPTED, ("_start_m", "_deliver")),
        (State.PROCEEDING, "final"): (State.COMPLETED, ("_start_d", "_send_ack", "_deliver")),
        (State.ACCEPTED, "2xx"): (State.ACCEPTED, ("_deliver",)),
        (State.ACCEPTED, "timer_M"): (State.TERMINATED, ()),
        (State.COMPLETED, "final"): (State.COMPLETED, ("_resend_ack",)),
        (State.COMPLETED, "timer_D"): (State.TERMINATED, ()),
    }

    def __init__(self, request: Request, reliable: bool) -> None:
        super().__init__(request, reliable)
        self.ack: Request | None = None
        self._a = T1

    def start(self, now: float) -> list[Action]:
        self.state = State.CALLING
        if not self.reliable:
            self._start("A", now, T1)
        self._start("B", now, TIMER_B)
        return [Send(self.request)]

    def _stop_a(self, now: float, message: Message | None) -> list[Action]:
        self._stop("A", "B")  # a provisional answer ends retransmissions and Timer B
        return []

    def _backoff_a(self, now: float, message: Message | None) -> list[Action]:
        # Timer A doubles each time (no T2 cap for INVITE, §17.1.1.2).
        self._a *= 2
        self._start("A", now, self._a)
        return []

    def _start_m(self, now: float, message: Message | None) -> list[Action]:
        self._stop("A", "B")
        self._start("M", now, TIMER_B)
        return []

    def _start_d(self, now: float, message: Message | None) -> list[Action]:
        self._stop("A", "B")
        self._start("D", now, 0.0 if self.reliable else 32.0)
        return []

    def _send_ack(self, now: float, message: Message | None) -> list[Action]:
        assert isinstance(message, Response)
        self.ack = ack_for(self.request, message)
        return [Send(self.ack)]

    def _resend_ack(self, now: float, message: Message | None) -> list[Action]:
        return [Send(self.ack)] if self.ack is not None else []


class NonInviteClientTransaction(ClientTransaction):
    """§17.1.2."""

    __slots__ = ("_e",)

    TABLE = {
        (State.TRYING, "1xx"): (State.PROCEEDING, ("_deliver",)),
        (State.TRYING, "2xx"): (State.COMPLETED, ("_start_k", "_deliver")),
        (State.TRYING, "final"): (State.COMPLETED, ("_start_k", "_deliver")),
        (State.TRYING, "timer_E"): (State.TRYING, ("_retransmit", "_backoff_e")),
        (State.TRYING, "timer_F"): (State.TERMINATED, ("_timeout",)),
        (State.PROCEEDING, "1xx"): (State.PROCEEDING, ("_deliver",)),
        (State.PROCEEDING, "2xx"): (State.COMPLETED, ("_start_k", "_deliver")),
        (State.PROCEEDING, "final"): (State.COMPLETED, ("_start_k", "_deliver")),
        (State.PROCEEDING, "timer_E"): (State.PROCEEDING, ("_retransmit", "_proceeding_e")),
        (State.PROCEEDING, "timer_F"): (State.TERMINATED, ("_timeout",)),
        (State.COMPLETED, "timer_K"): (State.TERMINATED, ()),
    }

    def __init__(self, request: Request, reliable: bool) -> None:
        super().__init__(request, reliable)
        self._e = T1

    def start(self, now: float) -> list[Action]:
        self.state = State.TRYING
        if not self.reliable:
            self._start("E", now, T1)
        self._start("F", now, TIMER_B)
        return [Send(self.request)]

    def _backoff_e(self, now: float, message: Message | None) -> list[Action]:
        self._e = min(self._e * 2, T2)
        self._start("E", now, self._e)
        return []

    def _proceeding_e(self, now: float, message: Message | None) -> list[Action]:
        self._start("E", now, T2)
        return []

    def _start_k(self, now: float, message: Message | None) -> list[Action]:
        self._stop("E", "F")
        self._start("K", now, 0.0 if self.reliable else T4)
        return []


# -- server transactions (§17.2) -------------------------------------------------------


class ServerTransaction(Transaction):
    """Base of the server machines: the TU answers with :meth:`respond`."""

    __slots__ = ("last_response",)

    def __init__(self, request: Request, reliable: bool) -> None:
        super().__init__(request, reliable, server_key(request))
        self.last_response: Response | None = None

    def on_retransmission(self, request: Request, now: float) -> list[Action]:
        """The same request again (ACK included, for INVITE)."""
        name = "ack" if request.method == "ACK" else "request"
        return self._input(name, now, request)

    def respond(self, response: Response, now: float) -> list[Action]:
        """Send a response from the TU (only what the state allows goes out)."""
        if self.state is State.TERMINATED:
            return []
        return self._input("tu_" + input_of(response), now, response)

    def _send(self, now: float, message: Message | None) -> list[Action]:
        assert isinstance(message, Response)
        self.last_response = message
        return [Send(message)]

    def _resend(self, now: float, message: Message | None) -> list[Action]:
        return [Send(self.last_response)] if self.last_response is not None else []


class InviteServerTransaction(ServerTransaction):
    """§17.2.1, with RFC 6026's Accepted state for 2xx (their retransmissions are the TU's)."""

    __slots__ = ("_g",)

    TABLE = {
        (State.PROCEEDING, "request"): (State.PROCEEDING, ("_resend",)),
        (State.PROCEEDING, "tu_1xx"): (State.PROCEEDING, ("_send",)),
        (State.PROCEEDING, "tu_2xx"): (State.ACCEPTED, ("_send", "_start_l")),
        (State.PROCEEDING, "tu_final"): (State.COMPLETED, ("_send", "_start_gh")),
        (State.ACCEPTED, "tu_2xx"): (State.ACCEPTED, ("_send",)),
        (State.ACCEPTED, "ack"): (State.ACCEPTED, ("_deliver",)),
        (State.ACCEPTED, "timer_L"): (State.TERMINATED, ()),
        (State.COMPLETED, "request"): (State.COMPLETED, ("_resend",)),
        (State.COMPLETED, "timer_G"): (State.COMPLETED, ("_resend", "_backoff_g")),
        (State.COMPLETED, "timer_H"): (State.TERMINATED, ("_timeout",)),
        (State.COMPLETED, "ack"): (State.CONFIRMED, ("_start_i",)),
        (State.CONFIRMED, "timer_I"): (State.TERMINATED, ()),
    }

    def __init__(self, request: Request, reliable: bool) -> None:
        super().__init__(request, reliable)
        self.state = State.PROCEEDING
        self._g = T1

    def _start_l(self, now: float, message: Message | None) -> list[Action]:
        self._start("L", now, TIMER_B)
        return []

    def _start_gh(self, now: float, message: Message | None) -> list[Action]:
        if not self.reliable:
            self._start("G", now, T1)
        self._start("H", now, TIMER_B)
        return []

    def _backoff_g(self, now: float, message: Message | None) -> list[Action]:
        self._g = min(self._g * 2, T2)
        self._start("G", now, self._g)
        return []

    def _start_i(self, now: float, message: Message | None) -> list[Action]:
        self._stop("G", "H")
        self._start("I", now, 0.0 if self.reliable else T4)
        return []


class NonInviteServerTransaction(ServerTransaction):
    """§17.2.2."""

    __slots__ = ()

    TABLE = {
        (State.TRYING, "tu_1xx"): (State.PROCEEDING, ("_send",)),
        (State.TRYING, "tu_2xx"): (State.COMPLETED, ("_send", "_start_j")),
        (State.TRYING, "tu_final"): (State.COMPLETED, ("_send", "_start_j")),
        (State.PROCEEDING, "request"): (State.PROCEEDING, ("_resend",)),
        (State.PROCEEDING, "tu_1xx"): (State.PROCEEDING, ("_send",)),
        (State.PROCEEDING, "tu_2xx"): (State.COMPLETED, ("_send", "_start_j")),
        (State.PROCEEDING, "tu_final"): (State.COMPLETED, ("_send", "_start_j")),
        (State.COMPLETED, "request"): (State.COMPLETED, ("_resend",)),
        (State.COMPLETED, "timer_J"): (State.TERMINATED, ()),
    }

    def __init__(self, request: Request, reliable: bool) -> None:
        super().__init__(request, reliable)
        self.state = State.TRYING

    def _start_j(self, now: float, message: Message | None) -> list[Action]:
        self._start("J", now, 0.0 if self.reliable else TIMER_B)
        return []


def server_transaction(request: Request, reliable: bool) -> ServerTransaction:
    """The server machine for ``request`` (not for ACK: ACK has no transaction)."""
    if request.method == "INVITE":
        return InviteServerTransaction(request, reliable)
    return NonInviteServerTransaction(request, reliable)


def client_transaction(request: Request, reliable: bool) -> ClientTransaction:
    if request.method == "INVITE":
        return InviteClientTransaction(request, reliable)
    return NonInviteClientTransaction(request, reliable)


# -- matching (§17.1.3, §17.2.3) -------------------------------------------------------


def server_key(request: Request, method: str | None = None) -> str:
    """The key a request (or its retransmission, or the ACK of a non-2xx) matches by;
    ``method`` asks for another method's key (a CANCEL's INVITE).

    RFC 3261 branches: branch, sent-by and method (ACK matches INVITE), plus Call-ID and
    CSeq number, which a retransmission repeats: a broken client that reuses a branch for
    another request (RFC 4475 §3.3.13) gets it handled, not absorbed. Branches without
    the magic cookie fall back to RFC 2543 matching on Request-URI, From tag, Call-ID,
    CSeq number and the top Via; the To tag is left out so a non-2xx ACK, which carries
    the tag our response added, still matches.
    """
    via = request.via
    method = method or request.method
    if method == "ACK":
        method = "INVITE"
    if via.rfc3261_branch:
        return (
            f"{via.branch}|{via.host_key}:{via.port}|{request.call_id}|"
            f"{request.cseq.number}|{method}"
        )
    return (
        f"2543|{request.uri_text}|{request.from_.tag}|{request.call_id}|"
        f"{request.cseq.number}|{via}|{method}"
    )


def client_key(message: Message) -> str:
    """Branch of the top Via and the CSeq method (§17.1.3): requests we send, and their
    responses, map to the same key."""
    method = message.cseq.method
    if method == "ACK":
        method = "INVITE"
    return f"{message.via.branch}|{method}"


def ack_for(request: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a non-2xx final response (§17.1.1.3)."""
    headers: list[Header] = []
    for k, name, value in request.headers:
        if k == "via":
            # Only the top Via, even when the first Via line lists several.
            headers.append((k, name, split_values(value)[0] if "," in value else value))
            break
    for key in ("max-forwards", "from", "call-id"):
        for k, name, value in request.headers:
            if k == key:
                headers.append((k, name, value))
                break
    to = response.get("to")
    if to is not None:
        headers.append(("to", "To", to))
    headers.append(("cseq", "CSeq", f"{request.cseq.number} ACK"))
    headers += [h for h in request.headers if h[0] == "route"]
    return Request("ACK", request.uri_text, headers)
