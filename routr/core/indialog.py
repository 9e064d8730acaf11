"""In-dialog requests: the Record-Route we sign, the Routes we pop, the dialogs they admit.

An in-dialog request carries no credentials (its dialog was authorized when it was made),
so the proxy relays one only inside a dialog whose route it recorded:

- Our Record-Route carries ``r=``, an HMAC of the Call-ID (:meth:`DialogRoutes.token`): a
  Route naming us without it was not recorded by us. Two entries (RFC 5658, ``r2=on``)
  when the request leaves by another interface than it came in on.
- The Routes naming us are popped; a tokenless one in front of a recorded one (an outbound
  proxy set in a phone) goes on the way.
- The token only proves that we recorded *some* dialog of that Call-ID (any caller of a
  local AOR learns it): the table of :mod:`routr.core.dialogs` decides which side may send
  to where (:meth:`DialogRoutes.route`, and :meth:`DialogRoutes.ack_hop` for the ACK of a
  2xx, which has no transaction).
- A 1xx/2xx with a To tag to a request we record-routed records its dialog; a 2xx to a
  target refresh moves the remote targets (:meth:`DialogRoutes.note`).
- A strict router (RFC 2543) in front of us puts our Record-Route value in the
  Request-URI: :func:`undo_strict_routing` puts it back as a Route first.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any, Protocol

from routr.core.dialogs import Dialog, Dialogs, Side, uri_key
from routr.core.routing import Decision, Hop, Target
from routr.sip.address import parse_address
from routr.sip.errors import ParseError
from routr.sip.message import Request, Response
from routr.sip.uri import SipURI, hostport

_log = logging.getLogger("routr.proxy")  # its refusals are the proxy's, logged as before

#: Requests that make a dialog: we record-route them, and their 1xx/2xx record the dialog.
DIALOG_METHODS = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})
#: In-dialog requests whose 2xx refreshes the remote targets (RFC 3261 §12.2, RFC 3311).
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})


class ProxiedRequest(Protocol):
    """What this module reads and writes of a request being proxied (the proxy's Context)."""

    request: Request
    source: Any
    dialog: Dialog | None  # the dialog an in-dialog request was admitted in
    dialog_side: int  # which side of it sent the request
    early: list[Dialog]  # early dialogs made by 1xx to this request
    record_routed: bool  # we put our Record-Route in (some branch of) it


def undo_strict_routing(request: Request, is_self: Callable[[SipURI], bool]) -> None:
    """A strict router sent us the request (§16.4): the Request-URI is the value we put in
    Record-Route, the last Route the real target. Our value goes back on top as a Route,
    so that it is checked and popped like any other."""
    uri = request.uri
    if not (
        isinstance(uri, SipURI)
        and uri.user is None
        and "r" in uri.params
        and request.has("route")
        and is_self(uri)
    ):
        return
    routes = request.get_all("route")
    last = parse_address(routes[-1])
    own = request.uri_text
    request.uri = last.uri
    request.headers = [h for h in request.headers if h[0] != "route"]
    request.add("Route", f"<{own}>")
    for value in routes[:-1]:
        request.add("Route", value)


class DialogRoutes:
    """Our signed Record-Route, our Routes popped again, and the dialogs they admit."""

    __slots__ = ("_inbound_via", "_is_self", "_secret", "dialogs")

    def __init__(
        self,
        dialogs: Dialogs,
        secret: bytes,
        *,
        is_self: Callable[[SipURI], bool],
        inbound_via: Callable[[Any], tuple[str, str, int]],
    ) -> None:
        #: The dialogs we record-routed: in-dialog requests are relayed only inside them.
        self.dialogs = dialogs
        self._secret = secret
        self._is_self = is_self  # the proxy's I/O: does a URI name us?
        self._inbound_via = inbound_via  # and which of our interfaces a source came in on

    # -- Record-Route and Route -------------------------------------------------------------

    def token(self, call_id: str) -> str:
        """The value of our Record-Route's ``r`` parameter for a dialog: later requests of
        that dialog prove with it that we recorded the route (no relay by forged Route)."""
        mac = hmac.new(self._secret, call_id.encode("utf-8", "surrogateescape"), "sha256")
        return mac.hexdigest()[:12]

    def record_route(
        self, out: Request, call_id: str, source: Any, local: tuple[str, str, int]
    ) -> None:
        """Our Record-Route on top of ``out``, which leaves by ``local`` (transport, host,
        port) a request that came from ``source``."""
        transport, host, port = local
        token = self.token(call_id)
        in_transport, in_host, in_port = self._inbound_via(source)
        outbound = _rr(transport, host, port, token)
        if (in_transport, in_host, in_port) != (transport, host, port):
            # RFC 5658: record both interfaces so each side gets the one it can reach.
            out.add("Record-Route", _rr(in_transport, in_host, in_port, token, r2=True),
                    first=True)  # fmt: skip
            out.add("Record-Route", outbound.replace(";lr", ";lr;r2=on"), first=True)
        else:
            out.add("Record-Route", outbound, first=True)

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
            if not (isinstance(top, SipURI) and self._is_self(top)):
                return popped
            if token_needed and not self._token_ok(top, request):
                nxt = parse_address(routes[1]).uri if len(routes) > 1 else None
                if not (isinstance(nxt, SipURI) and self._is_self(nxt)):
                    return None
                request.pop_first("route")
                continue
            request.pop_first("route")
            popped = True

    def _token_ok(self, uri: SipURI, request: Request) -> bool:
        token = uri.params.get("r")
        # As bytes: compare_digest refuses str with non-ASCII, which a forged Route can hold.
        return token is not None and hmac.compare_digest(
            token.encode("utf-8", "surrogateescape"), self.token(request.call_id).encode()
        )

    # -- admission --------------------------------------------------------------------------

    def route(self, ctx: ProxiedRequest) -> Decision | None:
        """What our Routes and the dialog table decide for ``ctx.request`` (§16.4): a
        target, a refusal, or None when the router decides (a request out of dialog)."""
        request = ctx.request
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
                return None  # a preloaded Route from a client: the router still decides
            if not popped:
                # A Route set that does not go through us (no recorded, signed entry of
                # ours on top): following it would relay for anyone.
                return Decision.reject(403, "Route Not Recorded Here")
            if not self._admit(ctx, nxt, by_route=True):
                return Decision.reject(403, "Dialog Not Known Here")
            return Decision([Target(request.uri_text, Hop.from_uri(nxt))])
        if popped and in_dialog:
            # §16.5: we recorded the route and it ends here: the Request-URI (the remote
            # target) is where the dialog goes; the router is for requests out of dialog.
            if not self._admit(ctx, uri_key(request.uri), by_route=False):
                return Decision.reject(403, "Dialog Not Known Here")
            return Decision([Target(request.uri_text)])
        if in_dialog:
            # In-dialog requests are not authenticated (their dialog was, when it was made),
            # so one that no Route of ours covers must not reach the router as if its From
            # were proven: that would let anyone call out through a gateway with a To tag.
            return Decision.reject(404, "Not Here")
        return None

    def ack_hop(self, request: Request, source: Any) -> Hop | None:
        """Where the ACK of a 2xx goes, end to end by its Routes, when it is sent inside a
        dialog we recorded; None to drop it (an ACK gets no answer)."""
        if not self._pop_own_routes(request, token_needed=True):
            return None
        routes = request.get_all("route")
        if routes:
            nxt = parse_address(routes[0]).uri
            if not isinstance(nxt, SipURI):
                return None
            if self._sender(request, source, nxt, by_route=True) is None:
                return None
            return Hop.from_uri(nxt)
        uri = request.uri
        if not isinstance(uri, SipURI):
            return None
        if self._sender(request, source, uri, by_route=False) is None:
            return None
        return Hop.from_uri(uri)

    def _admit(self, ctx: ProxiedRequest, target: SipURI | str | None, by_route: bool) -> bool:
        found = self._sender(ctx.request, ctx.source, target, by_route)
        if found is None:
            _log.info("in-dialog %s %s from %s refused: dialog or target not recorded",
                      ctx.request.method, ctx.request.uri_text, ctx.source)  # fmt: skip
            return False
        ctx.dialog, ctx.dialog_side = found
        return True

    def _sender(
        self, request: Request, source: Any, target: SipURI | str | None, by_route: bool
    ) -> tuple[Dialog, int] | None:
        """The recorded dialog of an in-dialog request and the side that sent it, when
        that side may send to ``target`` (the other side's remote target, or the
        Record-Route entry next to ours on that side ``by_route``); None otherwise."""
        dialog = self.dialogs.find(request.call_id, request.from_.tag, request.to.tag)
        if dialog is None:
            return None
        key = uri_key(target) if isinstance(target, SipURI) else target
        side = dialog.sender(getattr(source, "ip", None), key, by_route)
        return None if side is None else (dialog, side)

    # -- recording --------------------------------------------------------------------------

    def note(
        self, ctx: ProxiedRequest, response: Response, peer_ip: str | None, hop_host: str
    ) -> None:
        """Record the dialog a 1xx/2xx with a To tag makes (when we record-routed its
        request), or refresh its remote targets (a 2xx to an in-dialog target refresh).
        The callee sends from ``peer_ip`` (where the response came from) or ``hop_host``
        (where its branch went)."""
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
        caller_route, callee_route = self._neighbours(response)
        ips = tuple(ip for ip in (peer_ip, hop_host) if ip)
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

    def end_early(self, ctx: ProxiedRequest) -> None:
        """The request had its final response: its early dialogs no 2xx confirmed end."""
        for dialog in ctx.early:
            if not dialog.confirmed:
                self.dialogs.remove(dialog)
        ctx.early = []

    def _neighbours(self, response: Response) -> tuple[str | None, str | None]:
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
            if isinstance(uri, SipURI) and "r" in uri.params and self._is_self(uri):
                own.append(i)
        if not own:
            return None, None
        first, last = own[0], own[-1]
        callee = uri_key(uris[first - 1]) if first > 0 else None
        caller = uri_key(uris[last + 1]) if last + 1 < len(uris) else None
        return caller, callee


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
