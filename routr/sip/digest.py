"""HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760).

Sans-IO: every function that depends on time takes ``now`` (seconds, float). Nothing here reads
a clock, opens a socket or logs.

Server side, :class:`NonceIssuer` makes stateless nonces (timestamp + random + HMAC) so any
worker that shares the secret can check them, and remembers the highest nonce-count seen per
nonce, in a bounded table, to refuse replays.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable
from typing import Final, Literal

from routr.sip.errors import SipError

__all__ = [
    "MAX_HEADER_LEN",
    "SUPPORTED_ALGORITHMS",
    "Challenge",
    "Credentials",
    "DigestError",
    "NonceIssuer",
    "NonceStatus",
    "VerifyResult",
    "build_challenge",
    "compute_ha1",
    "compute_response",
    "make_credentials",
    "parse_challenge",
    "parse_credentials",
    "pick_challenge",
]

NonceStatus = Literal["ok", "stale", "invalid"]
VerifyResult = Literal["ok", "stale", "bad", "replay"]

#: Longest header value accepted; real ones are a few hundred characters.
MAX_HEADER_LEN: Final = 8192


class DigestError(SipError, ValueError):
    """Malformed or unsupported credentials or challenge.

    A ValueError too, so callers that only know the stdlib contract can catch it.
    """


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Upper-cased name -> (canonical name, hex hash, is -sess variant).
_ALGORITHMS: Final[dict[str, tuple[str, Callable[[bytes], str], bool]]] = {
    "MD5": ("MD5", _md5, False),
    "MD5-SESS": ("MD5-sess", _md5, True),
    "SHA-256": ("SHA-256", _sha256, False),
    "SHA-256-SESS": ("SHA-256-sess", _sha256, True),
}
#: Canonical names, strongest first.
SUPPORTED_ALGORITHMS: Final = ("SHA-256", "SHA-256-sess", "MD5", "MD5-sess")


def _algorithm(name: str) -> tuple[str, Callable[[bytes], str], bool]:
    try:
        return _ALGORITHMS[name.upper()]
    except KeyError:
        raise DigestError(f"unsupported algorithm {name!r}") from None


def _b(text: str) -> bytes:
    # surrogatepass: hostile input must not turn into UnicodeEncodeError, and client and
    # server encode the same way, so a digest over odd text still round-trips.
    return text.encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- tokenizer
# Single character classes only: matching is linear, there is nothing to backtrack into.
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Unquoted values are read leniently: some user agents send e.g. uri=sip:x@y unquoted.
_BARE: Final = re.compile(r'[^\s,"]+')
_WS: Final = frozenset(" \t\r\n")


def _skip_ws(s: str, i: int, n: int) -> int:
    while i < n and s[i] in _WS:
        i += 1
    return i


def _read_quoted(s: str, i: int) -> tuple[str, int]:
    """Read a quoted string whose opening quote is at ``i - 1``; return (value, next index)."""
    q = s.find('"', i)
    if q < 0:
        raise DigestError("unterminated quoted string")
    b = s.find("\\", i, q)
    if b < 0:  # the common case: no escapes, one slice
        return s[i:q], q + 1
    parts: list[str] = []
    while True:  # b < q, so the escaped character exists
        parts.append(s[i:b])
        parts.append(s[b + 1])
        i = b + 2
        if i > q:  # the escaped character was the quote we had found: look further
            q = s.find('"', i)
            if q < 0:
                raise DigestError("unterminated quoted string")
        b = s.find("\\", i, q)
        if b < 0:
            parts.append(s[i:q])
            return "".join(parts), q + 1


def _parse_params(s: str, i: int) -> dict[str, str]:
    """Parse ``name=value`` pairs separated by commas, starting at ``i``."""
    n = len(s)
    params: dict[str, str] = {}
    while True:
        # Empty list elements (",,") are allowed by the #rule of RFC 7230.
        while i < n and (s[i] in _WS or s[i] == ","):
            i += 1
        if i >= n:
            return params
        m = _TOKEN.match(s, i)
        if m is None:
            raise DigestError(f"expected a parameter name at offset {i}")
        name = m.group().lower()
        i = _skip_ws(s, m.end(), n)
        if i >= n or s[i] != "=":
            raise DigestError(f"expected '=' after {name!r}")
        i = _skip_ws(s, i + 1, n)
        if i < n and s[i] == '"':
            value, i = _read_quoted(s, i + 1)
        else:
            m = _BARE.match(s, i)
            if m is None:
                raise DigestError(f"missing value for {name!r}")
            value, i = m.group(), m.end()
        if name in params:
            raise DigestError(f"duplicate parameter {name!r}")
        params[name] = value
        i = _skip_ws(s, i, n)
        if i < n and s[i] != ",":
            raise DigestError(f"expected ',' after {name!r}")


def _split_scheme(value: str) -> tuple[str, int]:
    if not isinstance(value, str):
        raise DigestError("header value must be a string")
    if len(value) > MAX_HEADER_LEN:
        raise DigestError("header value too long")
    n = len(value)
    i = _skip_ws(value, 0, n)
    m = _TOKEN.match(value, i)
    if m is None:
        raise DigestError("missing authentication scheme")
    end = m.end()
    if end < n and value[end] not in _WS:
        raise DigestError("authentication scheme must be followed by a space")
    return m.group(), end


def _quote(text: str) -> str:
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


# --------------------------------------------------------------------------- credentials
class Credentials:
    """A parsed ``Authorization`` / ``Proxy-Authorization`` value."""

    __slots__ = ("params", "scheme")

    def __init__(self, scheme: str, params: dict[str, str]) -> None:
        self.scheme = scheme
        #: Parameters with lower-cased names and unquoted values.
        self.params = params

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"

    @property
    def username(self) -> str:
        return self.params.get("username", "")

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def nonce(self) -> str:
        return self.params.get("nonce", "")

    @property
    def uri(self) -> str:
        return self.params.get("uri", "")

    @property
    def response(self) -> str:
        return self.params.get("response", "")

    @property
    def algorithm(self) -> str:
        """The algorithm as sent; RFC 2617 makes MD5 the default."""
        return self.params.get("algorithm", "MD5")

    @property
    def qop(self) -> str | None:
        return self.params.get("qop")

    @property
    def nc(self) -> str | None:
        return self.params.get("nc")

    @property
    def cnonce(self) -> str | None:
        return self.params.get("cnonce")

    @property
    def opaque(self) -> str | None:
        return self.params.get("opaque")

    def __repr__(self) -> str:
        # The response is a password-equivalent for that nonce: keep it out of logs.
        shown = {k: v for k, v in self.params.items() if k != "response"}
        return f"Credentials({self.scheme!r}, {shown!r})"


_REQUIRED: Final = ("username", "realm", "nonce", "uri", "response")


def parse_credentials(value: str) -> Credentials:
    """Parse a credentials header value.

    Digest credentials must be well formed and complete, else :class:`DigestError`. Other
    schemes are kept with whatever parameters parse (possibly none), so the caller can
    answer them with a challenge instead of an error.
    """
    scheme, i = _split_scheme(value)
    if scheme.lower() != "digest":
        try:
            params = _parse_params(value, i)
        except DigestError:
            params = {}  # e.g. a token68 (Basic): not ours to understand
        return Credentials(scheme, params)
    params = _parse_params(value, i)
    for name in _REQUIRED:
        if name not in params:
            raise DigestError(f"Digest credentials without {name}")
    if "qop" in params and ("nc" not in params or "cnonce" not in params):
        raise DigestError("qop given without nc and cnonce")
    return Credentials(scheme, params)


# --------------------------------------------------------------------------- challenges
class Challenge:
    """A parsed or built ``WWW-Authenticate`` / ``Proxy-Authenticate`` Digest challenge."""

    __slots__ = ("algorithm", "nonce", "opaque", "params", "qop", "realm", "scheme", "stale")

    def __init__(
        self,
        realm: str,
        nonce: str,
        algorithm: str = "MD5",
        qop: tuple[str, ...] = ("auth",),
        opaque: str | None = None,
        stale: bool = False,
        params: dict[str, str] | None = None,
    ) -> None:
        self.scheme = "Digest"
        self.realm = realm
        self.nonce = nonce
        self.algorithm = algorithm
        #: Offered qop values, lower-cased; empty for an RFC 2069 challenge.
        self.qop = qop
        self.opaque = opaque
        self.stale = stale
        self.params = params if params is not None else {}

    def to_header(self) -> str:
        """The header value for this challenge."""
        return build_challenge(
            self.realm, self.nonce, self.algorithm, self.qop, self.opaque, self.stale
        )

    def __str__(self) -> str:
        return self.to_header()

    def __repr__(self) -> str:
        return (
            f"Challenge(realm={self.realm!r}, nonce={self.nonce!r}, "
            f"algorithm={self.algorithm!r}, qop={self.qop!r}, stale={self.stale!r})"
        )


def parse_challenge(value: str) -> Challenge:
    """Parse a Digest challenge; any other scheme or a missing realm/nonce is a DigestError."""
    scheme, i = _split_scheme(value)
    if scheme.lower() != "digest":
        raise DigestError(f"not a Digest challenge: {scheme!r}")
    params = _parse_params(value, i)
    realm = params.get("realm")
    nonce = params.get("nonce")
    if realm is None or nonce is None:
        raise DigestError("Digest challenge without realm or nonce")
    qop_raw = params.get("qop")
    qop = (
        tuple(q for q in (part.strip().lower() for part in qop_raw.split(",")) if q)
        if qop_raw is not None
        else ()
    )
    return Challenge(
        realm=realm,
        nonce=nonce,
        algorithm=params.get("algorithm", "MD5"),
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
        params=params,
    )


def pick_challenge(values: Iterable[str]) -> Challenge | None:
    """The strongest supported Digest challenge among header values, or None."""
    best: Challenge | None = None
    best_rank = len(SUPPORTED_ALGORITHMS)
    for value in values:
        try:
            ch = parse_challenge(value)
            canonical = _algorithm(ch.algorithm)[0]
        except DigestError:
            continue
        if ch.qop and "auth" not in ch.qop and "auth-int" not in ch.qop:
            continue
        rank = SUPPORTED_ALGORITHMS.index(canonical)
        if rank < best_rank:
            best, best_rank = ch, rank
    return best


def build_challenge(
    realm: str,
    nonce: str,
    algorithm: str = "MD5",
    qop: Iterable[str] = ("auth",),
    opaque: str | None = None,
    stale: bool = False,
) -> str:
    """A challenge header value (``Digest realm="..", nonce="..", ...``)."""
    parts = [f"Digest realm={_quote(realm)}", f"nonce={_quote(nonce)}", f"algorithm={algorithm}"]
    qops = ",".join(qop)
    if qops:
        parts.append(f'qop="{qops}"')
    if opaque is not None:
        parts.append(f"opaque={_quote(opaque)}")
    if stale:
        parts.append("stale=true")
    return ", ".join(parts)


# --------------------------------------------------------------------------- computation
def compute_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """``H(username:realm:password)``, what a store may keep instead of the password."""
    _, h, _ = _algorithm(algorithm)
    return h(_b(f"{username}:{realm}:{password}"))


def compute_response(
    algorithm: str,
    ha1: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value. ``ha1`` is always the plain ``H(user:realm:pass)``; the
    ``-sess`` session key is derived here."""
    _, h, sess = _algorithm(algorithm)
    if sess:
        ha1 = h(_b(f"{ha1}:{nonce}:{cnonce or ''}"))
    if qop is None:
        return h(_b(f"{ha1}:{nonce}:{h(_b(f'{method}:{uri}'))}"))
    if qop == "auth":
        ha2 = h(_b(f"{method}:{uri}"))
    elif qop == "auth-int":
        ha2 = h(_b(f"{method}:{uri}:{h(body)}"))
    else:
        raise DigestError(f"unsupported qop {qop!r}")
    return h(_b(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))


