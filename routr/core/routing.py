"""Where a message goes: the types the router decides with and the proxy forwards by.

:class:`Decision` is the router's answer (targets to fork to, or a response), each
:class:`Target` a Request-URI with optionally its next :class:`Hop`. They live here, apart
from the proxy, so that the router, the gateways and the server use them without importing
the proxy. :class:`ProxyIO` is how the proxy sends them (and what its timers are),
:class:`TimerHandle` the one handle every core timer returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from routr.sip.message import Request, Response
from routr.sip.uri import SipURI

#: Transports over a connection: reliable (no retransmissions), and a flow to reuse.
STREAM: Final = frozenset({"tcp", "tls", "ws", "wss"})


class Hop:
    """Where a message goes next: transport, host (IP or name), port, and a flow id."""

    __slots__ = ("conn_id", "host", "port", "transport")

    def __init__(self, transport: str, host: str, port: int, conn_id: int | None = None) -> None:
        self.transport = transport
        self.host = host
        self.port = port
        self.conn_id = conn_id

    def __repr__(self) -> str:
        return f"<Hop {self.transport}:{self.host}:{self.port}>"

    @classmethod
    def from_uri(cls, uri: SipURI) -> Hop:
        """The next hop a SIP URI names (RFC 3263 without NAPTR/SRV: transport param,
        ``sips`` -> TLS, default ports 5060/5061)."""
        transport = uri.transport or ("tls" if uri.scheme == "sips" else "udp")
        host = uri.params.get("maddr") or uri.host_key
        port = uri.port or (5061 if transport in ("tls", "wss") else 5060)
        return cls(transport, host, port)


class Target:
    """A branch to fork: the Request-URI to set, and optionally its next hop."""

    __slots__ = ("add_headers", "credentials", "hop", "remove_headers", "uri")

    def __init__(
        self,
        uri: str,
        hop: Hop | None = None,
        add_headers: list[tuple[str, str]] | None = None,
        remove_headers: tuple[str, ...] = (),
        *,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.uri = uri
        self.hop = hop
        self.add_headers = add_headers or []
        self.remove_headers = remove_headers
        #: (username, secret) to answer a 401/407 of this target with (a Gateway's).
        self.credentials = credentials


class Decision:
    """What the router decided: targets to fork to, or a response to answer with; and,
    for the call record, why: the strategy, who calls (``caller_ref``), whom
    (``callee_ref``: an Agent, Peer or Number), the Gateway or Peer it leaves by, and the
    Peer binding ``(aor, contact)`` it was balanced to, and the egress ``rule`` matched."""

    __slots__ = (
        "binding",
        "callee_ref",
        "caller_ref",
        "gateway_ref",
        "headers",
        "peer_ref",
        "reason",
        "response",
        "rule",
        "status",
        "strategy",
        "targets",
    )

    def __init__(
        self,
        targets: list[Target] | None = None,
        status: int = 0,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        response: Response | None = None,
        *,
        strategy: str = "",
        caller_ref: str | None = None,
        callee_ref: str | None = None,
        gateway_ref: str | None = None,
        peer_ref: str | None = None,
        binding: tuple[str, str] | None = None,
        rule: str | None = None,
    ) -> None:
        self.targets = targets or []
        self.status = status
        self.reason = reason
        self.headers = headers or []
        self.response = response  # a ready answer (a 407 challenge, say)
        self.strategy = strategy
        self.caller_ref = caller_ref
        self.callee_ref = callee_ref
        self.gateway_ref = gateway_ref
        self.peer_ref = peer_ref
        self.binding = binding
        self.rule = rule  # the egress policy's rule that matched, when one did

    @classmethod
    def reject(
        cls, status: int, reason: str | None = None, headers: list[tuple[str, str]] | None = None
    ) -> Decision:
        return cls(None, status, reason, headers)


class TimerHandle(Protocol):
    """What ``call_at`` of the server's timer heap returns."""

    def cancel(self) -> None: ...


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
