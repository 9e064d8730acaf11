"""The request entry point of the SIP application, sans-IO.

Requests arrive parsed, checked and Via-stamped; every answer leaves through the
``reply`` callable the server provides. The proxy, registrar and router plug in here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routr.core.identity import Identity
from routr.sip.message import Request, Response
from routr.sip.uri import SipURI, TelURI

ALLOW = (
    "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, MESSAGE, INFO, UPDATE, "
    "REFER, PRACK"
)
ACCEPT = "application/sdp, text/plain, message/sipfrag, application/dtmf-relay"
SUPPORTED = "path, outbound, gruu"
#: Proxy-Require options we implement (none yet): anything else gets 420 (RFC 3261 §16.3).
PROXY_EXTENSIONS: frozenset[str] = frozenset()

Reply = Callable[[Request, Response, Any], None]


class Dispatcher:
    """Decides what happens to each request; answers through ``reply``."""

    def __init__(self, identity: Identity, user_agent: str, reply: Reply) -> None:
        self.identity = identity
        self.user_agent = user_agent
        self._reply = reply

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

    def on_request(self, request: Request, source: Any) -> None:
        if request.method == "ACK":
            return  # no transaction layer yet: a stray ACK is absorbed
        unsupported = self._unsupported(request.get_all("proxy-require"))
        if unsupported:
            self.respond(request, source, 420, headers=[("Unsupported", ", ".join(unsupported))])
            return
        uri = request.uri
        if not isinstance(uri, SipURI | TelURI):
            self.respond(request, source, 416)
            return
        if self._for_me(uri):
            self.on_local(request, source)
            return
        if request.max_forwards == 0:
            self.respond(request, source, 483)
            return
        self.on_route(request, source)

    def _for_me(self, uri: SipURI | TelURI) -> bool:
        """No user part (a request to the server itself) or one of our addresses."""
        return isinstance(uri, SipURI) and (uri.user is None or self.identity.is_self(uri))

    @staticmethod
    def _unsupported(options: list[str]) -> list[str]:
        return [o for o in options if o and o.lower() not in PROXY_EXTENSIONS]

    def on_local(self, request: Request, source: Any) -> None:
        """A request whose target is this server."""
        if request.method == "OPTIONS":
            unsupported = self._unsupported(request.get_all("require"))
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
        else:
            self.respond(request, source, 501, headers=[("Allow", ALLOW)])

    def on_route(self, request: Request, source: Any) -> None:
        """A request for someone else: routed by the proxy (not here yet): 404."""
        if request.method == "CANCEL":
            self.respond(request, source, 481)
        else:
            self.respond(request, source, 404)
