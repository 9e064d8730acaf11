"""The call record: one entry per Call-ID from the INVITE routr routes to its end.

Fed by the proxy (an initial INVITE forwarded, the final response it sends back upstream,
the answer to a BYE it relays, a CANCEL), read by the router for least-sessions balancing
and Call-ID affinity, and the source of ``call.*`` events and of the calls view.

Decisions:
- A call counts against its Peer binding from the routed INVITE until its final non-2xx,
  the answer to its BYE, or a time limit: a lost BYE, or a call not record-routed (its BYE
  never passes here), must not count forever. Such a call ends ``expired``.
- Only the answer to a BYE relayed inside a recorded dialog ends an established call, not
  the BYE itself: anyone can send one. Any final answer ends it (a 481 says the callee
  knows no such dialog; routr forgets the dialog on any final answer too).
- After a call ends, its Call-ID keeps its binding for ``affinity_ttl``, so an INVITE
  repeated after a 407 challenge, or a MESSAGE of the same Call-ID, goes to the same one.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final

from routr.core.routing import Decision
from routr.events import CallAnswered, CallEnded, CallStarted, Event
from routr.sip.message import Request

RINGING: Final = "ringing"
UP: Final = "up"
ENDED: Final = "ended"

Binding = tuple[str, str]  # (aor, contact) of a Peer binding the call was balanced to

_CAUSES: Final = {
    408: "no-answer",
    480: "unavailable",
    486: "busy",
    600: "busy",
    487: "cancelled",
    603: "declined",
    404: "not-found",
    484: "not-found",
    604: "not-found",
    401: "rejected",
    403: "rejected",
    407: "rejected",
}


def hangup_cause(status: int) -> str:
    """A short word for a final status that ended a call before it was answered."""
    return _CAUSES.get(status) or ("failed" if status >= 500 else "rejected")


class Call:
    """One call as routr saw it. Times are on the service's clock."""

    __slots__ = (
        "answered",
        "binding",
        "call_id",
        "callee_ref",
        "caller_ref",
        "cause",
        "ended",
        "expires_at",
        "from_uri",
        "gateway_ref",
        "peer_ref",
        "started",
        "state",
        "status",
        "strategy",
        "to_uri",
    )

    def __init__(
        self,
        call_id: str,
        *,
        from_uri: str,
        to_uri: str,
        strategy: str,
        caller_ref: str | None,
        callee_ref: str | None,
        gateway_ref: str | None,
        peer_ref: str | None,
        binding: Binding | None,
        started: float,
        expires_at: float,
    ) -> None:
        self.call_id = call_id
        self.from_uri = from_uri
        self.to_uri = to_uri
        self.strategy = strategy
        self.caller_ref = caller_ref
        self.callee_ref = callee_ref
        self.gateway_ref = gateway_ref
        self.peer_ref = peer_ref
        self.binding = binding
        self.started = started
        self.expires_at = expires_at
        self.state = RINGING
        self.answered: float | None = None
        self.ended: float | None = None
        self.cause: str | None = None
        self.status: str | None = None

    def to_dict(self, now: float) -> dict[str, object]:
        """Plain data for the management plane."""
        end = self.ended if self.ended is not None else now
        return {
            "callId": self.call_id,
            "from": self.from_uri,
            "to": self.to_uri,
            "strategy": self.strategy,
            "callerRef": self.caller_ref,
            "calleeRef": self.callee_ref,
            "gatewayRef": self.gateway_ref,
            "peerRef": self.peer_ref,
            "state": self.state,
            "started": self.started,
            "answered": self.answered,
            "ended": self.ended,
            "duration": round(end - self.answered, 3) if self.answered is not None else 0.0,
            "cause": self.cause,
            "status": self.status,
        }


