"""Answering a Gateway's challenge, and the CSeq shift it leaves behind.

A Gateway that challenges a request (401/407) is answered with the gateway's credentials:
:func:`authorize` makes the request again, CSeq + 1, with the answer added. The proxy answers
with the credentials the router put on the target, or, in a dialog (whose route names no
Gateway), with those of the Gateway at the address the request went to
(:func:`answer_challenge`, :func:`credentials_at`). The caller's CSeq then differs from the
one the gateway saw, and :class:`CSeqShifts` remembers by how much so the proxy can map it
both ways (:func:`shift_cseq`). Outbound registration (:mod:`routr.core.gateways`) answers
its registrar's challenges with :func:`authorize` too.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from routr.core.routing import Hop
from routr.data.index import Index, normalize_ip
from routr.models.fields import is_ip
from routr.sip.digest import make_credentials, pick_challenge
from routr.sip.errors import ParseError
from routr.sip.message import Request, Response

#: (username, secret) of the Gateway at a hop, None when no Gateway with credentials is there.
CredentialsAt = Callable[[Hop], tuple[str, str] | None]


def authorize(
    request: Request, challenge: Response, credentials: tuple[str, str]
) -> Request | None:
    """``request`` as we sent it (our Via on top) made ready to send again: our Via
    removed (the caller pushes a new branch), CSeq + 1 and the answer to the challenge
    of ``challenge`` (401 or 407). None when no challenge can be answered."""
    status = challenge.status
    name, answer = (
        ("www-authenticate", "Authorization")
        if status == 401
        else ("proxy-authenticate", "Proxy-Authorization")
    )
    picked = pick_challenge(challenge.get_all(name))
    if picked is None:
        return None
    username, secret = credentials
    creds = make_credentials(
        picked, request.method, request.uri_text, username, secret, secrets.token_hex(8)
    )
    out = Request(request.method, request.uri_text, list(request.headers), request.body)
    out.pop_first("via")
    out.remove(name.replace("authenticate", "authorization"))
    cseq = out.cseq
    out.set("cseq", f"{cseq.number + 1} {cseq.method}")
    out.add(answer, creds)
    return out


def answer_challenge(
    sent: Request,
    challenge: Response,
    credentials: tuple[str, str] | None,
    hop: Hop,
    *,
    in_dialog: bool,
    credentials_at: CredentialsAt | None,
) -> Request | None:
    """The proxy's answer to the challenge of a branch that sent ``sent`` to ``hop``: with
    ``credentials`` (its target's), else in a dialog with those of the Gateway at ``hop``;
    None when it is not a Gateway's to answer (it goes upstream to the caller)."""
    if credentials is None and credentials_at is not None:
        # In a dialog: the gateway is known by the address the request went to, when it
        # went straight there (a next hop that is another proxy is not the gateway).
        if not in_dialog:
            return None
        credentials = credentials_at(hop)
    if credentials is None:
        return None
    return authorize(sent, challenge, credentials)


def credentials_at(index: Index, host: str, port: int) -> tuple[str, str] | None:
    """(username, secret) of the Gateway at ``host:port`` (the next hop of an in-dialog
    request), or None when no Gateway with credentials is there."""
    bare = host.strip("[]")
    gateway = index.gateway_from(normalize_ip(bare), port) if is_ip(bare) else None
    if gateway is None:
        # A Contact may name the gateway by its host name rather than an address.
        name = bare.lower()
        gateway = next((g for g in index.gateways if g.spec.host.lower() == name
                        and g.spec.port in (None, port)), None)  # fmt: skip
    if gateway is None or gateway.spec.credentials is None:
        return None
    return gateway.spec.credentials.username, gateway.spec.credentials.secret


class CSeqShifts:
    """How much the CSeq of one caller's requests in a dialog was raised on the way out,
    keyed by Call-ID and the caller's From tag (its responses carry the same From).

    Bounded: the oldest dialogs are forgotten first (a finished call no longer needs it).
    """

    __slots__ = ("_shifts", "max_size")

    def __init__(self, max_size: int = 100_000) -> None:
        self._shifts: dict[tuple[str, str], int] = {}
        self.max_size = max_size

    def note(self, call_id: str, from_tag: str | None, shift: int) -> None:
        key = (call_id, from_tag or "")
        self._shifts.pop(key, None)
        if len(self._shifts) >= self.max_size:
            self._shifts.pop(next(iter(self._shifts)))
        self._shifts[key] = shift

    def of(self, message: Request | Response) -> int:
        """The shift for a request from the caller, or a response to one (else 0)."""
        if not self._shifts:
            return 0
        try:
            return self._shifts.get((message.call_id, message.from_.tag or ""), 0)
        except ParseError:
            return 0

    def __len__(self) -> int:
        return len(self._shifts)


def shift_cseq(message: Request | Response, delta: int) -> None:
    """Add ``delta`` to the CSeq number of ``message``."""
    cseq = message.cseq
    message.set("cseq", f"{cseq.number + delta} {cseq.method}")
