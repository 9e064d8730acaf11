"""A dry run of routing: what routr would do with a request, and why, sending nothing.

It runs the live code: the guard's and ACLs' verdicts, the request authenticator, the
router's classification and its routing table (``Router.route``). Only the words that
say why are written here. Credentials in a question are dropped before the authenticator
sees them, so a question never counts as a failed login. One effect remains: a Peer's
round-robin moves on by one, as for a real call, so the target shown is the one a call
now would get.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from routr.core.routing import Decision, Target
from routr.core.service import SipService
from routr.sip.errors import ParseError
from routr.sip.message import Request, parse_message
from routr.sip.uri import SipURI

_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})


class ExplainError(ValueError):
    """The question cannot be asked as given (a URI or request that does not parse)."""


@dataclass(frozen=True, slots=True)
class DrySource:
    """Where the request would come from: no connection, nothing is sent back."""

    ip: str
    port: int
    protocol: str = "udp"
    local: tuple[str, int] = ("0.0.0.0", 0)
    conn: None = None


def build_request(method: str, from_uri: str, to_uri: str, source: DrySource) -> Request:
    """The request a phone would send: ``method`` of ``to_uri`` from ``from_uri``."""
    host = f"[{source.ip}]" if ":" in source.ip else source.ip
    text = (
        f"{method} {to_uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{source.protocol.upper()} {host}:{source.port};branch=z9hG4bK-dry-"
        f"{uuid.uuid4().hex[:12]};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <{from_uri}>;tag=dry\r\nTo: <{to_uri}>\r\n"
        f"Call-ID: dry-{uuid.uuid4().hex}\r\nCSeq: 1 {method}\r\n"
        f"Contact: <{from_uri}>\r\nContent-Length: 0\r\n\r\n"
    )
    return parse(text)


def parse(text: str) -> Request:
    try:
        message = parse_message(text.replace("\r\n", "\n").replace("\n", "\r\n").encode())
    except ParseError as exc:
        raise ExplainError(f"the request does not parse: {exc}") from None
    if not isinstance(message, Request):
        raise ExplainError("a request is needed, not a response")
    return message


def _target(target: Target) -> dict[str, Any]:
    hop = target.hop
    return {
        "uri": target.uri,
        "hop": f"{hop.transport} {hop.host}:{hop.port}" if hop is not None else None,
        "addHeaders": [f"{k}: {v}" for k, v in target.add_headers],
        "removeHeaders": list(target.remove_headers),
        "authenticatesWith": target.credentials[0] if target.credentials else None,
    }


def _decision(decision: Decision) -> dict[str, Any]:
    response = decision.response
    status = response.status if response is not None else decision.status
    reason = response.reason if response is not None else decision.reason
    return {
        "strategy": decision.strategy or None,
        "status": status or None,
        "reason": reason,
        "callerRef": decision.caller_ref,
        "calleeRef": decision.callee_ref,
        "gatewayRef": decision.gateway_ref,
        "peerRef": decision.peer_ref,
        "rule": decision.rule,
        "targets": [_target(t) for t in decision.targets],
    }


async def explain(sip: SipService, request: Request, source: DrySource) -> dict[str, Any]:
    """Every verdict on ``request`` from ``source``, in the order routr reaches them."""
    now = sip.clock()
    out: dict[str, Any] = {
        "request": {
            "method": request.method,
            "uri": str(request.uri),
            "from": str(request.from_.uri),
            "source": f"{source.ip}:{source.port}",
            "transport": source.protocol,
        },
    }
    banned = sip.guard.banned(now).get(source.ip)
    out["guard"] = {"banned": banned is not None, "trusted": sip.guard.trusted(source.ip)}
    allowed = sip.acl.allowed(source.ip) if sip.acl is not None else True
    out["acl"] = "allowed" if sip.acl is not None and allowed else (
        "denied" if not allowed else "none")  # fmt: skip
    if banned is not None or not allowed:
        why = f"{source.ip} is banned" if banned is not None else "the global ACL denies it"
        out["verdict"] = f"dropped or refused before routing: {why}"
        return out

    router = sip.router
    idx = sip.index()
    caller = await router.classify(request, source, idx)
    out["caller"] = _caller(caller, request, source)

    # Credentials in a question are not checked: a wrong one would count as a failed
    # login for the address the question names (and could ban it). The answer says whether
    # a request from there is challenged first.
    for key in _CREDENTIAL_HEADERS:
        request.remove(key)
    challenge = router.auth.check(request, source, now) if router.auth is not None else None
    if challenge is not None:
        realm = request.from_.uri.host_key if isinstance(request.from_.uri, SipURI) else None
        out["authentication"] = {"asked": True, "status": challenge.status, "realm": realm}
    else:
        out["authentication"] = {"asked": False}

    decision = await router.route(request, source)
    out["decision"] = _decision(decision)
    uri = request.uri
    if isinstance(uri, SipURI) and idx.is_local_domain(uri.host_key):
        out["domainAcl"] = {"domain": uri.host_key,
                            "allowed": router.acls.allowed(uri.host_key, source.ip)}  # fmt: skip
    out["verdict"] = _verdict(out)
    return out


def _caller(caller: Any, request: Request, source: DrySource) -> dict[str, Any]:
    where = f"{source.ip}:{source.port}"
    if caller.gateway is not None:
        gateway = caller.gateway
        return {"kind": "Gateway", "ref": gateway.ref, "name": gateway.metadata.name,
                "why": f"{where} is the address of Gateway {gateway.metadata.name}"}  # fmt: skip
    if caller.agent is not None:
        agent = caller.agent
        return {"kind": "Agent", "ref": agent.ref, "name": agent.metadata.name,
                "domain": caller.domain,
                "why": f"From {request.from_.uri} is Agent {agent.metadata.name} of "
                       f"{caller.domain}"}  # fmt: skip
    if caller.peer is not None:
        peer = caller.peer
        return {"kind": "Peer", "ref": peer.ref, "name": peer.metadata.name,
                "why": f"From names Peer {peer.metadata.name} and {source.ip} is an address "
                       "it registered from"}  # fmt: skip
    return {"kind": "stranger", "ref": None, "name": None,
            "why": f"From {request.from_.uri} is no Agent, no Peer registered from {source.ip}, "
                   f"and {where} is no Gateway's address"}  # fmt: skip


def _verdict(out: dict[str, Any]) -> str:
    decision = out["decision"]
    caller = out["caller"]
    who = caller["kind"] if caller["name"] is None else f"{caller['kind']} {caller['name']}"
    head = f"{out['request']['method']} from {who} to {out['request']['uri']}"
    asked = out["authentication"]
    auth = (
        f"; first challenged ({asked['status']}, realm {asked['realm']})" if asked["asked"] else ""
    )
    if decision["targets"]:
        targets = ", ".join(
            f"{t['uri']}" + (f" via {t['hop']}" if t["hop"] else "") for t in decision["targets"]
        )
        rule = f" (egress rule {decision['rule']})" if decision["rule"] else ""
        return f"{head}: {decision['strategy']}{rule} to {targets}{auth}"
    strategy = f"{decision['strategy']}: " if decision["strategy"] else ""
    return f"{head}: {strategy}answered {decision['status']} {decision['reason']}{auth}"
