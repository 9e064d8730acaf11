"""The transaction-stateful proxy of RFC 3261 §16.

No sockets and no clock of its own: it is given a :class:`ProxyIO` (send, reply, now,
timers) and a router, and it turns requests and responses into forwarded messages.
What it does, in §16 order: validate (Max-Forwards, loops, Proxy-Require), answer 100 to
INVITE, pick targets (Route headers for in-dialog requests, the router otherwise), fork in
parallel, aggregate responses (§16.7), CANCEL pending branches, run Timer C.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

from routr.core.dialogs import Dialog, Dialogs, Side, uri_key
from routr.core.gateways import CSeqShifts, authorize, shift_cseq
from routr.core.routing import STREAM, Decision, Hop, Target, TimerHandle
from routr.sip.address import MAGIC_COOKIE, parse_address
from routr.sip.errors import ParseError
from routr.sip.headers import header_key
from routr.sip.message import Request, Response
from routr.sip.transaction import (
    Action,
    ClientTransaction,
    Deliver,
    Send,
    ServerTransaction,
    Terminated,
    Timeout,
    client_key,
    client_transaction,
    server_key,
    server_transaction,
)
from routr.sip.uri import SipURI, hostport, parse_uri

_log = logging.getLogger("routr.proxy")

TIMER_C = 180.0  # > 3 minutes is the RFC's floor; 180 s is what Kamailio's fr_inv uses
CANCEL_GRACE = 32.0  # 64*T1: how long a cancelled branch may take to answer 487
DIALOG_METHODS = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})
#: In-dialog requests whose 2xx refreshes the remote targets (RFC 3261 §12.2, RFC 3311).
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})
WEBSOCKET = frozenset({"ws", "wss"})


Router = Callable[[Request, Any], Awaitable[Decision]]


class ProxyIO(Protocol):
    """What the proxy needs from the world; the server implements it over the transports."""

    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle: ...

    def reply(self, request: Request, response: Response, source: Any) -> None: ...

    def send(self, message: Request | Response, hop: Hop, on_error: Callable[[], None]) -> None:
        """Send; call ``on_error`` if it cannot be sent (no route, flow gone, refused)."""

    def via_for(self, hop: Hop) -> tuple[str, str, int]:
        """(transport, host, port) to put in our Via / Record-Route towards ``hop``."""

    def inbound_via(self, source: Any) -> tuple[str, str, int]:
        """(transport, host, port) of the interface a request from ``source`` arrived on."""

    def is_self(self, uri: SipURI) -> bool: ...


# -- per-request state -----------------------------------------------------------------


class Branch:
    """One forked copy of a request and its client transaction."""

    __slots__ = ("answered", "cancel_wanted", "cancelled", "credentials", "ctx", "for_cancel",
                 "hop", "peer_ip", "provisional", "response", "shift", "timer", "timer_c",
                 "tx")  # fmt: skip

    def __init__(
        self, ctx: Context, tx: ClientTransaction, hop: Hop, for_cancel: bool = False
    ) -> None:
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
        self.shift = 0  # CSeq raised by this much on the way out (gateways.CSeqShifts)
        self.answered = False  # the request answers a challenge: a second one goes upstream
        self.peer_ip: str | None = None  # where its last response came from

    @property
    def pending(self) -> bool:
        return self.response is None


class Context:
    """A request being proxied: its server transaction and its branches."""

    __slots__ = ("best", "branches", "challenges", "dialog", "dialog_side", "early",
                 "final_sent", "final_status", "loop_hash", "record_routed", "request",
                 "source", "timer", "tx")  # fmt: skip

    def __init__(self, request: Request, source: Any, tx: ServerTransaction) -> None:
        self.request = request
        self.source = source
        self.tx = tx
        self.branches: list[Branch] = []
        self.best: Response | None = None
        self.final_sent = False
        self.final_status = 0  # the status of the first final response sent
        self.challenges: list[tuple[str, str, str]] = []
        self.timer: TimerHandle | None = None
        self.loop_hash = ""  # §16.6 step 8, of the request as received
        self.dialog: Dialog | None = None  # the dialog an in-dialog request was checked in
        self.dialog_side = 0  # which side of it sent the request
        self.early: list[Dialog] = []  # early dialogs made by 1xx to this request
        self.record_routed = False  # we put our Record-Route in (some branch of) it


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
        gateway_credentials: Callable[[Hop], tuple[str, str] | None] | None = None,
        dialogs: Dialogs | None = None,
    ) -> None:
        self.io = io
        #: The credentials of the Gateway at a hop, if one is there: to answer its challenge
        #: to an in-dialog request, whose route (unlike the router's targets) names no Gateway.
        self.gateway_credentials = gateway_credentials
        self.router = router
        self.record_route = record_route
        self.server_header = server_header
        self.timer_c = timer_c
        self._secret = secret or hashlib.sha256(str(id(self)).encode()).digest()
        self.servers: dict[str, Context] = {}
        self.clients: dict[str, Branch] = {}
        self._seq = itertools.count(1)
        self.cseq_shifts = CSeqShifts()
        #: The dialogs we record-routed: in-dialog requests are relayed only inside them.
        self.dialogs = dialogs if dialogs is not None else Dialogs(io.now)

    # -- requests -----------------------------------------------------------------------

    async def on_request(self, request: Request, source: Any) -> None:
        """A checked request whose top Via already carries received/rport."""
        method = request.method
        if method == "ACK":
            self._on_ack(request, source)
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
        ctx.loop_hash = self._loop_hash(request)  # once: every branch's Via carries it
        if self._is_loop(request, ctx.loop_hash):
            return request.response(482, headers=[("Server", self.server_header)])
        return None

    def _loop_hash(self, request: Request) -> str:
        # §16.6 step 8: a hash of what decides routing; the same request coming back
        # unchanged (a loop, not a spiral) yields the same branch prefix.
        seed = "|".join(
            (
                request.uri_text,
                request.from_.tag or "",
                request.to.tag or "",
                request.call_id,
                str(request.cseq.number),
                ",".join(request.get_all("route")),
            )
        )
        return hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), digest_size=5).hexdigest()

    def _is_loop(self, request: Request, loop_hash: str) -> bool:
        prefix = MAGIC_COOKIE + loop_hash
        for via in request.vias[1:]:
            branch = via.branch
            if branch and branch.startswith(prefix):
                return True
        return False

    async def _route(self, ctx: Context) -> Decision:
        """Route headers first (loose routing, §16.4), the router otherwise."""
        request, source = ctx.request, ctx.source
        uri = request.uri
        if (
            isinstance(uri, SipURI)
            and uri.user is None
            and "r" in uri.params
            and request.has("route")
            and self.io.is_self(uri)
        ):
            # A strict router sent us the request (§16.4): the Request-URI is the value we
            # put in Record-Route, the last Route the real target. Our value goes back on
            # top as a Route, so that it is checked and popped like any other.
            routes = request.get_all("route")
            last = parse_address(routes[-1])
            own = request.uri_text
            request.uri = last.uri
            request.headers = [h for h in request.headers if h[0] != "route"]
            request.add("Route", f"<{own}>")
            for value in routes[:-1]:
                request.add("Route", value)
        in_dialog = request.to.tag is not None
        popped = self._pop_own_routes(request, token_needed=in_dialog)
        if popped is None:
            return Decision.reject(403, "Route Not Recorded Here")
        routes = request.get_all("route")
        if routes:
            nxt = parse_address(routes[0]).uri
            if not isinstance(nxt, SipURI):
                return Decision.reject(416)
            if not in_dialog:
                # A preloaded Route from a client: the router still decides.
                return await self.router(request, source)
            if not popped:
                # A Route set that does not go through us (no recorded, signed entry of
                # ours on top): following it would relay for anyone.
                return Decision.reject(403, "Route Not Recorded Here")
            if not self._in_dialog_ok(ctx, nxt, by_route=True):
                return Decision.reject(403, "Dialog Not Known Here")
            return Decision([Target(request.uri_text, Hop.from_uri(nxt))])
        if popped and in_dialog:
            # §16.5: we recorded the route and it ends here: the Request-URI (the remote
            # target) is where the dialog goes; the router is for requests out of dialog.
            if not self._in_dialog_ok(ctx, uri_key(request.uri), by_route=False):
                return Decision.reject(403, "Dialog Not Known Here")
            return Decision([Target(request.uri_text)])
        if in_dialog:
            # In-dialog requests are not authenticated (their dialog was, when it was made),
            # so one that no Route of ours covers must not reach the router as if its From
            # were proven: that would let anyone call out through a gateway with a To tag.
            return Decision.reject(404, "Not Here")
        return await self.router(request, source)

    def _dialog_sender(
        self, request: Request, source: Any, target: SipURI | str | None, by_route: bool
    ) -> tuple[Dialog, int] | None:
        """The recorded dialog of an in-dialog request and the side that sent it, when
        that side may send to ``target`` (the other side's remote target, or the
        Record-Route entry next to ours on that side ``by_route``); None otherwise.

        The Route token only proves that we recorded *some* dialog of this Call-ID (any
        caller of a local AOR learns it): the table decides where the request may go."""
        dialog = self.dialogs.find(request.call_id, request.from_.tag, request.to.tag)
        if dialog is None:
            return None
        key = uri_key(target) if isinstance(target, SipURI) else target
        side = dialog.sender(getattr(source, "ip", None), key, by_route)
        return None if side is None else (dialog, side)

    def _in_dialog_ok(self, ctx: Context, target: SipURI | str | None, by_route: bool) -> bool:
        found = self._dialog_sender(ctx.request, ctx.source, target, by_route)
        if found is None:
            _log.info("in-dialog %s %s from %s refused: dialog or target not recorded",
                      ctx.request.method, ctx.request.uri_text, ctx.source)  # fmt: skip
            return False
        ctx.dialog, ctx.dialog_side = found
        return True

    def _pop_own_routes(self, request: Request, *, token_needed: bool) -> bool | None:
        """Pop the Route values naming us (two of them after an RFC 5658 double
        Record-Route); whether any recorded one was popped, or None when the last of ours
        lacks our token. A tokenless one followed by another of ours (an outbound proxy
        set in a phone, in front of the recorded route) is popped on the way."""
        popped = False
        while True:
            routes = request.get_all("route")
            if not routes:
                return popped
            top = parse_address(routes[0]).uri
            if not (isinstance(top, SipURI) and self.io.is_self(top)):
                return popped
            if token_needed and not self._route_token_ok(top, request):
                nxt = parse_address(routes[1]).uri if len(routes) > 1 else None
                if not (isinstance(nxt, SipURI) and self.io.is_self(nxt)):
                    return None
                request.pop_first("route")
                continue
            request.pop_first("route")
            popped = True

    def route_token(self, call_id: str) -> str:
        """The value of our Record-Route's ``r`` parameter for a dialog: later requests of
        that dialog prove with it that we recorded the route (no relay by forged Route)."""
        mac = hmac.new(self._secret, call_id.encode("utf-8", "surrogateescape"), "sha256")
        return mac.hexdigest()[:12]

    def _route_token_ok(self, uri: SipURI, request: Request) -> bool:
        token = uri.params.get("r")
        return token is not None and hmac.compare_digest(token, self.route_token(request.call_id))

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
            self._add_record_route(out, ctx, *local)
            ctx.record_routed = True
        self._push_via(out, ctx.loop_hash, local)
        shift = self.cseq_shifts.of(request)
        if shift:
            shift_cseq(out, shift)
        tx = client_transaction(out, hop.transport in STREAM)
        br = Branch(ctx, tx, hop)
        br.credentials, br.shift = target.credentials, shift
        ctx.branches.append(br)
        self.clients[tx.key] = br
        self._run_client(br, tx.start(self.io.now()))
        if request.method == "INVITE":
            br.timer_c = self.io.call_at(self.io.now() + self.timer_c, lambda: self._timer_c(br))

    def _push_via(self, out: Request, loop_hash: str, local: tuple[str, str, int]) -> None:
        """Our Via on top, its branch prefixed by the loop hash of the received request."""
        transport, host, port = local
        branch = f"{MAGIC_COOKIE}{loop_hash}.{next(self._seq):x}"
        value = f"SIP/2.0/{transport.upper()} {hostport(host, port)};branch={branch};rport"
        out.add("Via", value, first=True)

    def _add_record_route(
        self, out: Request, ctx: Context, transport: str, host: str, port: int
    ) -> None:
        token = self.route_token(ctx.request.call_id)
        in_transport, in_host, in_port = self.io.inbound_via(ctx.source)
        outbound = _rr(transport, host, port, token)
        if (in_transport, in_host, in_port) != (transport, host, port):
            # RFC 5658: record both interfaces so each side gets the one it can reach.
            out.add("Record-Route", _rr(in_transport, in_host, in_port, token, r2=True),
                    first=True)  # fmt: skip
            out.add("Record-Route", outbound.replace(";lr", ";lr;r2=on"), first=True)
        else:
            out.add("Record-Route", outbound, first=True)

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
        loop_hash = self._loop_hash(request)
        if not self._pop_own_routes(request, token_needed=True):
            return
        routes = request.get_all("route")
        if routes:
            nxt = parse_address(routes[0]).uri
            if not isinstance(nxt, SipURI):
                return
            if self._dialog_sender(request, source, nxt, by_route=True) is None:
                return  # not in a dialog we recorded: dropped (an ACK gets no answer)
            hop = Hop.from_uri(nxt)
        else:
            uri = request.uri
            if not isinstance(uri, SipURI):
                return
            if self._dialog_sender(request, source, uri, by_route=False) is None:
                return
            hop = Hop.from_uri(uri)
        request.set("max-forwards", str(69 if hops is None else hops - 1))
        shift = self.cseq_shifts.of(request)
        if shift:
            shift_cseq(request, shift)
        self._push_via(request, loop_hash, self.io.via_for(hop))
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
            self._cancel_branch(br)
        if not ctx.branches:
            self._final(ctx, 487)

    # -- responses ----------------------------------------------------------------------

    def on_response(self, response: Response, source: Any) -> None:
        """A response from the network: to its client transaction, else stateless."""
        try:
            key = client_key(response)
        except ParseError:
            return
        br = self.clients.get(key)
        if br is not None:
            br.peer_ip = getattr(source, "ip", None)
            done = br.response
            if done is not None and done.status >= 300 and 200 <= response.status < 300:
                # A 2xx after the branch's non-2xx final (a forking proxy downstream): its
                # transaction would swallow it, but every 2xx goes upstream (§16.7 step 5).
                if not br.for_cancel:
                    self._on_branch_response(br, response)
                return
            self._run_client(br, br.tx.on_response(response, self.io.now()))
            return
        self._forward_stray(response)

    def _forward_stray(self, response: Response) -> None:
        """A response no transaction knows (a late 2xx retransmission, say): if our Via
        is on top, pop it and send the response on by the next Via (§16.11)."""
        vias = response.vias
        if len(vias) < 2 or not (vias[0].branch or "").startswith(MAGIC_COOKIE):
            return
        top = vias[0]
        if not self.io.is_self(SipURI(top.host, None, top.port)):
            return
        response.pop_first("via")
        shift = self.cseq_shifts.of(response)
        if shift:
            shift_cseq(response, -shift)
        nxt = response.vias[0]
        host = nxt.received or nxt.host_key
        port = nxt.rport or nxt.port or 5060
        self.io.send(response, Hop(nxt.transport.lower(), host, port), _ignore)

    def _on_branch_response(self, br: Branch, response: Response) -> None:
        ctx = br.ctx
        status = response.status
        if br.shift:
            shift_cseq(response, -br.shift)  # the caller sees its own CSeq
        if status in (401, 407) and self._authorize(br, response):
            return
        if status < 200:
            br.provisional = True  # even a 100: the next hop has the INVITE, CANCEL may go
            if br.cancel_wanted and not br.cancelled:
                self._send_cancel(br)
            if status == 100:
                return
            if br.timer_c is not None:  # §16.7 step 2: a provisional resets Timer C
                br.timer_c.cancel()
                br.timer_c = self.io.call_at(self.io.now() + self.timer_c,
                                             lambda: self._timer_c(br))  # fmt: skip
            if not ctx.final_sent:
                if status > 100 and response.to.tag is not None:
                    self._note_dialog(br, response)
                self._forward(ctx, response)
            return
        self._stop_timer_c(br)
        first_final = br.response is None
        br.response = response
        if 200 <= status < 300:
            # Every 2xx goes upstream (§16.7 step 5), and the rest of an INVITE is cancelled.
            self._note_dialog(br, response)
            self._forward(ctx, response)
            if ctx.request.method == "INVITE":
                for other in ctx.branches:
                    if other is not br:
                        self._cancel_branch(other)
            return
        if not first_final or ctx.final_sent:
            return
        if status >= 600 and ctx.request.method == "INVITE":
            for other in ctx.branches:
                if other is not br:
                    self._cancel_branch(other)
        if status in (401, 407):
            name = "www-authenticate" if status == 401 else "proxy-authenticate"
            ctx.challenges += [(name, n, v) for k, n, v in response.headers if k == name]
        if ctx.best is None or _better(response, ctx.best):
            ctx.best = response
        self._maybe_finish(ctx)

    def _note_dialog(self, br: Branch, response: Response) -> None:
        """Record the dialog a 1xx/2xx with a To tag makes (when we record-routed its
        request), or refresh its remote targets (a 2xx to an in-dialog target refresh)."""
        ctx = br.ctx
        request = ctx.request
        to_tag = response.to.tag
        if to_tag is None:
            return
        dialog = ctx.dialog
        if dialog is not None:
            if response.status >= 200 and request.method in TARGET_REFRESH:
                mine, theirs = _contact_key(request), _contact_key(response)
                if mine is not None:
                    dialog.sides[ctx.dialog_side].contact = mine
                if theirs is not None:
                    dialog.sides[1 - ctx.dialog_side].contact = theirs
            return
        from_tag = request.from_.tag
        if not (ctx.record_routed and request.method in DIALOG_METHODS and from_tag):
            return
        if request.to.tag is not None:
            return  # not a request we record-routed
        known = self.dialogs.find(request.call_id, from_tag, to_tag)
        if known is not None and known.confirmed:
            return  # a retransmitted 2xx (or a late 1xx): the dialog, maybe refreshed, stays
        caller_route, callee_route = self._route_neighbours(response)
        ips = tuple(ip for ip in (br.peer_ip, br.hop.host) if ip)
        caller_ip = getattr(ctx.source, "ip", None)
        dialog = self.dialogs.record(
            request.call_id,
            from_tag,
            to_tag,
            Side(_contact_key(request), (caller_ip,) if caller_ip else (), caller_route),
            Side(_contact_key(response), ips, callee_route),
        )
        if response.status >= 200:
            dialog.confirmed = True
        else:
            ctx.early.append(dialog)

    def _route_neighbours(self, response: Response) -> tuple[str | None, str | None]:
        """The Record-Route entries just below ours (the caller's side: where the callee's
        requests go after us) and just above (the callee's side)."""
        entries = response.get_all("record-route")
        own = []
        uris = []
        for i, value in enumerate(entries):
            try:
                uri = parse_address(value).uri
            except ParseError:
                uri = None
            uris.append(uri)
            if isinstance(uri, SipURI) and "r" in uri.params and self.io.is_self(uri):
                own.append(i)
        if not own:
            return None, None
        first, last = own[0], own[-1]
        callee = uri_key(uris[first - 1]) if first > 0 else None
        caller = uri_key(uris[last + 1]) if last + 1 < len(uris) else None
        return caller, callee

    def _authorize(self, br: Branch, challenge: Response) -> bool:
        """Answer a Gateway's challenge with its credentials on a new branch, CSeq + 1
        (Routr's compensation); False when it cannot or should not be answered."""
        ctx = br.ctx
        if ctx.final_sent or br.cancel_wanted or br.cancelled or br.answered:
            return False
        credentials = br.credentials
        if credentials is None and self.gateway_credentials is not None:
            # In a dialog: the gateway is known by the address the request went to, when it
            # went straight there (a next hop that is another proxy is not the gateway).
            if ctx.request.to.tag is None:
                return False
            credentials = self.gateway_credentials(br.hop)
        if credentials is None:
            return False
        out = authorize(br.tx.request, challenge, credentials)
        if out is None:
            return False
        self._stop_timer_c(br)
        br.response = challenge  # the old branch is done; its transaction ACKs the 407
        self._push_via(out, ctx.loop_hash, self.io.via_for(br.hop))
        tx = client_transaction(out, br.hop.transport in STREAM)
        new = Branch(ctx, tx, br.hop)
        new.shift, new.answered = br.shift + 1, True
        ctx.branches[ctx.branches.index(br)] = new
        self.cseq_shifts.note(ctx.request.call_id, ctx.request.from_.tag, new.shift)
        self.clients[tx.key] = new
        self._run_client(new, tx.start(self.io.now()))
        if ctx.request.method == "INVITE":
            new.timer_c = self.io.call_at(self.io.now() + self.timer_c,
                                          lambda: self._timer_c(new))  # fmt: skip
        return True

    def _branch_failed(self, br: Branch, status: int, reason: str) -> None:
        """The branch gave no response: Timer B/F, or it could not be sent."""
        if br.response is not None:
            return
        self._stop_timer_c(br)
        ctx = br.ctx
        # As if the branch had answered: our Via on top, which _forward pops (a response
        # made from the received request would lose the caller's Via instead).
        response = br.tx.request.response(status, reason, headers=[("Server", self.server_header)])
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
                    for dialog in ctx.early:
                        if not dialog.confirmed:
                            self.dialogs.remove(dialog)
                    ctx.early = []
            if ctx.dialog is not None and ctx.request.method == "BYE":
                self.dialogs.remove(ctx.dialog)
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

    # -- CANCEL and Timer C -------------------------------------------------------------

    def _cancel_branch(self, br: Branch) -> None:
        if not br.pending or br.cancelled:
            return
        if br.provisional:
            self._send_cancel(br)
        else:
            br.cancel_wanted = True  # §9.1: a CANCEL waits for a provisional response

    def _send_cancel(self, br: Branch) -> None:
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
        self._run_client(cancel_branch, tx.start(self.io.now()))

    def _timer_c(self, br: Branch) -> None:
        br.timer_c = None
        if not br.pending:
            return
        if br.provisional:
            if not br.cancelled:
                self._send_cancel(br)
            # The callee gets 64*T1 (32 s) more to answer the CANCEL with 487 before we
            # give up; never more than Timer C itself, when that is shorter (tests).
            grace = min(CANCEL_GRACE, self.timer_c)
            br.timer_c = self.io.call_at(self.io.now() + grace, lambda: self._give_up(br))
        else:
            self._give_up(br)

    def _give_up(self, br: Branch) -> None:
        br.timer_c = None
        self._branch_failed(br, 408, "Request Timeout")
        # No final may ever end the client transaction: end it ourselves, after 64*T1 in
        # which a late 2xx still finds its branch (and so its dialog is recorded).
        grace = min(CANCEL_GRACE, self.timer_c)
        br.timer_c = self.io.call_at(self.io.now() + grace, lambda: self._abandon(br))

    def _abandon(self, br: Branch) -> None:
        br.timer_c = None
        self._run_client(br, br.tx.abandon())

    def _stop_timer_c(self, br: Branch) -> None:
        if br.timer_c is not None:
            br.timer_c.cancel()
            br.timer_c = None

    # -- running transactions -----------------------------------------------------------

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
        self._arm(ctx, tx)

    def _run_client(self, br: Branch, actions: list[Action]) -> None:
        tx = br.tx
        for action in actions:
            if isinstance(action, Send):
                message = action.message
                self.io.send(message, br.hop, partial(self._send_failed, br))  # type: ignore[arg-type]
            elif isinstance(action, Deliver):
                if br.for_cancel:
                    continue
                assert isinstance(action.message, Response)
                self._on_branch_response(br, action.message)
            elif isinstance(action, Timeout):
                if not br.for_cancel:
                    self._branch_failed(br, 408, "Request Timeout")
            elif isinstance(action, Terminated):
                self.clients.pop(tx.key, None)
                if br.timer is not None:
                    br.timer.cancel()
                    br.timer = None
                return
        self._arm(br, tx)

    def _send_failed(self, br: Branch) -> None:
        if br.tx.terminated:
            return
        # Reported as 503 rather than the transaction's own timeout (408).
        if not br.for_cancel:
            self._branch_failed(br, 503, "Service Unavailable")
        self._run_client(br, br.tx.on_transport_error(self.io.now()))

    def _arm(self, holder: Context | Branch, tx: ServerTransaction | ClientTransaction) -> None:
        when = tx.deadline()
        if holder.timer is not None:
            holder.timer.cancel()
            holder.timer = None
        if when is None:
            return

        def fire() -> None:
            holder.timer = None
            actions = tx.on_timer(self.io.now())
            if isinstance(holder, Context):
                self._run_server(holder, actions)
            else:
                self._run_client(holder, actions)

        holder.timer = self.io.call_at(when, fire)

    def pending(self) -> int:
        """Requests still waiting for their final response (for a graceful stop)."""
        return sum(1 for ctx in self.servers.values() if not ctx.final_sent)


def source_reliable(source: Any) -> bool:
    return _protocol(source) in STREAM


def _protocol(source: Any) -> str:
    return str(getattr(source, "protocol", "udp"))


def _rr(transport: str, host: str, port: int, token: str, r2: bool = False) -> str:
    params = f";transport={transport}" if transport != "udp" else ""
    return f"<sip:{hostport(host, port)}{params};lr{';r2=on' if r2 else ''};r={token}>"


def _contact_key(message: Request | Response) -> str | None:
    """The uri_key of a message's (first) Contact, None without a usable one."""
    if not message.has("contact"):
        return None
    try:
        contacts = message.contacts
    except ParseError:
        return None
    return uri_key(contacts[0].uri) if contacts else None


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
