"""The six resource kinds as rctl names them: singular, plural, short.

The names are also in ``routr.models`` (``kind_of``, ``PLURALS``), but importing that pulls
pydantic in, which costs ``rctl get`` more than the request itself; a test keeps the two
tables equal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rctl.errors import RctlError


@dataclass(frozen=True)
class Kind:
    name: str  # "Agent": as in manifests
    plural: str  # "agents": the API's collection
    short: str  # "ag": the ref prefix

    @property
    def lower(self) -> str:
        return self.name.lower()


KINDS: tuple[Kind, ...] = (
    Kind("Agent", "agents", "ag"),
    Kind("Domain", "domains", "dm"),
    Kind("Peer", "peers", "pr"),
    Kind("Gateway", "gateways", "gw"),
    Kind("Number", "numbers", "dd"),
    Kind("User", "users", "us"),
)
_NAMES: dict[str, Kind] = {}
for _kind in KINDS:
    for _alias in (_kind.lower, _kind.plural, _kind.short):
        _NAMES[_alias] = _kind
_NAMES["ur"] = _NAMES["us"]  # Users' refs start with "ur"
_NAMES["did"] = _NAMES["dids"] = _NAMES["dd"]  # Routr v1 release candidates' word


def kind_named(text: str) -> Kind:
    try:
        return _NAMES[text.lower()]
    except KeyError:
        known = ", ".join(f"{k.lower} ({k.short})" for k in KINDS)
        raise RctlError(f"unknown kind {text!r}; one of {known}") from None


def dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _tel_digits(value: str) -> str:
    value = value[4:] if value[:4].lower() == "tel:" else value
    return re.sub(r"[().\- ]", "", value).lstrip("+")


def _agent_keys(item: dict[str, Any]) -> set[str]:
    user = _text(dig(item, "spec", "credentials", "username"))
    return {f"{user}@{str(d).lower()}" for d in dig(item, "spec", "domains") or []}


def _gateway_keys(item: dict[str, Any]) -> set[str]:
    host = _text(dig(item, "spec", "host")).lower()
    port = dig(item, "spec", "port")
    return {f"{host}:{port}" if port else host}


#: What no two resources of a kind may share, as the server checks it (routr.models'
#: ``natural_keys``), read from plain mappings: apply must find a resource written without
#: a ref, and a manifest from ``get -o yaml`` has no secret, so it is no model yet.
NATURAL_KEYS: dict[str, Callable[[dict[str, Any]], set[str]]] = {
    "Agent": _agent_keys,
    "Domain": lambda i: {_text(dig(i, "spec", "context", "domainUri")).lower()},
    "Peer": lambda i: {_text(dig(i, "spec", "credentials", "username"))},
    "Gateway": _gateway_keys,
    "Number": lambda i: {_tel_digits(_text(dig(i, "spec", "location", "telUrl")))},
    "User": lambda i: {_text(dig(i, "spec", "credentials", "username"))},
}


def natural_keys(kind: Kind, item: dict[str, Any]) -> set[str]:
    return NATURAL_KEYS[kind.name](item) - {"", "@"}


def _names(kind: Kind, item: dict[str, Any]) -> set[str]:
    """What people call a resource besides its ref, spelt as ``spoken`` spells them: its
    natural key and, where one is shorter, that (an Agent's username alone, a Gateway's
    host without its port, a Gateway's name)."""
    names = natural_keys(kind, item)
    if kind.name == "Agent":
        names.add(_text(dig(item, "spec", "credentials", "username")))
    elif kind.name == "Gateway":
        names.add(_text(dig(item, "spec", "host")).lower())
        names.add(_text(dig(item, "metadata", "name")).lower())
    return names - {""}


def spoken(kind: Kind, text: str) -> str:
    """``text``, a name given on a command line, as ``_names`` spells the names: domains
    and hosts in lower case, a telephone number as its digits."""
    if kind.name == "Agent" and "@" in text:
        user, _, domain = text.rpartition("@")
        return f"{user}@{domain.lower()}"
    if kind.name in ("Domain", "Gateway"):
        return text.lower()
    if kind.name == "Number":
        return _tel_digits(text)
    return text


def named(kind: Kind, items: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The ``items`` that ``text`` names (a natural key or a shorter name; see ``_names``)."""
    wanted = spoken(kind, text)
    return [item for item in items if wanted in _names(kind, item)]
