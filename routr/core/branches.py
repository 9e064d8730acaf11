"""The proxy's client side (RFC 3261 §16.6-16.8): a branch per target, and its timers.

A :class:`Branch` is one forked copy of a request with its client transaction;
:class:`Branches` runs them: sends what the transaction sends, hands its responses and
failures to the proxy (two callbacks), sends the CANCEL of a branch (§16.10, after a
provisional response only: §9.1) and runs Timer C (§16.6 step 11, §16.7 step 2). What a
response means upstream (aggregation, forwarding, dialogs) is the proxy's
(:mod:`routr.core.proxy`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Generic, Protocol, TypeVar

from routr.core.routing import STREAM, Hop, ProxyIO, TimerHandle
from routr.sip.message import Request, Response
from routr.sip.transaction import (
    Action,
    ClientTransaction,
    Deliver,
    Send,
    Terminated,
    Timeout,
    Transaction,
    client_transaction,
)

TIMER_C = 180.0  # > 3 minutes is the RFC's floor; 180 s is what Kamailio's fr_inv uses
CANCEL_GRACE = 32.0  # 64*T1: how long a cancelled branch may take to answer 487

C = TypeVar("C")  # the request a branch was forked from (the proxy's Context)


class Branch(Generic[C]):
    """One forked copy of a request and its client transaction."""

    __slots__ = ("answered", "cancel_wanted", "cancelled", "credentials", "ctx", "for_cancel",
                 "hop", "peer_ip", "provisional", "response", "shift", "timer", "timer_c",
                 "tx")  # fmt: skip

    def __init__(self, ctx: C, tx: ClientTransaction, hop: Hop, for_cancel: bool = False) -> None:
        self.ctx = ctx
        self.for_cancel = for_cancel  # a CANCEL we sent: its answers stay here
        self.tx = tx
        self.hop = hop
        self.response: Response | None = None  # final response, once it came
        self.provisional = False
        self.cancel_wanted = False
        self.cancelled = False
        self.timer: TimerHandle | None = None
        self.timer_c: TimerHandle | None = None
        self.credentials: tuple[str, str] | None = None
        self.shift = 0  # CSeq raised by this much on the way out (gateway_auth.CSeqShifts)
        self.answered = False  # the request answers a challenge: a second one goes upstream
        self.peer_ip: str | None = None  # where its last response came from

    @property
    def pending(self) -> bool:
        return self.response is None


class Branches(Generic[C]):
    """The branches of every request being proxied, by client transaction key."""

    __slots__ = ("_deliver", "_failed", "clients", "io", "timer_c")

    def __init__(
        self,
        io: ProxyIO,
        *,
        deliver: Callable[[Branch[C], Response], None],
        failed: Callable[[Branch[C], int, str], None],
        timer_c: float = TIMER_C,
    ) -> None:
        self.io = io
        self._deliver = deliver  # a response of the branch's transaction, for the proxy
        self._failed = failed  # no response will come (status, reason to answer with)
        self.timer_c = timer_c
        self.clients: dict[str, Branch[C]] = {}

    def start(self, br: Branch[C]) -> None:
        """Send the branch's request; an INVITE's runs Timer C."""
        tx = br.tx
        self.clients[tx.key] = br
        self.run(br, tx.start(self.io.now()))
        if tx.request.method == "INVITE":
            br.timer_c = self.io.call_at(self.io.now() + self.timer_c, lambda: self._timer_c(br))

    # -- CANCEL -----------------------------------------------------------------------------

    def cancel(self, br: Branch[C]) -> None:
        if not br.pending or br.cancelled:
            return
        if br.provisional:
            self.send_cancel(br)
        else:
            br.cancel_wanted = True  # §9.1: a CANCEL waits for a provisional response

    def send_cancel(self, br: Branch[C]) -> None:
        br.cancelled = True
        invite = br.tx.request
        headers = [h for h in invite.headers if h[0] == "via"][:1]
        for key in ("route", "max-forwards", "from", "to", "call-id"):
            headers += [h for h in invite.headers if h[0] == key]
        headers.append(("cseq", "CSeq", f"{invite.cseq.number} CANCEL"))
        cancel = Request("CANCEL", invite.uri_text, headers)
        tx = client_transaction(cancel, br.hop.transport in STREAM)
        cancel_branch = Branch(br.ctx, tx, br.hop, for_cancel=True)
        self.clients[tx.key] = cancel_branch
        self.run(cancel_branch, tx.start(self.io.now()))

    # -- Timer C ----------------------------------------------------------------------------

    def restart_timer_c(self, br: Branch[C]) -> None:
        """A provisional response: Timer C starts again (§16.7 step 2)."""
        if br.timer_c is not None:
            br.timer_c.cancel()
            br.timer_c = self.io.call_at(self.io.now() + self.timer_c, lambda: self._timer_c(br))

    def stop_timer_c(self, br: Branch[C]) -> None:
        if br.timer_c is not None:
            br.timer_c.cancel()
            br.timer_c = None

    def _timer_c(self, br: Branch[C]) -> None:
        br.timer_c = None
        if not br.pending:
            return
        if br.provisional:
            if not br.cancelled:
                self.send_cancel(br)
            # The callee gets 64*T1 (32 s) more to answer the CANCEL with 487 before we
            # give up; never more than Timer C itself, when that is shorter (tests).
            grace = min(CANCEL_GRACE, self.timer_c)
            br.timer_c = self.io.call_at(self.io.now() + grace, lambda: self._give_up(br))
        else:
            self._give_up(br)

    def _give_up(self, br: Branch[C]) -> None:
        br.timer_c = None
        self._failed(br, 408, "Request Timeout")
        # No final may ever end the client transaction: end it ourselves, after 64*T1 in
        # which a late 2xx still finds its branch (and so its dialog is recorded).
        grace = min(CANCEL_GRACE, self.timer_c)
        br.timer_c = self.io.call_at(self.io.now() + grace, lambda: self._abandon(br))

    def _abandon(self, br: Branch[C]) -> None:
        br.timer_c = None
        self.run(br, br.tx.abandon())

    # -- running client transactions ----------------------------------------------------------

    def run(self, br: Branch[C], actions: list[Action]) -> None:
        tx = br.tx
        for action in actions:
            if isinstance(action, Send):
                message = action.message
                self.io.send(message, br.hop, partial(self._send_failed, br))  # type: ignore[arg-type]
            elif isinstance(action, Deliver):
                if br.for_cancel:
                    continue
                assert isinstance(action.message, Response)
                self._deliver(br, action.message)
            elif isinstance(action, Timeout):
                if not br.for_cancel:
                    self._failed(br, 408, "Request Timeout")
            elif isinstance(action, Terminated):
                self.clients.pop(tx.key, None)
                if br.timer is not None:
                    br.timer.cancel()
                    br.timer = None
                return
        rearm(self.io, br, tx, self.run)

    def _send_failed(self, br: Branch[C]) -> None:
        if br.tx.terminated:
            return
        # Reported as 503 rather than the transaction's own timeout (408).
        if not br.for_cancel:
            self._failed(br, 503, "Service Unavailable")
        self.run(br, br.tx.on_transport_error(self.io.now()))


class Timed(Protocol):
    """A holder of a transaction's timer: a branch, or the proxy's server-side Context."""

    timer: TimerHandle | None


H = TypeVar("H", bound=Timed)


def rearm(io: ProxyIO, holder: H, tx: Transaction, run: Callable[[H, list[Action]], None]) -> None:
    """Arm ``holder``'s timer for the next deadline of ``tx`` (after cancelling the one it
    had), to feed what the transaction does then to ``run``."""
    when = tx.deadline()
    if holder.timer is not None:
        holder.timer.cancel()
        holder.timer = None
    if when is None:
        return
    holder.timer = io.call_at(when, _Fire(io, holder, tx, run))


class _Fire(Generic[H]):
    """A timer's callback: one object where a closure over four names made five, and
    thousands of them wait in the timer heap for the collector to walk."""

    __slots__ = ("holder", "io", "run", "tx")

    def __init__(
        self, io: ProxyIO, holder: H, tx: Transaction, run: Callable[[H, list[Action]], None]
    ) -> None:
        self.io = io
        self.holder = holder
        self.tx = tx
        self.run = run

    def __call__(self) -> None:
        self.holder.timer = None
        self.run(self.holder, self.tx.on_timer(self.io.now()))
