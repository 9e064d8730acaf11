"""What a table shows of each kind of item: columns (``wide`` adds some), identity, name."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rctl.kinds import KINDS, Kind, dig

Item = dict[str, Any]


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Item], str]
    wide: bool = False  # shown with -o wide only


@dataclass(frozen=True)
class View:
    kind: str  # the word in ``-o name`` output: agent/ag12..., binding/sip:...
    columns: tuple[Column, ...]
    key: Callable[[Item], str]  # the identity a watch updates rows by

    def headers(self, wide: bool) -> list[str]:
        return [c.header for c in self.columns if wide or not c.wide]

    def row(self, item: Item, wide: bool) -> list[str]:
        return [c.cell(item) for c in self.columns if wide or not c.wide]

    def name(self, item: Item) -> str:
        return f"{self.kind}/{self.key(item)}"


def duration(seconds: float | None) -> str:
    """kubectl's short ages: 42s, 5m, 3h, 12d, 2y."""
    if seconds is None:
        return "<none>"
    seconds = max(0, int(seconds))
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _since(stamp: Any) -> float | None:
    if isinstance(stamp, int | float):
        return time.time() - stamp
    if isinstance(stamp, str) and stamp:
        try:
            return time.time() - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def at(*path: str, empty: str = "") -> Callable[[Item], str]:
    def cell(item: Item) -> str:
        value = dig(item, *path)
        if value is None or value == "" or value == []:
            return empty
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    return cell


def age(*path: str) -> Callable[[Item], str]:
    return lambda item: duration(_since(dig(item, *path)))


def _egress(item: Item) -> str:
    context = dig(item, "spec", "context") or {}
    policies = context.get("egressPolicies") or (
        [context["egressPolicy"]] if context.get("egressPolicy") else []
    )
    return ",".join(f"{p.get('rule')}->{p.get('numberRef')}" for p in policies) or "<none>"


def _acl(item: Item) -> str:
    acl = dig(item, "spec", "context", "accessControlList") or {}
    parts = [f"allow {','.join(acl['allow'])}"] if acl.get("allow") else []
    parts += [f"deny {','.join(acl['deny'])}"] if acl.get("deny") else []
    return "; ".join(parts) or "<none>"


def _expires_left(item: Item) -> str:
    """Counted down from ``expiresAt`` so a live table ticks without asking again."""
    expires_at = item.get("expiresAt")
    if isinstance(expires_at, int | float):
        return duration(expires_at - time.time())
    return duration(item.get("expires"))


_REF = Column("REF", at("metadata", "ref"))
_NAME = Column("NAME", at("metadata", "name", empty="<none>"))
_AGE = Column("AGE", age("metadata", "createdOn"))
_USERNAME = Column("USERNAME", at("spec", "credentials", "username"))


def _resource_view(kind: Kind, *middle: Column) -> View:
    return View(kind.lower, (_REF, _NAME, *middle, _AGE), lambda i: str(dig(i, "metadata", "ref")))


_BY_KIND = {k.name: k for k in KINDS}
RESOURCE_VIEWS: dict[str, View] = {
    "Agent": _resource_view(
        _BY_KIND["Agent"],
        _USERNAME,
        Column("DOMAINS", at("spec", "domains")),
        Column("PRIVACY", at("spec", "privacy"), wide=True),
        Column("MAX CONTACTS", at("spec", "ex_maxContact"), wide=True),
    ),
    "Domain": _resource_view(
        _BY_KIND["Domain"],
        Column("DOMAIN URI", at("spec", "context", "domainUri")),
        Column("EGRESS", _egress),
        Column("ACL", _acl, wide=True),
    ),
    "Peer": _resource_view(
        _BY_KIND["Peer"],
        _USERNAME,
        Column("DEVICE", at("spec", "device", empty="<none>")),
        Column("CONTACT ADDR", at("spec", "contactAddr", empty="<none>")),
        Column("BALANCING", at("spec", "loadBalancing", "algorithm"), wide=True),
        Column("MAX CONTACTS", at("spec", "ex_maxContact"), wide=True),
    ),
    "Gateway": _resource_view(
        _BY_KIND["Gateway"],
        Column("HOST", at("spec", "host")),
        Column("PORT", at("spec", "port", empty="<default>")),
        Column("TRANSPORT", at("spec", "transport")),
        Column("REGISTER", at("spec", "sendRegister"), wide=True),
        Column("EXPIRES", at("spec", "expires"), wide=True),
        Column("USERNAME", at("spec", "credentials", "username", empty="<none>"), wide=True),
    ),
    "Number": _resource_view(
        _BY_KIND["Number"],
        Column("TEL URL", at("spec", "location", "telUrl")),
        Column("AOR LINK", at("spec", "location", "aorLink")),
        Column("GATEWAY", at("metadata", "gwRef")),
        Column("CITY", at("metadata", "geoInfo", "city", empty="<none>"), wide=True),
        Column("COUNTRY", at("metadata", "geoInfo", "country", empty="<none>"), wide=True),
    ),
    "User": _resource_view(_BY_KIND["User"], _USERNAME),
}

BINDINGS = View(
    "binding",
    (
        Column("AOR", at("aor")),
        Column("CONTACT", at("contact")),
        Column("TRANSPORT", at("transport")),
        Column("SOURCE", at("source")),
        Column("USER AGENT", at("userAgent", empty="<none>")),
        Column("EXPIRES", _expires_left),
        Column("KIND", at("kind"), wide=True),
        Column("REF", at("ref", empty="<none>"), wide=True),
        Column("NAT", at("nat"), wide=True),
        Column("NODE", at("node", empty="<none>"), wide=True),
        Column("AGE", age("registeredOn"), wide=True),
    ),
    lambda i: f"{i.get('aor')} {i.get('contact')}",
)

REGISTRATIONS = View(
    "registration",
    (
        Column("REF", at("ref")),
        Column("NAME", at("name")),
        Column("REGISTRAR", at("registrar")),
        Column("USERNAME", at("username")),
        Column("STATE", at("state")),
        Column("LAST RESPONSE", at("lastResponse", empty="<none>")),
        Column("TRANSPORT", at("transport"), wide=True),
        Column("EXPIRES", at("expires"), wide=True),
        Column("FAILURES", at("failures"), wide=True),
        Column("NEXT ATTEMPT", lambda i: duration(i.get("nextAttemptIn")), wide=True),
    ),
    lambda i: str(i.get("ref")),
)

CALLS = View(
    "call",
    (
        Column("CALL ID", at("callId")),
        Column("FROM", at("from")),
        Column("TO", at("to")),
        Column("STRATEGY", at("strategy")),
        Column("STATE", at("state")),
        Column("DURATION", lambda i: duration(i.get("duration"))),
        Column("CAUSE", at("cause", empty="<none>"), wide=True),
        Column("STATUS", at("status", empty="<none>"), wide=True),
        Column("GATEWAY", at("gatewayRef", empty="<none>"), wide=True),
        Column("PEER", at("peerRef", empty="<none>"), wide=True),
        Column("AGE", age("started")),
    ),
    lambda i: str(i.get("callId")),
)

BANS = View(
    "ban",
    (Column("IP", at("ip")), Column("LEFT", lambda i: duration(i.get("secondsLeft")))),
    lambda i: str(i.get("ip")),
)
