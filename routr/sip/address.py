"""Typed header values: name-addr headers (From, To, Contact, Route...), Via and CSeq."""

from __future__ import annotations

from routr.sip.errors import ParseError
from routr.sip.headers import (
    format_params,
    parse_params,
    parse_uint,
    quote,
    quoted_end,
    unquote,
)
from routr.sip.uri import URI, SipURI, parse_uri

#: RFC 3261 §8.1.1.7: a branch starting with this was made by an RFC 3261 element.
MAGIC_COOKIE = "z9hG4bK"


class Address:
    """``"Display" <uri>;params`` (or a bare addr-spec), as in From, To, Contact, Route."""

    __slots__ = ("display", "params", "uri")

    def __init__(
        self,
        uri: URI,
        display: str | None = None,
        params: dict[str, str | None] | None = None,
    ) -> None:
        self.uri = uri
        self.display = display
        self.params = params if params is not None else {}

    def __str__(self) -> str:
        head = f"{quote(self.display)} " if self.display else ""
        return f"{head}<{self.uri}>{format_params(self.params, header=True)}"

    def __repr__(self) -> str:
        return f"<Address {self}>"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def sip_uri(self) -> SipURI:
        """The URI when it is SIP/SIPS; a 400 otherwise (an AOR must be SIP)."""
        if isinstance(self.uri, SipURI):
            return self.uri
        raise ParseError("Not a SIP URI")

    @property
    def expires(self) -> int | None:
        """The ``expires`` contact parameter, capped at 2**32-1."""
        value = self.params.get("expires")
        if value is None:
            return None
        text = value.strip()
        if not text.isdigit() or not text.isascii():
            raise ParseError("Bad expires parameter")
        return min(int(text[:12]), 2**32 - 1)

    @property
    def q(self) -> float:
        value = self.params.get("q")
        try:
            q = float(value) if value else 1.0
        except ValueError as exc:
            raise ParseError("Bad q parameter") from exc
        if not 0.0 <= q <= 1.0:  # also refuses nan and inf
            raise ParseError("Bad q parameter")
        return q


#: ``Contact: *`` (a registrar's remove-all), as an Address with no URI of its own.
class StarContact(Address):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(SipURI("*"), None, {})

    def __str__(self) -> str:
        return "*"


def parse_address(text: str) -> Address:
    """Parse a name-addr or addr-spec with header parameters."""
    text = text.strip()
    if not text:
        raise ParseError("Empty address")
    display: str | None = None
    if text[0] == '"':
        end = quoted_end(text, 0)
        display = unquote(text[: end + 1])
        rest = text[end + 1 :].lstrip()
        if rest[:1] != "<":
            raise ParseError("Display name without <URI>")
        text = rest
    lt = text.find("<")
    semi = text.find(";")
    # A '<' after the first ';' is inside a parameter of an addr-spec, not a name-addr.
    if lt >= 0 and (lt == 0 or (display is None and (semi < 0 or lt < semi))):
        if lt > 0:
            # Token display names; RFC 4475 baddn: be liberal and keep them as text.
            display = text[:lt].strip() or None
        gt = text.find(">", lt)
        if gt < 0:
            raise ParseError("Unterminated <URI>")
        uri = parse_uri(text[lt + 1 : gt].strip())
        tail = text[gt + 1 :]
    else:
        # addr-spec: the first ';' ends the URI, what follows are header parameters.
        uri_text, tail = (text, "") if semi < 0 else (text[:semi], text[semi:])
        uri = parse_uri(uri_text.strip())
    tail = tail.strip()
    if tail and tail[0] != ";":
        raise ParseError("Garbage after address")
    return Address(uri, display, parse_params(tail) if tail else None)


class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;received=...;rport``."""

    __slots__ = ("host", "params", "port", "transport")

    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: dict[str, str | None] | None = None,
    ) -> None:
        self.transport = transport
        self.host = host
        self.port = port
        self.params = params if params is not None else {}

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        params = format_params(self.params, header=True)
        return f"SIP/2.0/{self.transport} {self.host}{port}{params}"

    def __repr__(self) -> str:
        return f"<Via {self}>"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport value; ``None`` when absent or requested without a value."""
        value = self.params.get("rport")
        return int(value) if value and value.isdigit() and value.isascii() else None

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def host_key(self) -> str:
        host = self.host.lower()
        return host[1:-1] if host[:1] == "[" else host

    @property
    def rfc3261_branch(self) -> bool:
        """The branch has the magic cookie and something after it."""
        branch = self.params.get("branch")
        return branch is not None and len(branch) > 7 and branch.startswith(MAGIC_COOKIE)


def parse_via(text: str) -> Via:
    """Parse one Via value (whitespace around ``/`` and ``;`` tolerated)."""
    semi = text.find(";")
    head, params = (text, "") if semi < 0 else (text[:semi], text[semi:])
    if head.startswith("SIP/2.0/"):
        proto = head[8:]
    else:
        parts = head.split("/", 2)
        if len(parts) != 3 or parts[0].strip().upper() != "SIP" or parts[1].strip() != "2.0":
            raise ParseError("Bad Via protocol")
        proto = parts[2].lstrip()
    fields = proto.split(None, 1)
    if len(fields) != 2:
        raise ParseError("Bad Via sent-by")
    transport, sent_by = fields
    sent_by = sent_by.rstrip()
    if " " in sent_by or "\t" in sent_by:
        # RFC 3261 §25.1: the COLON before the port is SWS ":" SWS (the rare, slow path).
        sent_by = ":".join(part.strip() for part in sent_by.split(":"))
        if " " in sent_by or "\t" in sent_by:
            raise ParseError("Bad Via sent-by")
    if sent_by[:1] == "[":
        end = sent_by.find("]")
        if end < 0:
            raise ParseError("Bad Via IPv6 reference")
        host, tail = sent_by[: end + 1], sent_by[end + 1 :]
        if tail and tail[0] != ":":
            raise ParseError("Bad Via sent-by")
        port_text = tail[1:] if tail else None
    else:
        host, colon, port_text_s = sent_by.partition(":")
        port_text = port_text_s if colon else None
    if not host:
        raise ParseError("Bad Via sent-by")
    # A ':' must be followed by a port.
    port = parse_uint(port_text, "Via port", 65535) if port_text is not None else None
    return Via(transport.upper(), host, port, parse_params(params) if params else None)


class CSeq:
    """``CSeq: number METHOD``."""

    __slots__ = ("method", "number")

    def __init__(self, number: int, method: str) -> None:
        self.number = number
        self.method = method

    def __str__(self) -> str:
        return f"{self.number} {self.method}"

    def __repr__(self) -> str:
        return f"<CSeq {self}>"


def parse_cseq(text: str) -> CSeq:
    fields = text.split()
    if len(fields) != 2:
        raise ParseError("Bad CSeq")
    # RFC 3261 §8.1.1.5: the sequence number is below 2**31.
    return CSeq(parse_uint(fields[0], "CSeq", 2**31 - 1), fields[1])
