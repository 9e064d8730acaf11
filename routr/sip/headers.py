"""Header names and the small pieces of RFC 3261 §25 grammar shared by every header type.

Everything here works on ``str`` values that were unfolded by the message parser.
"""

from __future__ import annotations

import re

from routr.sip.errors import ParseError

#: Compact forms (RFC 3261 §7.3.3 and later RFCs) mapped to the lower-case long name.
COMPACT: dict[str, str] = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "u": "allow-events",
    "x": "session-expires",
    "y": "identity",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
}

#: Spelling used when we add a header ourselves.
CANONICAL: dict[str, str] = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
    "p-asserted-identity": "P-Asserted-Identity",
}

_KEY_CACHE: dict[str, str] = {}

# gen-value = token / host (RFC 3261 §25.1): what may stay unquoted in a header parameter.
_GEN_VALUE_OK = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\[\]:]*").fullmatch


def header_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact forms expanded."""
    key = _KEY_CACHE.get(name)
    if key is None:
        low = name.strip().lower()
        key = COMPACT.get(low, low)
        if len(_KEY_CACHE) < 4096:
            _KEY_CACHE[name] = key
    return key


def canonical_name(key: str) -> str:
    """How to spell a header we add, given its key."""
    name = CANONICAL.get(key)
    if name is None:
        name = "-".join(part.capitalize() for part in key.split("-"))
    return name


def split_values(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quoted strings and ``<...>``."""
    if "," not in value:
        return [value.strip()]
    if '"' not in value and "<" not in value:
        return [part.strip() for part in value.split(",")]
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if in_quotes:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    if in_quotes:
        raise ParseError("Unterminated quoted string")
    parts.append(value[start:].strip())
    return parts


def parse_params(text: str) -> dict[str, str | None]:
    """Parse ``;name=value;flag`` parameters (leading ``;`` optional).

    Names are lower-cased; a flag has the value ``None``. Whitespace around ``=`` and ``;``
    is tolerated (RFC 3261 §25 allows LWS there); empty parameters are an error.
    """
    params: dict[str, str | None] = {}
    text = text.strip()
    if not text:
        return params
    if text[0] == ";":
        text = text[1:]
    pieces = _split_semicolons(text) if '"' in text else text.split(";")
    for piece in pieces:
        name, eq, val = piece.partition("=")
        name = name.strip().lower()
        if not name:
            raise ParseError("Empty parameter")
        if eq:
            val = val.strip()
            if val[:1] == '"':
                val = unquote(val)
            params[name] = val
        else:
            params[name] = None
    return params


def _split_semicolons(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    in_quotes = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_quotes:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == ";":
            pieces.append(text[start:i])
            start = i + 1
        i += 1
    if in_quotes:
        raise ParseError("Unterminated quoted string")
    pieces.append(text[start:])
    return pieces


def unquote(text: str) -> str:
    """The content of a quoted string, escapes resolved; text must start with ``"``."""
    end = quoted_end(text, 0)
    inner = text[1:end]
    if "\\" not in inner:
        return inner
    out: list[str] = []
    i = 0
    while i < len(inner):
        ch = inner[i]
        if ch == "\\" and i + 1 < len(inner):
            i += 1
            ch = inner[i]
        out.append(ch)
        i += 1
    return "".join(out)


def quoted_end(text: str, start: int) -> int:
    """Index of the closing quote of the quoted string opening at ``start``."""
    i = start
    while True:
        i = text.find('"', i + 1)
        if i < 0:
            raise ParseError("Unterminated quoted string")
        # The quote closes the string unless an odd number of backslashes precede it.
        slashes = 0
        j = i - 1
        while j > start and text[j] == "\\":
            slashes += 1
            j -= 1
        if not slashes & 1:
            return i


def quote(text: str) -> str:
    """Quote ``text`` as a quoted-string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_params(params: dict[str, str | None], *, header: bool = False) -> str:
    """Serialize parameters as ``;name=value;flag``.

    ``header`` parameters (not URI ones) had quoted values unquoted by :func:`parse_params`:
    a value that is neither a token nor a host is quoted again.
    """
    out: list[str] = []
    for k, v in params.items():
        if v is None:
            out.append(f";{k}")
        elif header and not _GEN_VALUE_OK(v):
            out.append(f";{k}={quote(v)}")
        else:
            out.append(f";{k}={v}")
    return "".join(out)


def parse_uint(text: str, what: str, limit: int = 2**32 - 1) -> int:
    """A non-negative decimal integer no bigger than ``limit``, or a 400 naming ``what``."""
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ParseError(f"Bad {what}")
    if len(text) > 10 or int(text) > limit:
        raise ParseError(f"{what} too large")
    return int(text)