def make_credentials(
    challenge: Challenge | str,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """Answer a challenge as a client would; returns the credentials header value.

    Prefers qop=auth, uses auth-int (over ``body``) only when that is all the server offers,
    and falls back to RFC 2069 when the challenge has no qop.
    """
    ch = parse_challenge(challenge) if isinstance(challenge, str) else challenge
    canonical = _algorithm(ch.algorithm)[0]
    if not 0 < nc <= 0xFFFFFFFF:
        raise DigestError(f"nonce count out of range: {nc}")
    qop: str | None
    if not ch.qop:
        qop = None
    elif "auth" in ch.qop:
        qop = "auth"
    elif "auth-int" in ch.qop:
        qop = "auth-int"
    else:
        raise DigestError(f"no supported qop in {ch.qop!r}")
    nc_text = f"{nc:08x}"
    ha1 = compute_ha1(canonical, username, ch.realm, password)
    response = compute_response(canonical, ha1, method, uri, ch.nonce, qop, nc_text, cnonce, body)
    parts = [
        f"Digest username={_quote(username)}",
        f"realm={_quote(ch.realm)}",
        f"nonce={_quote(ch.nonce)}",
        f"uri={_quote(uri)}",
        f'response="{response}"',
        f"algorithm={canonical}",
    ]
    if qop is not None:
        parts += [f"cnonce={_quote(cnonce)}", f"qop={qop}", f"nc={nc_text}"]
    elif canonical.endswith("-sess"):
        parts.append(f"cnonce={_quote(cnonce)}")
    if ch.opaque is not None:
        parts.append(f"opaque={_quote(ch.opaque)}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- server side
_TS_LEN: Final = 8
_RAND_LEN: Final = 8
_MAC_LEN: Final = 16
_RAW_LEN: Final = _TS_LEN + _RAND_LEN + _MAC_LEN
_NONCE_LEN: Final = 43  # base64url of 32 bytes, padding stripped
_HEX: Final = frozenset("0123456789abcdefABCDEF")


class NonceIssuer:
    """Issues and checks nonces, and verifies Digest credentials against them.

    A nonce is ``base64url(ts_ms | random | HMAC-SHA256(secret, ts_ms | random)[:16])``: it
    needs no storage to be checked, and processes sharing ``secret`` accept each other's.
    Nonce counts are remembered per process, for nonces that authenticated successfully
    only (so a flood of garbage cannot fill the table), up to ``max_tracked`` entries.
    """

    __slots__ = (
        "_floor_ms",
        "_lifetime_ms",
        "_max_tracked",
        "_next_sweep",
        "_secret",
        "_seen",
        "_skew_ms",
        "algorithms",
        "allow_rfc2069",
        "lifetime",
        "opaque",
    )

    def __init__(
        self,
        secret: bytes,
        lifetime: float = 300.0,
        *,
        max_tracked: int = 100_000,
        skew: float = 30.0,
        allow_rfc2069: bool = False,
        opaque: str | None = None,
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
    ) -> None:
        if not secret:
            raise ValueError("nonce secret must not be empty")
        if lifetime <= 0 or max_tracked < 1:
            raise ValueError("lifetime and max_tracked must be positive")
        self._secret = bytes(secret)
        self.lifetime = float(lifetime)
        self._lifetime_ms = int(lifetime * 1000)
        self._skew_ms = int(skew * 1000)
        self._max_tracked = max_tracked
        #: Accept MD5 credentials without qop (RFC 2069); they cannot be replay-checked.
        self.allow_rfc2069 = allow_rfc2069
        self.opaque = opaque
        #: Offered in this order (RFC 8760 §2.4: most preferred first). Every supported
        #: algorithm is accepted in answers whatever is offered.
        self.algorithms = tuple(_algorithm(a)[0] for a in algorithms)
        if not self.algorithms:
            raise ValueError("offer at least one digest algorithm")
        # nonce -> (highest nc seen, issue time in ms)
        self._seen: dict[str, tuple[int, int]] = {}
        # Untracked nonces issued at or before this time were evicted while still valid:
        # they are answered "stale", which forces a fresh nonce instead of opening a replay.
        self._floor_ms = -1
        self._next_sweep = 0.0

    # -- nonces ---------------------------------------------------------------------------
    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_MAC_LEN]

    def issue(self, now: float) -> str:
        """A fresh nonce stamped with ``now``."""
        body = max(0, int(now * 1000)).to_bytes(_TS_LEN, "big") + os.urandom(_RAND_LEN)
        raw = body + self._mac(body)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def _decode(self, nonce: str) -> int | None:
        """The issue time (ms) of a nonce we made, else None."""
        if len(nonce) != _NONCE_LEN:
            return None
        try:
            encoded = nonce.encode("ascii")
            raw = base64.urlsafe_b64decode(encoded + b"=")
        except ValueError:  # binascii.Error and UnicodeEncodeError are ValueErrors
            return None
        # Only the canonical spelling: a nonce has one key in the nc table.
        if len(raw) != _RAW_LEN or base64.urlsafe_b64encode(raw).rstrip(b"=") != encoded:
            return None
        body = raw[: _TS_LEN + _RAND_LEN]
        if not hmac.compare_digest(raw[_TS_LEN + _RAND_LEN :], self._mac(body)):
            return None
        return int.from_bytes(raw[:_TS_LEN], "big")

    def _status(self, ts_ms: int | None, now: float) -> NonceStatus:
        if ts_ms is None:
            return "invalid"
        age = int(now * 1000) - ts_ms
        if age < -self._skew_ms:
            return "invalid"
        if age > self._lifetime_ms:
            return "stale"
        return "ok"

    def check(self, nonce: str, now: float) -> NonceStatus:
        """``ok`` for a live nonce of ours, ``stale`` once expired, ``invalid`` otherwise."""
        return self._status(self._decode(nonce), now)

    def challenges(self, realm: str, now: float, stale: bool = False) -> list[str]:
        """Challenge header values for a 401/407, one per offered algorithm: by default
        SHA-256 first, then MD5 (RFC 8760 §2.4)."""
        nonce = self.issue(now)
        return [
            build_challenge(realm, nonce, algorithm, ("auth",), self.opaque, stale)
            for algorithm in self.algorithms
        ]

    # -- nonce counts ---------------------------------------------------------------------
    def _sweep(self, now_ms: int) -> None:
        limit = now_ms - self._lifetime_ms
        self._seen = {k: v for k, v in self._seen.items() if v[1] >= limit}

    def _compact(self, now_ms: int) -> None:
        self._sweep(now_ms)
        target = self._max_tracked * 3 // 4
        excess = len(self._seen) - target
        if excess <= 0:
            return
        # Forget the oldest live nonces, and remember up to when we forgot.
        by_age = sorted(self._seen.items(), key=lambda item: item[1][1])
        self._floor_ms = max(self._floor_ms, by_age[excess - 1][1][1])
        self._seen = dict(by_age[excess:])

    def _note_nc(self, nonce: str, ts_ms: int, nc: int, now: float) -> VerifyResult:
        """Record ``nc`` for ``nonce`` unless it does not increase."""
        entry = self._seen.get(nonce)
        if entry is None:
            if ts_ms <= self._floor_ms:
                return "stale"
            now_ms = int(now * 1000)
            if now >= self._next_sweep:
                self._sweep(now_ms)
                self._next_sweep = now + self.lifetime
            if len(self._seen) >= self._max_tracked:
                self._compact(now_ms)
        elif nc <= entry[0]:
            return "replay"
        self._seen[nonce] = (nc, ts_ms)
        return "ok"

    @property
    def tracked(self) -> int:
        """How many nonces have their nonce-count remembered."""
        return len(self._seen)

    # -- verification ---------------------------------------------------------------------
    def verify(
        self,
        creds: Credentials,
        method: str,
        *,
        now: float,
        password: str | None = None,
        ha1: str | None = None,
        realm: str | None = None,
        uri: str | None = None,
    ) -> VerifyResult:
        """Check Digest credentials against a password or a stored HA1.

        ``ha1`` is ``compute_ha1(creds.algorithm, user, realm, password)``. With neither
        (unknown user) the same work is done and the answer is ``bad``, so unknown users and
        wrong passwords look alike. ``realm`` / ``uri``, when given, must match exactly.
        ``stale`` is returned only for a correct response over an expired nonce, as RFC 7616
        §3.3 asks; ``replay`` for a nonce-count that does not increase.
        """
        if password is not None and ha1 is not None:
            raise ValueError("give password or ha1, not both")
        if not creds.is_digest:
            return "bad"
        try:
            canonical = _algorithm(creds.algorithm)[0]
        except DigestError:
            return "bad"
        if (realm is not None and creds.realm != realm) or (uri is not None and creds.uri != uri):
            return "bad"
        ts_ms = self._decode(creds.nonce)
        status = self._status(ts_ms, now)
        if ts_ms is None or status == "invalid":
            return "bad"
        qop = creds.qop
        nc_value = 0
        if qop is None:
            if not self.allow_rfc2069 or canonical != "MD5":
                return "bad"
        else:
            qop = qop.lower()
            nc = creds.nc or ""
            if qop != "auth" or not 0 < len(nc) <= 8 or not _HEX.issuperset(nc):
                return "bad"
            nc_value = int(nc, 16)
            if nc_value == 0:
                return "bad"
        known = password is not None or ha1 is not None
        if ha1 is None:
            secret = password if password is not None else "\x00unknown user"
            ha1 = compute_ha1(canonical, creds.username, creds.realm, secret)
        expected = compute_response(
            canonical, ha1.lower(), method, creds.uri, creds.nonce, qop, creds.nc, creds.cnonce
        )
        given = creds.response.lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode("ascii"), given) or not known:
            return "bad"
        if status == "stale":
            return "stale"
        if qop is not None:
            return self._note_nc(creds.nonce, ts_ms, nc_value, now)
        return "ok"
