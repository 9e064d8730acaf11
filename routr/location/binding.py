"""One registered contact of an address of record: where and how to reach it."""

from __future__ import annotations

from typing import Any, Final

from routr.sip.errors import ParseError
from routr.sip.uri import SipURI, parse_uri

#: Transports whose bindings are reached over the flow they registered on.
STREAM_TRANSPORTS: Final = frozenset({"tcp", "tls", "ws", "wss"})
#: WebSocket clients have no listening socket at all: only their flow reaches them.
WS_TRANSPORTS: Final = frozenset({"ws", "wss"})

NextHop = tuple[str, str, int, int | None]


class Binding:
    """A contact bound to an AOR (RFC 3261 §10). Treated as immutable once stored.

    ``expires_at`` and ``registered_on`` are absolute times on the caller's clock (the same
    clock as every ``now``). ``registered_on`` is the time of the last (re-)registration.
    """

    __slots__ = (
        "aor",
        "call_id",
        "conn_id",
        "contact",
        "cseq",
        "expires_at",
        "kind",
        "local",
        "nat",
        "node",
        "path",
        "q",
        "ref",
        "registered_on",
        "source_ip",
        "source_port",
        "transport",
        "user_agent",
    )

    def __init__(
        self,
        aor: str,
        contact: str,
        *,
        source_ip: str,
        source_port: int,
        transport: str,
        expires_at: float,
        registered_on: float,
        call_id: str = "",
        cseq: int = 0,
        conn_id: int | None = None,
        local: tuple[str, int] | None = None,
        user_agent: str | None = None,
        q: float = 1.0,
        path: list[str] | None = None,
        nat: bool = False,
        kind: str | None = None,
        ref: str | None = None,
        node: str | None = None,
    ) -> None:
        self.aor = aor
        self.contact = contact
        self.source_ip = source_ip
        self.source_port = source_port
        self.transport = transport.lower()
        self.expires_at = expires_at
        self.registered_on = registered_on
        self.call_id = call_id
        self.cseq = cseq
        self.conn_id = conn_id
        self.local = local
        self.user_agent = user_agent
        self.q = q
        self.path: list[str] = path if path is not None else []
        self.nat = nat
        #: "Agent" or "Peer": who registered it (auth trusts Peer addresses).
        self.kind = kind
        #: The ref of the Agent or Peer resource.
        self.ref = ref
        #: The node that holds the flow (several nodes share a Redis store).
        self.node = node

    def __repr__(self) -> str:
        return f"<Binding {self.aor} -> {self.contact} via {self.transport} {self.source}>"

    @property
    def source(self) -> str:
        """``ip:port`` the REGISTER came from (``[v6]:port`` for IPv6)."""
        host = f"[{self.source_ip}]" if ":" in self.source_ip else self.source_ip
        return f"{host}:{self.source_port}"

    def expires_in(self, now: float) -> int:
        """Seconds left, rounded, never negative."""
        return max(0, round(self.expires_at - now))

    def expired(self, now: float) -> bool:
        return self.expires_at <= now

    def next_hop(self) -> NextHop:
        """``(transport, host, port, conn_id)`` to send a request for this binding to.

        The source address and flow when the client is behind NAT, registered over a
        WebSocket (a browser has no listening socket) or over a TCP/TLS connection
        (``conn_id`` set); otherwise what the Contact URI says (host, port, ``transport``
        parameter), which is also how a Peer's ``contactAddr`` is honoured (no ``conn_id``).
        ``conn_id`` is returned only when reusing a flow.
        """
        if (
            self.nat
            or self.transport in WS_TRANSPORTS
            or (self.conn_id is not None and self.transport in STREAM_TRANSPORTS)
        ):
            return self.transport, self.source_ip, self.source_port, self.conn_id
        try:
            uri = parse_uri(self.contact)
        except ParseError:
            uri = None
        if not isinstance(uri, SipURI):
            return self.transport, self.source_ip, self.source_port, self.conn_id
        transport = uri.transport or ("tls" if uri.scheme == "sips" else "udp")
        default_port = 5061 if transport in ("tls", "wss") else 5060
        return transport, uri.host_key, uri.port or default_port, None

    # -- serialization (Redis and the REST API) --------------------------------------------

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """JSON-ready dict; with ``now``, also ``expires``: the seconds left."""
        data: dict[str, Any] = {
            "aor": self.aor,
            "contact": self.contact,
            "transport": self.transport,
            "source": self.source,
            "sourceIp": self.source_ip,
            "sourcePort": self.source_port,
            "connId": self.conn_id,
            "local": list(self.local) if self.local is not None else None,
            "userAgent": self.user_agent,
            "expiresAt": self.expires_at,
            "registeredOn": self.registered_on,
            "callId": self.call_id,
            "cseq": self.cseq,
            "q": self.q,
            "path": list(self.path),
            "nat": self.nat,
            "kind": self.kind,
            "ref": self.ref,
            "node": self.node,
        }
        if now is not None:
            data["expires"] = self.expires_in(now)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Binding:
        """The inverse of :meth:`to_dict` (``expires`` left is ignored: it is derived)."""
        local = data.get("local")
        return cls(
            str(data["aor"]),
            str(data["contact"]),
            source_ip=str(data["sourceIp"]),
            source_port=int(data["sourcePort"]),
            transport=str(data["transport"]),
            expires_at=float(data["expiresAt"]),
            registered_on=float(data["registeredOn"]),
            call_id=str(data.get("callId") or ""),
            cseq=int(data.get("cseq") or 0),
            conn_id=None if data.get("connId") is None else int(data["connId"]),
            local=(str(local[0]), int(local[1])) if local else None,
            user_agent=data.get("userAgent"),
            q=float(data.get("q", 1.0)),
            path=[str(p) for p in data.get("path") or []],
            nat=bool(data.get("nat", False)),
            kind=data.get("kind"),
            ref=data.get("ref"),
            node=data.get("node"),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Binding):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]
