"""Our Via: the loop hash in its branch, and our Via on a response no transaction knows.

The branch of every Via we push starts with a hash of what decides the routing of the
request as received (RFC 3261 §16.6 step 8): the same request coming back unchanged (a loop,
not a spiral) carries that prefix in a lower Via (§16.3 step 4, :func:`is_loop`). A
response with our Via on top that no client transaction knows (a late 2xx retransmission,
say) goes on by the next Via (§16.11, :func:`stray_hop`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from routr.core.routing import Hop
from routr.sip.address import MAGIC_COOKIE
from routr.sip.message import Request, Response
from routr.sip.uri import SipURI, hostport


def loop_hash(request: Request) -> str:
    """§16.6 step 8: a hash of what decides routing; the same request coming back
    unchanged (a loop, not a spiral) yields the same branch prefix."""
    seed = "|".join(
        (
            request.uri_text,
            request.from_.tag or "",
            request.to.tag or "",
            request.call_id,
            str(request.cseq.number),
            ",".join(request.get_all("route")),
        )
    )
    return hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), digest_size=5).hexdigest()


def is_loop(request: Request, loop_hash: str) -> bool:
    """Whether a Via below the top one is ours for this very request (§16.3 step 4)."""
    prefix = MAGIC_COOKIE + loop_hash
    for via in request.vias[1:]:
        branch = via.branch
        if branch and branch.startswith(prefix):
            return True
    return False


def push_via(out: Request, loop_hash: str, local: tuple[str, str, int], seq: int) -> None:
    """Our Via on top of ``out`` (``local`` is transport, host, port), its branch the loop
    hash of the received request and ``seq``, unique to this copy."""
    transport, host, port = local
    branch = f"{MAGIC_COOKIE}{loop_hash}.{seq:x}"
    value = f"SIP/2.0/{transport.upper()} {hostport(host, port)};branch={branch};rport"
    out.add("Via", value, first=True)


def stray_hop(response: Response, is_self: Callable[[SipURI], bool]) -> Hop | None:
    """Pop our Via off a response no transaction knows, and where the next Via sends it;
    None (and the response untouched) when the top Via is not ours."""
    vias = response.vias
    if len(vias) < 2 or not (vias[0].branch or "").startswith(MAGIC_COOKIE):
        return None
    top = vias[0]
    if not is_self(SipURI(top.host, None, top.port)):
        return None
    response.pop_first("via")
    nxt = response.vias[0]
    host = nxt.received or nxt.host_key
    port = nxt.rport or nxt.port or 5060
    return Hop(nxt.transport.lower(), host, port)
