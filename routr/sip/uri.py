"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), with §19.1.4 comparison.

The user part is kept escaped, as received, so a URI re-serializes byte for byte; the
unescaped form is what comparisons and lookups use.
"""

from __future__ import annotations

import re
from urllib.parse import unquote as _pct_unquote

from routr.sip.errors import ParseError
from routr.sip.headers import format_params

# One character class, matched whole: linear time, no backtracking.
_HOST_OK = re.compile(r"[A-Za-z0-9._-]+").fullmatch
_IPV6_OK = re.compile(r"[0-9A-Fa-f:.]+").fullmatch
# Parameters that make two URIs differ when only one of them has it (§19.1.4).
_SIGNIFICANT = ("user", "ttl", "method", "maddr", "transport")


def unescape(text: str) -> str:
    """Resolve ``%HH`` escapes; invalid escapes are kept literally (RFC 4475 esc02)."""
    if "%" not in text:
        return text
    return _pct_unquote(text, errors="surrogateescape")


class URI:
    """Any URI: its scheme and the rest, opaque. Subclasses know SIP and tel."""

    __slots__ = ("scheme",)

    scheme: str

    def __str__(self) -> str:  # pragma: no cover - subclasses override
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    def matches(self, other: URI) -> bool:
        """Equality as RFC 3261 §19.1.4 defines it."""
        return str(self) == str(other)


class AbsoluteURI(URI):
    """A URI of a scheme we do not route (``mailto:``, ``http:``, ...)."""

    __slots__ = ("opaque",)

    def __init__(self, scheme: str, opaque: str) -> None:
        self.scheme = scheme
        self.opaque = opaque

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


class SipURI(URI):
    """``sip:`` or ``sips:`` URI."""

    __slots__ = ("headers", "host", "params", "password", "port", "user")

    def __init__(
        self,
        host: str,
        user: str | None = None,
        port: int | None = None,
        params: dict[str, str | None] | None = None,
        *,
        scheme: str = "sip",
        password: str | None = None,
        headers: str | None = None,
    ) -> None:
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params = params if params is not None else {}
        self.headers = headers

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        if self.params:
            out.append(format_params(self.params))
        if self.headers is not None:
            out.append("?" + self.headers)
        return "".join(out)

    def copy(self) -> SipURI:
        return SipURI(
            self.host,
            self.user,
            self.port,
            dict(self.params),
            scheme=self.scheme,
            password=self.password,
            headers=self.headers,
        )

    @property
    def host_key(self) -> str:
        """The host as a lookup key: lower case, IPv6 brackets removed."""
        host = self.host.lower()
        if host[:1] == "[":
            host = host[1:-1]
        return host

    @property
    def user_unescaped(self) -> str | None:
        return None if self.user is None else unescape(self.user)

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def aor(self) -> str:
        """``sip:user@host`` with no port or parameters: the key of a binding."""
        user = self.user_unescaped
        host = self.host.lower()
        return f"sip:{user}@{host}" if user is not None else f"sip:{host}"

    def matches(self, other: URI) -> bool:
        if not isinstance(other, SipURI) or self.scheme != other.scheme:
            return False
        if self.user_unescaped != other.user_unescaped:
            return False
        if _unescape_opt(self.password) != _unescape_opt(other.password):
            return False
        if self.host_key != other.host_key or self.port != other.port:
            return False
        for name in _SIGNIFICANT:
            if _lower(self.params.get(name, "")) != _lower(other.params.get(name, "")):
                return False
        for name, value in self.params.items():
            if name in other.params and _lower(value) != _lower(other.params[name]):
                return False
        # Headers are never ignored, but their order does not matter (§19.1.4 examples).
        return _header_set(self.headers) == _header_set(other.headers)


def _lower(value: str | None) -> str | None:
    return unescape(value).lower() if value else value


def _unescape_opt(value: str | None) -> str | None:
    return None if value is None else unescape(value)


def _header_set(headers: str | None) -> list[tuple[str, str]]:
    if not headers:
        return []
    out: list[tuple[str, str]] = []
    for field in headers.split("&"):
        name, _, value = field.partition("=")
        out.append((unescape(name).lower(), unescape(value)))
    return sorted(out)


class TelURI(URI):
    """``tel:`` URI (RFC 3966): a number and parameters."""

    __slots__ = ("number", "params")

    def __init__(self, number: str, params: dict[str, str | None] | None = None) -> None:
        self.scheme = "tel"
        self.number = number
        self.params = params if params is not None else {}

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"

    @property
    def digits(self) -> str:
        """The number without visual separators."""
        return "".join(ch for ch in self.number if ch not in "-.() ")

    def matches(self, other: URI) -> bool:
        return isinstance(other, TelURI) and self.digits == other.digits


def parse_uri(text: str) -> URI:
    """Parse a URI; unknown schemes become :class:`AbsoluteURI`."""
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not rest:
        raise ParseError("Malformed URI")
    low = scheme.lower()
    if low == "sip" or low == "sips":
        return _parse_sip(low, rest)
    if low == "tel":
        number, _, params = rest.partition(";")
        if not number:
            raise ParseError("Malformed tel URI")
        return TelURI(number, _params(params) if params else None)
    if not scheme[0].isalpha() or not all(c.isalnum() or c in "+-." for c in scheme):
        raise ParseError("Malformed URI scheme")
    return AbsoluteURI(low, rest)


def _parse_sip(scheme: str, rest: str) -> SipURI:
    if " " in rest or "\t" in rest:
        raise ParseError("Whitespace in SIP URI")
    # Neither parameters nor headers may hold an unescaped '@', but the user part may
    # hold '?' and ';' (RFC 4475 intmeth): the last '@' ends the userinfo.
    user: str | None = None
    password: str | None = None
    at = rest.rfind("@")
    if at >= 0:
        user = rest[:at]
        rest = rest[at + 1 :]
        if ":" in user:
            user, _, password = user.partition(":")
    headers: str | None = None
    qmark = rest.find("?")
    if qmark >= 0:
        headers = rest[qmark + 1 :]
        rest = rest[:qmark]
    if rest[:1] == "[":
        end = rest.find("]")
        if end < 0:
            raise ParseError("Unterminated IPv6 reference")
        host = rest[: end + 1]
        if not _IPV6_OK(host[1:-1]):
            raise ParseError("Bad IPv6 reference")
        rest = rest[end + 1 :]
        semi = rest.find(";")
        hostport_tail, params = (rest, "") if semi < 0 else (rest[:semi], rest[semi + 1 :])
        if hostport_tail and hostport_tail[0] != ":":
            raise ParseError("Bad host")
        port_text = hostport_tail[1:] if hostport_tail else None
    else:
        semi = rest.find(";")
        hostport, params = (rest, "") if semi < 0 else (rest[:semi], rest[semi + 1 :])
        host, colon, port_text_s = hostport.partition(":")
        port_text = port_text_s if colon else None
        if not _HOST_OK(host):
            raise ParseError("Bad host in SIP URI")
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5:
            raise ParseError("Bad port in SIP URI")
        port = int(port_text)
        if port > 65535:
            raise ParseError("Bad port in SIP URI")
    return SipURI(
        host,
        user,
        port,
        _params(params) if params else None,
        scheme=scheme,
        password=password,
        headers=headers,
    )


def _params(text: str) -> dict[str, str | None]:
    # URI parameters carry no quoted strings and no whitespace: a plain split is exact.
    params: dict[str, str | None] = {}
    for piece in text.split(";"):
        if not piece:
            raise ParseError("Empty URI parameter")
        name, eq, value = piece.partition("=")
        params[name.lower()] = value if eq else None
    return params


def host_ref(host: str) -> str:
    """``host`` as it goes in a URI or Via: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and host[:1] != "[" else host


def hostport(host: str, port: int) -> str:
    """``host:port``, with IPv6 addresses in brackets."""
    return f"{host_ref(host)}:{port}"


_ERRORS = "surrogateescape"
# RFC 3261 §25.1 user = 1*( unreserved / escaped / user-unreserved ).
_USER_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,;?/"
)


def escape_user(user: str) -> str:
    """The user part of a SIP URI with every character that needs it ``%HH``-escaped."""
    if all(ch in _USER_SAFE for ch in user):
        return user
    # surrogateescape: a user read from the wire as "%80" unescapes to a lone surrogate,
    # which goes back out as the byte it stood for.
    return "".join(
        ch if ch in _USER_SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8", _ERRORS))
        for ch in user
    )
