"""The transaction-stateful proxy of RFC 3261 §16.

No sockets and no clock of its own: it is given a :class:`ProxyIO` (send, reply, now,
timers) and a router, and it turns requests and responses into forwarded messages.
What it does, in §16 order: validate (Max-Forwards, loops, Proxy-Require), answer 100 to
INVITE, pick targets (Route headers for in-dialog requests, the router otherwise), fork in
parallel, aggregate responses (§16.7), CANCEL pending branches, run Timer C.

This module is the server side and the decisions: the request's server transaction, its
validation and routing, forking, and what goes upstream (§16.7). Beside it:
:mod:`routr.core.branches` (the client side: branches, CANCEL, Timer C),
:mod:`routr.core.indialog` (our Record-Route, and which in-dialog requests the recorded
dialogs admit), :mod:`routr.core.gateway_auth` (a Gateway's challenge answered, the CSeq
shift that follows), :mod:`routr.core.vias` (our Via, loops, stray responses) and
:mod:`routr.core.routing` (the router's decisions, the I/O).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from routr.core.branches import TIMER_C, Branch, Branches, rearm
from routr.core.calls import Calls
from routr.core.dialogs import Dialog, Dialogs
from routr.core.gateway_auth import CredentialsAt, CSeqShifts, answer_challenge, shift_cseq
from routr.core.indialog import DIALOG_METHODS, DialogRoutes, undo_strict_routing
from routr.core.routing import STREAM, Decision, Hop, ProxyIO, Target, TimerHandle
from routr.core.vias import is_loop, loop_hash, push_via, stray_hop
from routr.sip.errors import ParseError
from routr.sip.headers import header_key
from routr.sip.message import Request, Response
from routr.sip.transaction import (
    Action,
    Deliver,
    Send,
    ServerTransaction,
    Terminated,
    client_key,
    client_transaction,
    server_key,
    server_transaction,
)
from routr.sip.uri import SipURI, parse_uri

_log = logging.getLogger("routr.proxy")

WEBSOCKET = frozenset({"ws", "wss"})


Router = Callable[[Request, Any], Awaitable[Decision]]


# -- per-request state -----------------------------------------------------------------


class Context:
    """A request being proxied: its server transaction and its branches."""

    __slots__ = ("best", "branches", "call", "challenges", "dialog", "dialog_side", "early",
                 "final_sent", "final_status", "loop_hash", "record_routed", "request",
                 "source", "timer", "tx")  # fmt: skip

    def __init__(self, request: Request, source: Any, tx: ServerTransaction) -> None:
        self.request = request
        self.source = source
        self.tx = tx
        self.branches: list[Branch[Context]] = []
        self.best: Response | None = None
        self.final_sent = False
        self.final_status = 0  # the status of the first final response sent
        self.challenges: list[tuple[str, str, str]] = []
        self.timer: TimerHandle | None = None
        self.loop_hash = ""  # §16.6 step 8, of the request as received
        self.dialog: Dialog | None = None  # the dialog an in-dialog request was admitted in
        self.dialog_side = 0  # which side of it sent the request
        self.early: list[Dialog] = []  # early dialogs made by 1xx to this request
        self.record_routed = False  # we put our Record-Route in (some branch of) it
        self.call = False  # an initial INVITE in the call record


class Proxy:
    """The stateful proxy core. Feed it with :meth:`on_request` and :meth:`on_response`."""

    def __init__(
        self,
        io: ProxyIO,
        router: Router,
        *,
        record_route: bool = False,
        secret: bytes = b"",
        server_header: str = "routr",
        timer_c: float = TIMER_C,
        gateway_credentials: CredentialsAt | None = None,
        dialogs: Dialogs | None = None,
        calls: Calls | None = None,
        servers: dict[str, Context] | None = None,
    ) -> None:
        self.io = io
        #: The call record: fed with each routed INVITE, its final answer and its BYE's.
        self.calls = calls
        #: The credentials of the Gateway at a hop, if one is there: to answer its challenge
        #: to an in-dialog request, whose route (unlike the router's targets) names no Gateway.
        self.gateway_credentials = gateway_credentials
        self.router = router
        self.record_route = record_route
        self.server_header = server_header
        #: server transactions by key (the service passes one that counts them per source)
        self.servers: dict[str, Context] = servers if servers is not None else {}
        self.branches: Branches[Context] = Branches(
            io, deliver=self._on_branch_response, failed=self._branch_failed, timer_c=timer_c
        )
        self._seq = itertools.count(1)
        self.cseq_shifts = CSeqShifts()
        #: The dialogs we record-routed: in-dialog requests are relayed only inside them.
        self.dialogs = dialogs if dialogs is not None else Dialogs(io.now)
        self.dialog_routes = DialogRoutes(
            self.dialogs,
            secret or hashlib.sha256(str(id(self)).encode()).digest(),
            is_self=io.is_self,
            inbound_via=io.inbound_via,
        )

    # -- requests -----------------------------------------------------------------------

    async def on_request(self, request: Request, source: Any) -> None:
        """A checked request whose top Via already carries received/rport."""
        method = request.method
        if method == "ACK":
            try:
                self._on_ack(request, source)
            except ParseError as exc:  # an ACK is never answered: dropped, and said so
                _log.info("dropped an ACK from %s: %s", getattr(source, "ip", "?"), exc.reason)
            return
        key = server_key(request)
        ctx = self.servers.get(key)
        if ctx is not None:
            self._run_server(ctx, ctx.tx.on_retransmission(request, self.io.now()))
            return
        if method == "CANCEL":
            self._on_cancel(request, source)
            return
        tx = server_transaction(request, source_reliable(source))
        ctx = Context(request, source, tx)
        self.servers[key] = ctx
        if method == "INVITE":
            self._respond(ctx, request.response(100, headers=[("Server", self.server_header)]))
        problem = self._validate(ctx)
        if problem is not None:
            self._respond(ctx, problem)
            return
        try:
            decision = await self._route(ctx)
        except ParseError as exc:
            self._final(ctx, exc.status, exc.reason)
            return
        except Exception:
            _log.exception("routing %s %s failed", method, request.uri_text)
            self._final(ctx, 500, "Server Internal Error")
            return
        if ctx.final_sent:
            return  # cancelled while the router was busy
        if decision.response is not None:
            decision.response.add("Server", self.server_header)
            self._respond(ctx, decision.response)
            return
        if decision.status:
            self._final(ctx, decision.status, decision.reason, decision.headers)
            return
        if not decision.targets:
            self._final(ctx, 480)
            return
        for target in decision.targets:
            self._fork(ctx, target)
        if not ctx.branches:
            self._final(ctx, 503, "No Route To Target")
        elif self.calls is not None:
            ctx.call = self.calls.routed(ctx.request, decision)

    async def serve(
        self, request: Request, source: Any, answer: Callable[[], Awaitable[Response]]
    ) -> None:
        """Answer a request we are the UAS of (REGISTER) inside a server transaction, so a
        retransmission gets the same response instead of reaching ``answer`` twice."""
        key = server_key(request)
        ctx = self.servers.get(key)
        if ctx is not None:
            self._run_server(ctx, ctx.tx.on_retransmission(request, self.io.now()))
            return
        ctx = Context(request, source, server_transaction(request, source_reliable(source)))
        self.servers[key] = ctx
        try:
            response = await answer()
        except Exception:
            _log.exception("answering %s failed", request.method)
            response = request.response(500)
        response.add("Server", self.server_header)
        self._respond(ctx, response)

    def _validate(self, ctx: Context) -> Response | None:
        request = ctx.request
        hops = request.max_forwards
        if hops is not None and hops <= 0:
            return request.response(483, headers=[("Server", self.server_header)])
        ctx.loop_hash = loop_hash(request)  # once: every branch's Via carries it
        if is_loop(request, ctx.loop_hash):
            return request.response(482, headers=[("Server", self.server_header)])
        return None

    async def _route(self, ctx: Context) -> Decision:
        """Route headers first (loose routing, §16.4), the router otherwise."""
        undo_strict_routing(ctx.request, self.io.is_self)
        decision = self.dialog_routes.route(ctx)
        if decision is None:
            return await self.router(ctx.request, ctx.source)
        return decision

    def _fork(self, ctx: Context, target: Target) -> None:
        request = ctx.request
        try:
            uri = parse_uri(target.uri)
        except ParseError:
            _log.warning("router gave a bad target URI %r", target.uri)
            return
        hop = target.hop
        if hop is None:
            if not isinstance(uri, SipURI):
                return
            hop = Hop.from_uri(uri)
        out = Request(request.method, target.uri, list(request.headers), request.body)
        hops = request.max_forwards
        out.set("max-forwards", str(69 if hops is None else hops - 1))
        for name in target.remove_headers:
            out.remove(header_key(name))
        for name, value in target.add_headers:
            out.add(name, value)
        local = self.io.via_for(hop)
        if (
            request.method in DIALOG_METHODS
            and request.to.tag is None
            and (
                self.record_route
                or hop.transport in WEBSOCKET
                or _protocol(ctx.source) in WEBSOCKET
            )
        ):
            # WebSocket clients can be reached only down their own connection, and send
            # everything (ACK, BYE) to us: their dialogs must go through us (RFC 7118).
            self.dialog_routes.record_route(out, request.call_id, ctx.source, local)
            ctx.record_routed = True
        push_via(out, ctx.loop_hash, local, next(self._seq))
        shift = self.cseq_shifts.of(request)
        if shift:
            shift_cseq(out, shift)
        br = Branch(ctx, client_transaction(out, hop.transport in STREAM), hop)
        br.credentials, br.shift = target.credentials, shift
        ctx.branches.append(br)
        self.branches.start(br)

    def _on_ack(self, request: Request, source: Any) -> None:
        key = server_key(request)
        ctx = self.servers.get(key)
        if ctx is not None:
            # The ACK of a non-2xx final we sent: absorbed hop by hop (§17.2.1).
            self._run_server(ctx, ctx.tx.on_retransmission(request, self.io.now()))
            return
        # An ACK for a 2xx travels end to end, by its Route headers (§16.4, no transaction).
        hops = request.max_forwards
        if hops is not None and hops <= 0:
            return
        if not request.has("route"):
            return  # no route through us recorded: nothing to do with it
        hashed = loop_hash(request)
        hop = self.dialog_routes.ack_hop(request, source)
        if hop is None:
            return  # not in a dialog we recorded: dropped (an ACK gets no answer)
        request.set("max-forwards", str(69 if hops is None else hops - 1))
        shift = self.cseq_shifts.of(request)
        if shift:
            shift_cseq(request, shift)
        push_via(request, hashed, self.io.via_for(hop), next(self._seq))
        self.io.send(request, hop, _ignore)

    def _on_cancel(self, request: Request, source: Any) -> None:
        invite_key = server_key(request, method="INVITE")
        ctx = self.servers.get(invite_key)
        tx = server_transaction(request, source_reliable(source))
        cancel_ctx = Context(request, source, tx)
        self.servers[server_key(request)] = cancel_ctx
        if ctx is None or ctx.final_sent:
            self._respond(
                cancel_ctx, request.response(481, headers=[("Server", self.server_header)])
            )
            return
        self._respond(cancel_ctx, request.response(200, headers=[("Server", self.server_header)]))
        for br in ctx.branches:
            self.branches.cancel(br)
        if not ctx.branches:
            self._final(ctx, 487)

    # -- responses ----------------------------------------------------------------------

    def on_response(self, response: Response, source: Any) -> None:
        """A response from the network: to its client transaction, else stateless."""
        try:
            key = client_key(response)
        except ParseError:
            return
        br = self.branches.clients.get(key)
        if br is not None:
            br.peer_ip = getattr(source, "ip", None)
            done = br.response
            if done is not None and done.status >= 300 and 200 <= response.status < 300:
                # A 2xx after the branch's non-2xx final (a forking proxy downstream): its
                # transaction would swallow it, but every 2xx goes upstream (§16.7 step 5).
                if not br.for_cancel:
                    self._on_branch_response(br, response)
                return
            self.branches.run(br, br.tx.on_response(response, self.io.now()))
            return
        self._forward_stray(response)

    def _forward_stray(self, response: Response) -> None:
        """A response no transaction knows (a late 2xx retransmission, say): if our Via
        is on top, pop it and send the response on by the next Via (§16.11)."""
        hop = stray_hop(response, self.io.is_self)
        if hop is None:
            return
        shift = self.cseq_shifts.of(response)
        if shift:
            shift_cseq(response, -shift)
        self.io.send(response, hop, _ignore)

    def _on_branch_response(self, br: Branch[Context], response: Response) -> None:
        ctx = br.ctx
        status = response.status
        if br.shift:
            shift_cseq(response, -br.shift)  # the caller sees its own CSeq
        if status in (401, 407) and self._answer_challenge(br, response):
            return
        if status < 200:
            br.provisional = True  # even a 100: the next hop has the INVITE, CANCEL may go
            if br.cancel_wanted and not br.cancelled:
                self.branches.send_cancel(br)
            if status == 100:
                return
            self.branches.restart_timer_c(br)
            if not ctx.final_sent:
                if status > 100 and response.to.tag is not None:
                    self.dialog_routes.note(ctx, response, br.peer_ip, br.hop.host)
                self._forward(ctx, response)
            return
        self.branches.stop_timer_c(br)
        first_final = br.response is None
        br.response = response
        if 200 <= status < 300:
            # Every 2xx goes upstream (§16.7 step 5), and the rest of an INVITE is cancelled.
            self.dialog_routes.note(ctx, response, br.peer_ip, br.hop.host)
            self._forward(ctx, response)
            if ctx.request.method == "INVITE":
                for other in ctx.branches:
                    if other is not br:
                        self.branches.cancel(other)
            return
        if not first_final or ctx.final_sent:
            return
        if status >= 600 and ctx.request.method == "INVITE":
            for other in ctx.branches:
                if other is not br:
                    self.branches.cancel(other)
        if status in (401, 407):
            name = "www-authenticate" if status == 401 else "proxy-authenticate"
            ctx.challenges += [(name, n, v) for k, n, v in response.headers if k == name]
        if ctx.best is None or _better(response, ctx.best):
            ctx.best = response
        self._maybe_finish(ctx)

    def _answer_challenge(self, br: Branch[Context], challenge: Response) -> bool:
        """Answer a Gateway's challenge with its credentials on a new branch, CSeq + 1
        (Routr's compensation); False when it cannot or should not be answered."""
        ctx = br.ctx
        if ctx.final_sent or br.cancel_wanted or br.cancelled or br.answered:
            return False
        out = answer_challenge(
            br.tx.request,
            challenge,
            br.credentials,
            br.hop,
            in_dialog=ctx.request.to.tag is not None,
            credentials_at=self.gateway_credentials,
        )
        if out is None:
            return False
        self.branches.stop_timer_c(br)
        br.response = challenge  # the old branch is done; its transaction ACKs the 407
        push_via(out, ctx.loop_hash, self.io.via_for(br.hop), next(self._seq))
        new = Branch(ctx, client_transaction(out, br.hop.transport in STREAM), br.hop)
        new.shift, new.answered = br.shift + 1, True
        ctx.branches[ctx.branches.index(br)] = new
        self.cseq_shifts.note(ctx.request.call_id, ctx.request.from_.tag, new.shift)
        self.branches.start(new)
        return True

    def _branch_failed(self, br: Branch[Context], status: int, reason: str) -> None:
        """The branch gave no response: Timer B/F or C, or it could not be sent."""
        if br.response is not None:
            return
        self.branches.stop_timer_c(br)
        ctx = br.ctx
        # As if the branch had answered: our Via on top, which _forward pops (a response
        # made from the received request would lose the caller's Via instead).
        response = br.tx.request.response(status, reason, headers=[("Server", self.server_header)])
        if br.shift:
            shift_cseq(response, -br.shift)  # made of what we sent: the caller's CSeq back
        br.response = response
        if not ctx.final_sent and (ctx.best is None or _better(response, ctx.best)):
            ctx.best = response
        self._maybe_finish(ctx)

    def _maybe_finish(self, ctx: Context) -> None:
        if ctx.final_sent or any(br.pending for br in ctx.branches):
            return
        best = ctx.best
        if best is None:
            self._final(ctx, 408)
            return
        if best.status in (401, 407) and ctx.challenges:
            # §16.7 step 7: every challenge of every branch goes up together.
            name = "www-authenticate" if best.status == 401 else "proxy-authenticate"
            best.headers = [h for h in best.headers if h[0] != name]
            best.headers += [c for c in ctx.challenges if c[0] == name]
        if best.status == 503:
            # §16.7 step 6: a 503 must not make the client think *we* are unavailable.
            best = _with_status(best, 500, "Server Internal Error")
        self._forward(ctx, best)

    def _forward(self, ctx: Context, response: Response) -> None:
        """Send a response from a branch upstream, without our Via."""
        out = Response(response.status, response.reason, list(response.headers), response.body)
        out.pop_first("via")
        if not out.has("via"):
            return
        self._respond(ctx, out)

    def _respond(self, ctx: Context, response: Response) -> None:
        status = response.status
        if status >= 200:
            if ctx.final_sent:
                if not (200 <= status < 300):
                    return
                if ctx.final_status >= 300:
                    # §16.7 step 5: every 2xx goes upstream, also after our non-2xx final
                    # (Timer C's 408, a 6xx that won the race): statelessly, as the server
                    # transaction is done with its own final.
                    self.io.reply(ctx.request, response, ctx.source)
                    return
            else:
                ctx.final_sent = True
                ctx.final_status = status
                if ctx.early:
                    self.dialog_routes.end_early(ctx)
                if ctx.call and self.calls is not None:
                    self.calls.on_final(ctx.request.call_id, status)
            if ctx.dialog is not None and ctx.request.method == "BYE":
                self.dialogs.remove(ctx.dialog)
                if self.calls is not None:
                    self.calls.on_bye_answered(ctx.request.call_id, status)
        self._run_server(ctx, ctx.tx.respond(response, self.io.now()))

    def _final(
        self,
        ctx: Context,
        status: int,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        extra = [("Server", self.server_header), *(headers or [])]
        self._respond(ctx, ctx.request.response(status, reason, headers=extra))

    # -- running the server transaction ------------------------------------------------

    def _run_server(self, ctx: Context, actions: list[Action]) -> None:
        tx = ctx.tx
        for action in actions:
            if isinstance(action, Send):
                message = action.message
                if isinstance(message, Response):
                    self.io.reply(ctx.request, message, ctx.source)
            elif isinstance(action, Terminated):
                self.servers.pop(tx.key, None)
                if ctx.timer is not None:
                    ctx.timer.cancel()
                    ctx.timer = None
                # Context <-> Branch is a reference cycle: break it so the request is freed
                # now, not by a full garbage collection (whose pauses showed in p99 latency).
                if ctx.final_sent and not any(br.pending for br in ctx.branches):
                    ctx.branches = []
                return
            elif isinstance(action, Deliver):
                pass  # ACK of a 2xx in Accepted: end to end, already routed
        rearm(self.io, ctx, tx, self._run_server)

    def pending(self) -> int:
        """Requests still waiting for their final response (for a graceful stop)."""
        return sum(1 for ctx in self.servers.values() if not ctx.final_sent)


def source_reliable(source: Any) -> bool:
    return _protocol(source) in STREAM


def _protocol(source: Any) -> str:
    return str(getattr(source, "protocol", "udp"))


def _ignore() -> None:
    return None


def _class_rank(status: int) -> tuple[int, int]:
    # §16.7 step 6: 6xx first; then the lowest class, 4xx before 5xx before 3xx... with
    # 408 and 503 (our own failures) the least telling answers of their class.
    cls = status // 100
    order = {6: 0, 4: 1, 5: 2, 3: 3}.get(cls, 4)
    weak = 1 if status in (408, 503, 480) else 0
    return order, weak


def _better(new: Response, old: Response) -> bool:
    return _class_rank(new.status) < _class_rank(old.status)


def _with_status(response: Response, status: int, reason: str) -> Response:
    return Response(status, reason, list(response.headers), response.body)
