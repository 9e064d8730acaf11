"""Source bans (config ``spec.security``): floods, password guessing, known scanners.

Sans-IO: every decision takes ``now``. The server asks :meth:`Guard.admit` for each packet
before parsing it, so a banned source costs a dict look-up and nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from routr.core.acl import Acl
from routr.core.auth import AuthFailures
from routr.events import Event, SecurityBanned

#: User-Agent names of SIP scanners (lower case); such requests are dropped unanswered,
#: since any answer confirms a SIP server is here.
SCANNERS = (
    "friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan", "vaxsipuseragent",
    "iwar", "sivus", "sundayddr", "smap", "pplsip", "voipbuster", "cpxsip",
)  # fmt: skip
#: A name counts only as a whole word ("sipcli/1.8", not "MySipClient"): a false hit
#: drops a real client's every request.
_SCANNER = re.compile(
    r"(?<![a-z0-9])(?:" + "|".join(map(re.escape, SCANNERS)) + r")(?![a-z0-9])", re.IGNORECASE
)
#: Over UDP anyone can send a datagram in another's name, so one request with a scanner's
#: User-Agent is only dropped; this many within ``SCANNER_SECONDS`` ban the source.
SCANNER_HITS = 5
SCANNER_SECONDS = 60.0

_MAX_TRACKED = 100_000


class Guard:
    """Counts requests per source IP and keeps the list of banned ones.

    A source is banned for ``flood_ban`` seconds when it sends more than ``flood_requests``
    packets in ``flood_seconds`` or names a known scanner as its User-Agent (see
    :meth:`scanner`), and for ``auth_ban`` seconds when ``failures`` says it failed
    authentication too often. Trusted networks are never banned.
    """

    __slots__ = (
        "_bans",
        "_counts",
        "_scans",
        "_trusted",
        "auth_ban",
        "block_scanners",
        "emit",
        "failures",
        "flood_ban",
        "flood_requests",
        "flood_seconds",
        "known",
    )  # fmt: skip

    def __init__(
        self,
        trusted: Iterable[str] = (),
        *,
        flood_requests: int = 200,
        flood_seconds: float = 2.0,
        flood_ban: float = 300.0,
        failures: AuthFailures | None = None,
        auth_ban: float = 900.0,
        block_scanners: bool = True,
        emit: Callable[[Event], None] | None = None,
        known: Callable[[str, int], bool] | None = None,
    ) -> None:
        # Trusted = an ACL that allows the trusted networks and denies everything else.
        self._trusted = Acl.from_lists(allow=list(trusted), deny=["0.0.0.0/0", "::/0"])
        self.flood_requests = flood_requests
        self.flood_seconds = flood_seconds
        self.flood_ban = flood_ban
        self.failures = failures
        self.auth_ban = auth_ban
        self.block_scanners = block_scanners
        self.emit = emit
        self._bans: dict[str, float] = {}  # ip -> banned until
        self._counts: dict[str, list[float]] = {}  # ip -> [window start, packets]
        self._scans: dict[str, list[float]] = {}  # ip -> [window start, scanner datagrams]
        #: ``(ip, port)`` is a party we know (a Gateway's, a registered client's): never
        #: banned for a User-Agent, which a forged datagram can carry in its name.
        self.known = known

    def trusted(self, ip: str) -> bool:
        return self._trusted.allowed(ip)

    def admit(self, ip: str, now: float) -> bool:
        """Whether a packet from ``ip`` is processed at all (False: drop it silently)."""
        until = self._bans.get(ip)
        if until is not None:
            if until > now:
                return False
            del self._bans[ip]
        if self.trusted(ip):
            return True
        failures = self.failures
        if failures is not None and self.auth_ban > 0 and failures.exceeded(ip, now):
            failures.clear(ip)
            self._ban(ip, now, self.auth_ban, "authentication failures")
            return False
        counter = self._counts.get(ip)
        if counter is None or now - counter[0] >= self.flood_seconds:
            if counter is None and len(self._counts) >= _MAX_TRACKED:
                self._counts.clear()  # a scan from many sources: start counting afresh
            self._counts[ip] = [now, 1.0]
            return True
        counter[1] += 1
        if counter[1] > self.flood_requests and self.flood_ban > 0:
            del self._counts[ip]
            self._ban(ip, now, self.flood_ban, "flood")
            return False
        return True

    def is_scanner(self, user_agent: str | None) -> bool:
        if not self.block_scanners or not user_agent:
            return False
        return _SCANNER.search(user_agent) is not None

    def scanner(
        self, ip: str, port: int, user_agent: str | None, now: float, *, connected: bool
    ) -> bool:
        """Whether a request with ``user_agent`` is a known scanner's, to drop unanswered.

        Its source is banned as for a flood (it would scan on, and every other request of
        the scan costs a parse): at once over a ``connected`` transport (TCP, TLS, WS: the
        handshake proved the address), over UDP after ``SCANNER_HITS`` within
        ``SCANNER_SECONDS`` (one forged datagram must not ban a Gateway or an office's
        NAT). Trusted networks and ``known`` parties are dropped, never banned."""
        if not self.is_scanner(user_agent):
            return False
        if self.flood_ban <= 0 or self.trusted(ip):
            return True
        if not connected:
            counter = self._scans.get(ip)
            if counter is None or now - counter[0] >= SCANNER_SECONDS:
                if counter is None and len(self._scans) >= _MAX_TRACKED:
                    self._scans.clear()
                counter = self._scans[ip] = [now, 0.0]
            counter[1] += 1
            if counter[1] < SCANNER_HITS:
                return True
            del self._scans[ip]
        if self.known is None or not self.known(ip, port):
            self._ban(ip, now, self.flood_ban, "scanner")
        return True

    def _ban(self, ip: str, now: float, seconds: float, reason: str) -> None:
        if len(self._bans) >= _MAX_TRACKED:
            self._bans = {k: v for k, v in self._bans.items() if v > now}
        self._bans[ip] = now + seconds
        if self.emit is not None:
            self.emit(SecurityBanned(timestamp=now, ip=ip, reason=reason, seconds=seconds))

    def restore(self, bans: dict[str, float]) -> None:
        """Bans kept elsewhere (another node's, or from before a restart), ending at the
        given wall-clock times; no event: they were announced when they began."""
        for ip, until in bans.items():
            if until > self._bans.get(ip, 0.0) and not self.trusted(ip):
                self._bans[ip] = until

    def lift(self, ip: str) -> bool:
        """End the ban on ``ip`` (an operator's decision); False when it was not banned.
        Its flood and failure counts start again from nothing."""
        found = self._bans.pop(ip, None) is not None
        self._counts.pop(ip, None)
        self._scans.pop(ip, None)
        if self.failures is not None:
            self.failures.clear(ip)
        return found

    def banned(self, now: float) -> dict[str, float]:
        """Banned sources and the seconds each ban has left."""
        return {ip: until - now for ip, until in self._bans.items() if until > now}