class Calls:
    """Calls in progress by Call-ID, the recently ended ones, and Peer binding counts."""

    def __init__(
        self,
        clock: Callable[[], float],
        emit: Callable[[Event], None],
        *,
        pending_ttl: float = 212.0,  # Timer C plus the 32 s a CANCEL gets
        call_ttl: float = 4 * 3600.0,
        affinity_ttl: float = 300.0,
        max_calls: int = 200_000,
        recent: int = 200,
    ) -> None:
        self.clock = clock
        self.emit = emit
        self.pending_ttl = pending_ttl
        self.call_ttl = call_ttl
        self.affinity_ttl = affinity_ttl
        self.max_calls = max_calls
        self._calls: OrderedDict[str, Call] = OrderedDict()
        self._affinity: OrderedDict[str, tuple[Binding, float]] = OrderedDict()
        self._counts: dict[Binding, int] = {}
        self._recent: deque[Call] = deque(maxlen=recent)
        #: Calls started since start, by routing strategy (``GET /metrics``).
        self.started: dict[str, int] = {}
        self._next_prune = 0.0

    def __len__(self) -> int:
        return len(self._calls)

    # -- what the router reads ----------------------------------------------------------

    def count(self, aor: str, contact: str) -> int:
        """Calls in progress on a Peer binding (least-sessions)."""
        return self._counts.get((aor, contact), 0)

    def affinity(self, call_id: str, aor: str) -> str | None:
        """The contact this Call-ID went to for ``aor``, while it is remembered."""
        call = self._calls.get(call_id)
        if call is not None and call.binding is not None:
            return call.binding[1] if call.binding[0] == aor else None
        kept = self._affinity.get(call_id)
        if kept is None or kept[1] <= self.clock():
            return None
        return kept[0][1] if kept[0][0] == aor else None

    # -- what the proxy feeds -----------------------------------------------------------

    def start(
        self,
        call_id: str,
        *,
        from_uri: str,
        to_uri: str,
        strategy: str,
        caller_ref: str | None = None,
        callee_ref: str | None = None,
        gateway_ref: str | None = None,
        peer_ref: str | None = None,
        binding: Binding | None = None,
    ) -> Call:
        """An initial INVITE routed to its targets (a repeat of a ringing one is the same
        call)."""
        now = self.clock()
        self._prune(now)
        call = self._calls.get(call_id)
        if call is not None and call.state == RINGING and call.binding == binding:
            return call
        if call is not None:
            self._end(call, now, "replaced", "")
        call = Call(
            call_id, from_uri=from_uri, to_uri=to_uri, strategy=strategy,
            caller_ref=caller_ref, callee_ref=callee_ref, gateway_ref=gateway_ref,
            peer_ref=peer_ref, binding=binding, started=now, expires_at=now + self.pending_ttl,
        )  # fmt: skip
        self._calls[call_id] = call
        self.started[strategy] = self.started.get(strategy, 0) + 1
        if binding is not None:
            self._counts[binding] = self._counts.get(binding, 0) + 1
        self.emit(
            CallStarted(
                timestamp=now, call_id=call_id, from_uri=from_uri, to_uri=to_uri,
                caller_ref=caller_ref, callee_ref=callee_ref, strategy=strategy,
                gateway_ref=gateway_ref, peer_ref=peer_ref,
            )
        )  # fmt: skip
        return call

    def routed(self, request: Request, decision: Decision) -> bool:
        """A request forwarded to the targets of ``decision``: an initial INVITE starts a
        call (True); another request balanced to a Peer binding keeps its affinity."""
        if not decision.strategy:
            return False  # routed by its Route headers: inside a dialog, not a new call
        if request.method != "INVITE":
            if decision.binding is not None:
                self.remember(request.call_id, decision.binding)
            return False
        self.start(
            request.call_id,
            from_uri=str(request.from_.uri),
            to_uri=str(request.to.uri),
            strategy=decision.strategy,
            caller_ref=decision.caller_ref,
            callee_ref=decision.callee_ref,
            gateway_ref=decision.gateway_ref,
            peer_ref=decision.peer_ref,
            binding=decision.binding,
        )
        return True

    def remember(self, call_id: str, binding: Binding) -> None:
        """A request other than INVITE balanced to a Peer binding: affinity only."""
        if call_id not in self._calls:
            self._keep(call_id, binding, self.clock())

    def on_final(self, call_id: str, status: int) -> None:
        """The final response routr sent upstream for an initial INVITE of ``call_id``."""
        call = self._calls.get(call_id)
        if call is None or call.state != RINGING:
            return
        now = self.clock()
        if status < 300:
            call.state, call.answered = UP, now
            call.expires_at = now + self.call_ttl
            self.emit(CallAnswered(timestamp=now, call_id=call_id, status=status))
        elif status == 487:
            self._end(call, now, "cancelled", "CANCEL")
        else:
            self._end(call, now, hangup_cause(status), str(status))

    def on_bye_answered(self, call_id: str, status: int) -> None:
        """The final answer to a BYE routr relayed inside a recorded dialog: the dialog is
        gone either way, so is the call (``hangup``, or ``bye-failed`` with the status)."""
        call = self._calls.get(call_id)
        if call is None or status < 200:
            return
        if status < 300:
            self._end(call, self.clock(), "hangup", "BYE")
        else:
            self._end(call, self.clock(), "bye-failed", str(status))

    # -- views --------------------------------------------------------------------------

    def in_progress(self) -> list[Call]:
        self._prune(self.clock())
        return list(self._calls.values())

    def recent(self) -> list[Call]:
        """The last calls that ended, oldest first."""
        return list(self._recent)

    # -- housekeeping -------------------------------------------------------------------

    def _end(self, call: Call, now: float, cause: str, status: str) -> None:
        self._calls.pop(call.call_id, None)
        if call.binding is not None:
            left = self._counts.get(call.binding, 0) - 1
            if left > 0:
                self._counts[call.binding] = left
            else:
                self._counts.pop(call.binding, None)
            self._keep(call.call_id, call.binding, now)
        answered = call.answered is not None
        call.state, call.ended, call.cause, call.status = ENDED, now, cause, status
        self._recent.append(call)
        duration = round(now - call.answered, 3) if call.answered is not None else 0.0
        self.emit(
            CallEnded(
                timestamp=now, call_id=call.call_id, cause=cause, status=status,
                duration=duration, answered=answered,
            )
        )  # fmt: skip

    def _keep(self, call_id: str, binding: Binding, now: float) -> None:
        self._affinity[call_id] = (binding, now + self.affinity_ttl)
        self._affinity.move_to_end(call_id)
        while len(self._affinity) > self.max_calls:
            self._affinity.popitem(last=False)

    def _prune(self, now: float) -> None:
        if now < self._next_prune and len(self._calls) < self.max_calls:
            return
        self._next_prune = now + 10.0
        for call in [c for c in self._calls.values() if c.expires_at <= now]:
            self._end(call, now, "expired", "")
        while len(self._calls) >= self.max_calls:  # a flood of calls: the oldest go first
            self._end(next(iter(self._calls.values())), now, "dropped", "")
        affinity = self._affinity
        while affinity and next(iter(affinity.values()))[1] <= now:
            affinity.popitem(last=False)
