"""The request entry point of the SIP application, sans-IO.

Requests arrive parsed, checked and Via-stamped. What the server answers itself (OPTIONS
to itself, 420, 416) is answered here at once through ``reply``; REGISTER goes to the
registrar and everything else to the proxy, whose work comes back as an awaitable for the
server to run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from routr.core.identity import Identity
from routr.sip.errors import ParseError
from routr.sip.message import Request, Response
from routr.sip.uri import SipURI, TelURI

ALLOW = (
    "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, MESSAGE, INFO, UPDATE, "
    "REFER, PRACK"
)
ACCEPT = "application/sdp, text/plain, message/sipfrag, application/dtmf-relay"
SUPPORTED = "path"  # only what is implemented: Path (RFC 3327) on registrations
#: Proxy-Require options we implement (none yet): anything else gets 420 (RFC 3261 §16.3).
PROXY_EXTENSIONS: frozenset[str] = frozenset()

Reply = Callable[[Request, Response, Any], None]
Handler = Callable[[Request, Any], Awaitable[None]]


class Dispatcher:
    """Decides who handles each request."""

    def __init__(
        self,
        identity: Identity,
        user_agent: str,
        reply: Reply,
        *,
        proxy: Handler | None = None,
        registrar: Handler | None = None,
    ) -> None:
        self.identity = identity
        self.user_agent = user_agent
        self._reply = reply
        #: Where REGISTER and routed requests go; the server sets them once it has built
        #: the registrar and the proxy (which need the transports this dispatcher feeds).
        self.proxy = proxy
        self.registrar = registrar

    def respond(
        self,
        request: Request,
        source: Any,
        status: int,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        if request.method == "ACK":
            return  # ACK is never answered (RFC 3261 §17.2.1)
        extra = [("Server", self.user_agent), *(headers or [])]
        self._reply(request, request.response(status, reason, headers=extra), source)

    def on_request(self, request: Request, source: Any) -> Awaitable[None] | None:
        """Answer at once, or return the work (registrar, proxy) to be awaited."""
        try:
            return self._dispatch(request, source)
        except ParseError as exc:  # a header first read here (Proxy-Require...) is bad
            self.respond(request, source, exc.status, exc.reason)
            return None

    def _dispatch(self, request: Request, source: Any) -> Awaitable[None] | None:
        method = request.method
        if method != "ACK" and method != "CANCEL":
            unsupported = _unsupported(request.get_all("proxy-require"))
            if unsupported:
                self.respond(
                    request, source, 420, headers=[("Unsupported", ", ".join(unsupported))]
                )
                return None
        uri = request.uri
        if not isinstance(uri, SipURI | TelURI):
            self.respond(request, source, 416)
            return None
        if method == "REGISTER" and self.registrar is not None:
            return self.registrar(request, source)
        if self._for_me(request, uri):
            self.on_local(request, source)
            return None
        if self.proxy is None:
            self.respond(request, source, 404)
            return None
        return self.proxy(request, source)

    def _for_me(self, request: Request, uri: SipURI | TelURI) -> bool:
        """A URI with no user part at one of our addresses (any method) or anywhere (for
        OPTIONS): a request to the server itself. With a user part it is for someone the
        router knows; with a Route header someone else is to receive it."""
        if not isinstance(uri, SipURI) or uri.user is not None or request.has("route"):
            return False
        return request.method == "OPTIONS" or self.identity.is_self(uri)

    def on_local(self, request: Request, source: Any) -> None:
        """A request whose target is this server."""
        if request.method == "OPTIONS":
            unsupported = _unsupported(request.get_all("require"))
            if unsupported:
                self.respond(
                    request, source, 420, headers=[("Unsupported", ", ".join(unsupported))]
                )
                return
            self.respond(
                request,
                source,
                200,
                headers=[("Allow", ALLOW), ("Accept", ACCEPT), ("Supported", SUPPORTED)],
            )
        elif request.method == "CANCEL":
            self.respond(request, source, 481)
        elif request.method != "ACK":
            self.respond(request, source, 501, headers=[("Allow", ALLOW)])


def _unsupported(options: list[str]) -> list[str]:
    return [o for o in options if o and o.lower() not in PROXY_EXTENSIONS]
