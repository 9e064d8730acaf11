"""SIP requests and responses: parse from bytes, read typed headers lazily, edit, serialize.

Headers are kept as a list of ``(key, name, value)`` tuples in arrival order: ``key`` is the
lower-case long name used for look-ups, ``name`` the spelling that goes back on the wire.
Forwarding edits that list in place (push Via, pop Route, ...) and serializes once, so
headers the proxy never reads are never parsed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from routr.sip.address import (
    Address,
    CSeq,
    StarContact,
    Via,
    parse_address,
    parse_cseq,
    parse_via,
)
from routr.sip.errors import MessageTooLarge, NotImplementedMethod, ParseError, VersionNotSupported
from routr.sip.headers import _KEY_CACHE, canonical_name, header_key, parse_uint, split_values
from routr.sip.limits import MessageLimits
from routr.sip.uri import URI, SipURI, parse_uri

Header = tuple[str, str, str]

KNOWN_METHODS = frozenset(
    {
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
        "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
    }
)  # fmt: skip

REASONS: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 301: "Moved Permanently",
    302: "Moved Temporarily", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 407: "Proxy Authentication Required",
    408: "Request Timeout", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}  # fmt: skip

# Headers whose one value may hold commas (RFC 3261 §7.3.1 exceptions).
_NOT_LISTS = frozenset(
    {"www-authenticate", "proxy-authenticate", "authorization", "proxy-authorization", "date",
     "authentication-info", "user-agent", "server", "subject", "organization"}
)  # fmt: skip
# Headers that must appear exactly once in a request (RFC 3261 §8.1.1, RFC 4475 multi01).
_SINGLE = ("call-id", "cseq", "from", "to", "max-forwards", "content-length")
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"  # every byte survives a decode/encode round trip


class Message:
    """What requests and responses share: headers, body and typed accessors."""

    __slots__ = (
        "_call_id",
        "_cseq",
        "_from",
        "_to",
        "_vias",
        "body",
        "headers",
    )

    def __init__(self, headers: list[Header] | None = None, body: bytes = b"") -> None:
        self.headers: list[Header] = headers if headers is not None else []
        self.body = body
        self._reset()

    def _reset(self) -> None:
        self._vias: list[Via] | None = None
        self._from: Address | None = None
        self._to: Address | None = None
        self._cseq: CSeq | None = None
        self._call_id: str | None = None

    # -- raw header access -------------------------------------------------------------

    def get(self, key: str) -> str | None:
        """The first value of header ``key`` (a lower-case long name), or ``None``."""
        for k, _, value in self.headers:
            if k == key:
                return value
        return None

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key``, comma-separated lists split (not for headers whose
        single value holds commas, like challenges and credentials)."""
        if key in _NOT_LISTS:
            return [value for k, _, value in self.headers if k == key]
        out: list[str] = []
        for k, _, value in self.headers:
            if k == key:
                out.extend(split_values(value))
        return out

    def has(self, key: str) -> bool:
        return any(k == key for k, _, _ in self.headers)

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Append a header (or put it first), spelled ``name``."""
        entry = (header_key(name), name, value)
        if first:
            self.headers.insert(0, entry)
        else:
            self.headers.append(entry)
        self._reset()

    def set(self, key: str, value: str) -> None:
        """Replace every ``key`` header by one with ``value`` (in place of the first)."""
        for i, (k, name, _) in enumerate(self.headers):
            if k == key:
                self.headers[i] = (k, name, value)
                self.headers[i + 1 :] = [h for h in self.headers[i + 1 :] if h[0] != key]
                break
        else:
            self.headers.append((key, canonical_name(key), value))
        self._reset()

    def remove(self, key: str) -> None:
        self.headers = [h for h in self.headers if h[0] != key]
        self._reset()

    def pop_first(self, key: str) -> str | None:
        """Remove and return the first value of ``key`` (splitting a comma list)."""
        for i, (k, name, value) in enumerate(self.headers):
            if k == key:
                values = split_values(value) if "," in value else [value]
                if len(values) > 1:
                    self.headers[i] = (k, name, ", ".join(values[1:]))
                else:
                    del self.headers[i]
                self._reset()
                return values[0]
        return None

    def write_top_via(self) -> None:
        """Write the top Via back to the raw headers after its parameters were edited in
        place (``received``/``rport``); the parsed Vias stay cached, being what was written."""
        vias = self.vias
        if not vias:
            raise ParseError("Missing Via")
        value = str(vias[0])
        for i, (key, name, raw) in enumerate(self.headers):
            if key == "via":
                if "," in raw:  # the other values of that header stay (a quoted "," too)
                    value = ", ".join([value, *split_values(raw)[1:]])
                self.headers[i] = (key, name, value)
                break

    # -- typed access (parsed on first use, cached until the next edit) ----------------

    @property
    def vias(self) -> list[Via]:
        if self._vias is None:
            vias: list[Via] = []
            for k, _, value in self.headers:
                if k == "via":
                    for part in split_values(value) if "," in value else (value,):
                        if not part:
                            raise ParseError("Empty Via")
                        vias.append(parse_via(part))
            self._vias = vias
        return self._vias

    @property
    def via(self) -> Via:
        vias = self.vias
        if not vias:
            raise ParseError("Missing Via")
        return vias[0]

    @property
    def from_(self) -> Address:
        if self._from is None:
            self._from = self._address("from")
        return self._from

    @property
    def to(self) -> Address:
        if self._to is None:
            self._to = self._address("to")
        return self._to

    def _address(self, key: str) -> Address:
        value = self.get(key)
        if value is None:
            raise ParseError(f"Missing {canonical_name(key)}")
        return parse_address(value)

    @property
    def call_id(self) -> str:
        if self._call_id is None:
            value = self.get("call-id")
            if not value:
                raise ParseError("Missing Call-ID")
            self._call_id = value
        return self._call_id

    @property
    def cseq(self) -> CSeq:
        if self._cseq is None:
            value = self.get("cseq")
            if value is None:
                raise ParseError("Missing CSeq")
            self._cseq = parse_cseq(value)
        return self._cseq

    @property
    def max_forwards(self) -> int | None:
        value = self.get("max-forwards")
        return None if value is None else parse_uint(value, "Max-Forwards", 2**31)

    @property
    def content_length(self) -> int | None:
        value = self.get("content-length")
        return None if value is None else parse_uint(value, "Content-Length")

    @property
    def content_type(self) -> str | None:
        return self.get("content-type")

    @property
    def expires(self) -> int | None:
        value = self.get("expires")
        if value is None:
            return None
        text = value.strip()
        if not text.isdigit() or not text.isascii():
            raise ParseError("Bad Expires")
        return min(int(text[:12]), 2**32 - 1)

    @property
    def contacts(self) -> list[Address]:
        out: list[Address] = []
        for value in self.get_all("contact"):
            out.append(StarContact() if value == "*" else parse_address(value))
        return out

    @property
    def routes(self) -> list[Address]:
        return [parse_address(v) for v in self.get_all("route")]

    @property
    def record_routes(self) -> list[Address]:
        return [parse_address(v) for v in self.get_all("record-route")]

    # -- serialization ------------------------------------------------------------------

    def start_line(self) -> str:  # pragma: no cover - subclasses override
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialize, with a Content-Length that matches the body."""
        lines = [self.start_line()]
        has_length = False
        for k, name, value in self.headers:
            if k == "content-length":
                if has_length:
                    continue
                has_length = True
                value = str(len(self.body))
            lines.append(f"{name}: {value}")
        if not has_length:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode(_ENCODING, _ERRORS) + self.body

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def __iter__(self) -> Iterator[Header]:
        return iter(self.headers)


class Request(Message):
    """A SIP request."""

    __slots__ = ("_uri", "method", "uri_text", "version")

    def __init__(
        self,
        method: str,
        uri: str | URI,
        headers: list[Header] | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.version = version
        if isinstance(uri, URI):
            self._uri: URI | None = uri
            self.uri_text = str(uri)
        else:
            self._uri = None
            self.uri_text = uri

    @property
    def uri(self) -> URI:
        if self._uri is None:
            self._uri = parse_uri(self.uri_text)
        return self._uri

    @uri.setter
    def uri(self, value: URI) -> None:
        self._uri = value
        self.uri_text = str(value)

    def start_line(self) -> str:
        return f"{self.method} {self.uri_text} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri_text}>"

    def check(self) -> None:
        """Validate what every element needs before acting (RFC 3261 §8.2, §16.3).

        Raises :class:`ParseError` naming the first problem; the error carries this
        request so a response can be sent back.
        """
        try:
            self._check()
        except ParseError as exc:
            exc.message = self
            raise

    def _check(self) -> None:
        if self.version != "SIP/2.0":
            raise VersionNotSupported("Version Not Supported")
        uri = self.uri
        if isinstance(uri, SipURI) and uri.headers is not None:
            raise ParseError("Headers in Request-URI")
        counts: dict[str, int] = {}
        for k, _, _ in self.headers:
            if k in _SINGLE:
                counts[k] = counts.get(k, 0) + 1
        for key in ("call-id", "cseq", "from", "to"):
            if key not in counts:
                raise ParseError(f"Missing {canonical_name(key)}")
        for key, count in counts.items():
            if count > 1:
                raise ParseError(f"Multiple {canonical_name(key)} headers")
        if not self.vias:
            raise ParseError("Missing Via")
        cseq = self.cseq
        if cseq.method != self.method:
            if self.method not in KNOWN_METHODS:
                raise NotImplementedMethod("Not Implemented")
            raise ParseError("CSeq method does not match the request method")
        _ = self.call_id, self.from_, self.to, self.max_forwards  # an empty Call-ID too

    def response(
        self,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        """A response to this request (RFC 3261 §8.2.6): Via, From, To, Call-ID, CSeq copied.

        When the To has no tag and ``status > 100``, one is added: ``to_tag`` or a value
        derived from the request so that a retransmission gets the same tag.
        """
        copied: list[Header] = [h for h in self.headers if h[0] in _COPIED]
        if status > 100:
            for i, (k, name, value) in enumerate(copied):
                # Only look past the '>': a tag URI parameter inside <...> is not a To tag.
                tail = "".join(value[value.rfind(">") + 1 :].split()).lower()
                if k == "to" and ";tag=" not in tail:
                    copied[i] = (k, name, f"{value};tag={to_tag or self.derived_tag()}")
                    break
        if headers:
            copied.extend((header_key(n), n, v) for n, v in headers)
        return Response(status, reason or REASONS.get(status, "Unknown"), copied)

    def derived_tag(self) -> str:
        """A To tag that is the same for every retransmission of this request."""
        seed = f"{self.get('via')}|{self.get('call-id')}|{self.get('cseq')}"
        return hashlib.blake2s(seed.encode(_ENCODING, _ERRORS), digest_size=6).hexdigest()


_COPIED = frozenset({"via", "from", "to", "call-id", "cseq"})


class Response(Message):
    """A SIP response."""

    __slots__ = ("reason", "status", "version")

    def __init__(
        self,
        status: int,
        reason: str = "",
        headers: list[Header] | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason
        self.version = version

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


def parse_message(
    data: bytes,
    *,
    max_size: int | None = None,
    datagram: bool = True,
    limits: MessageLimits | None = None,
) -> Message:
    """Parse one message.

    ``datagram`` selects RFC 3261 §18.3 rules for UDP: octets past Content-Length are
    dropped and a Content-Length beyond the data is an error. ``limits`` bounds the
    header counts (:class:`LimitExceeded`). Raises :class:`ParseError`; when the start
    line and headers were read, the error carries the message.
    """
    if max_size is not None and len(data) > max_size:
        raise MessageTooLarge("Message Too Large")
    if data[:1] == b"\r" or data[:1] == b"\n":  # RFC 3261 §7.5: CRLFs before the start line
        data = data.lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head = data[:end].decode(_ENCODING, _ERRORS)
        body = data[end + 4 :]
        lines = head.split("\r\n")
    else:
        # A bare-LF message, or one with no body separator at all (tolerated).
        end = data.find(b"\n\n")
        if end >= 0:
            head, body = data[:end].decode(_ENCODING, _ERRORS), data[end + 2 :]
        else:
            head, body = data.decode(_ENCODING, _ERRORS), b""
        lines = head.replace("\r\n", "\n").split("\n")
    start = lines[0]
    while not start and len(lines) > 1:  # leading CRLFs before the start line
        del lines[0]
        start = lines[0]
    headers: list[Header] = []
    append = headers.append
    key_of = header_key
    known = _KEY_CACHE
    for line in lines[1:]:
        if not line:
            continue
        if line[0] == " " or line[0] == "\t":
            if not headers:
                raise ParseError("Continuation line before any header")
            k, name, value = headers[-1]
            headers[-1] = (k, name, f"{value} {line.strip()}" if value else line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon or not name:
            raise ParseError("Malformed header line")
        if name[-1] == " " or name[-1] == "\t":
            name = name.rstrip()  # never empty: the line does not start with whitespace
        append((known.get(name) or key_of(name), name, value.strip()))
    message = _start(start, headers)
    if limits is not None:
        limits.check(message, head.count(","))
    length_text = None
    for k, _, value in headers:
        if k == "content-length":
            if length_text is not None and length_text != value:
                raise ParseError("Conflicting Content-Length values", message=message)
            length_text = value
    if length_text is not None:
        try:
            length = parse_uint(length_text, "Content-Length")
        except ParseError as exc:
            exc.message = message
            raise
        if length < len(body):
            body = body[:length]
        elif length > len(body) and datagram:
            raise ParseError("Content-Length larger than message", message=message)
    message.body = body
    return message


def _start(line: str, headers: list[Header]) -> Message:
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if len(code) != 3 or not code.isdigit() or not code.isascii():
            raise ParseError("Bad status code")
        status = int(code)
        if status < 100:
            raise ParseError("Bad status code")
        return Response(status, reason, headers, version=version)
    parts = line.split()
    if len(parts) != 3:
        if not parts:
            raise ParseError("Empty message")
        # Headers were read: keep them so a 400 can still be routed back.
        bad = Request(parts[0], "", headers)
        raise ParseError("Malformed Request-Line", message=bad)
    method, uri, version = parts
    if uri[:1] == "<":
        raise ParseError("Request-URI in <>", message=Request(method, uri, headers))
    if version[:4].upper() != "SIP/":
        raise ParseError("Malformed Request-Line")
    return Request(method, uri, headers, version=version.upper())


def make_request(
    method: str, uri: str | URI, headers: list[tuple[str, str]], body: bytes = b""
) -> Request:
    """Build a request from ``(name, value)`` pairs (used by clients and tests)."""
    return Request(method, uri, [(header_key(n), n, v) for n, v in headers], body)
