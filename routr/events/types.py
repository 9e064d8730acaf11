"""The events of SPEC.md §7, one small frozen record per subject.

Decisions:
- Plain ``__slots__`` dataclasses, keyword-only: an emitter builds one per REGISTER, so no
  pydantic and no validation; keywords keep call sites readable as fields are added.
- ``name`` is a class attribute (the NATS subject suffix), not a field: it never varies per
  instance, and ``isinstance`` or ``event.name`` both work for consumers.
- ``timestamp`` is wall-clock seconds handed in by the emitter, which owns the clock: nothing
  here reads the time, so tests build events with fixed timestamps.
- One generic :meth:`Event.to_dict` walks the dataclass fields (cached per class) and spells
  them in camelCase like Routr v1. A trailing underscore is dropped from the JSON key:
  ``name_`` is how a resource's name avoids clashing with the class-level ``name``.
- ``gateway.unregistered`` and ``gateway.unregistration.failed`` are not in SPEC §7 but
  ``routr.core.gateways`` emits them on shutdown; they get types so nothing is lost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

__all__ = [
    "EVENT_TYPES",
    "CallAnswered",
    "CallEnded",
    "CallStarted",
    "ConfigReloaded",
    "EndpointEvent",
    "EndpointExpired",
    "EndpointRegistered",
    "EndpointUnregistered",
    "Event",
    "GatewayEvent",
    "GatewayRegistered",
    "GatewayRegistrationFailed",
    "GatewayUnregistered",
    "GatewayUnregistrationFailed",
    "ResourceCreated",
    "ResourceDeleted",
    "ResourceEvent",
    "ResourceUpdated",
    "SecurityBanned",
    "iso_timestamp",
]

#: (attribute, JSON key) per event class, built on first use: dataclasses.fields() is too
#: slow to call for every event a watch stream or the NATS publisher serializes.
_KEYS: dict[type[Event], tuple[tuple[str, str], ...]] = {}


def _camel(attr: str) -> str:
    head, *rest = attr.rstrip("_").split("_")
    return head + "".join(part.capitalize() for part in rest)


def iso_timestamp(seconds: float) -> str:
    """``2024-05-01T12:00:00.123Z``: ISO-8601 UTC with milliseconds, as JavaScript prints."""
    text = datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    # Mappings (ConfigReloaded.counts) may be read-only views: JSON encoders want a dict.
    return dict(value) if isinstance(value, Mapping) else value


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event. ``timestamp``: wall-clock seconds (``time.time()`` of the emitter)."""

    name: ClassVar[str]
    timestamp: float

    def to_dict(self, node: str | None = None) -> dict[str, Any]:
        """The JSON body for NATS and watch streams: ``event``, ``node``, ``timestamp``
        (ISO-8601 UTC) and every field in camelCase."""
        cls = type(self)
        keys = _KEYS.get(cls)
        if keys is None:
            keys = tuple(
                (f.name, _camel(f.name)) for f in dataclasses.fields(self) if f.name != "timestamp"
            )
            _KEYS[cls] = keys
        body: dict[str, Any] = {
            "event": self.name,
            "node": node,
            "timestamp": iso_timestamp(self.timestamp),
        }
        for attr, key in keys:
            body[key] = _plain(getattr(self, attr))
        return body


# -- endpoints (the registrar and the location store) -----------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointEvent(Event):
    """A binding added, removed or timed out. ``source``: ``ip:port`` of the REGISTER;
    ``expires``: seconds granted (0 when removed); ``reason``: ``registered``,
    ``unregistered``, ``replaced`` (ex_maxContact reached) or ``expired``."""

    aor: str
    contact: str
    transport: str
    source: str
    user_agent: str | None
    expires: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointRegistered(EndpointEvent):
    name: ClassVar[str] = "endpoint.registered"


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointUnregistered(EndpointEvent):
    name: ClassVar[str] = "endpoint.unregistered"


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointExpired(EndpointEvent):
    name: ClassVar[str] = "endpoint.expired"


# -- calls ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(Event):
    """An INVITE routed. ``caller_ref``/``callee_ref``: refs of the Agent, Peer or Number on
    each side when known; ``gateway_ref`` or ``peer_ref``: where it leaves, if not to an
    Agent. ``strategy``: the router's (``INTRA_DOMAIN``, ``DOMAIN_EGRESS``...)."""

    name: ClassVar[str] = "call.started"
    call_id: str
    from_uri: str
    to_uri: str
    caller_ref: str | None
    callee_ref: str | None
    strategy: str
    gateway_ref: str | None = None
    peer_ref: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(Event):
    """A 2xx to the INVITE went back to the caller."""

    name: ClassVar[str] = "call.answered"
    call_id: str
    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(Event):
    """The dialog is over, or the INVITE failed.

    ``cause``: a short word (``normal``, ``cancelled``, ``busy``, ``rejected``, ``timeout``...);
    ``status``: what ended it, ``"BYE"``, ``"CANCEL"`` or the final SIP status as text
    (``"486"``), text so that the JSON field has one type. ``duration``: seconds since the
    answer, 0 for calls never answered.
    """

    name: ClassVar[str] = "call.ended"
    call_id: str
    cause: str
    status: str
    duration: float
    answered: bool


# -- gateways (outbound registrations) ------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayEvent(Event):
    """An outbound REGISTER's outcome. ``registrar``: ``host:port``; ``status``: the SIP
    status when a response came (None on timeout); ``reason``: the phrase or why it failed;
    ``expires``: seconds granted or asked for."""

    ref: str
    registrar: str
    expires: int
    status: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayRegistered(GatewayEvent):
    name: ClassVar[str] = "gateway.registered"


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayRegistrationFailed(GatewayEvent):
    name: ClassVar[str] = "gateway.registration.failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayUnregistered(GatewayEvent):
    name: ClassVar[str] = "gateway.unregistered"


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayUnregistrationFailed(GatewayEvent):
    name: ClassVar[str] = "gateway.unregistration.failed"


# -- security -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityBanned(Event):
    """Packets from ``ip`` are dropped for ``seconds`` (flood or authentication failures)."""

    name: ClassVar[str] = "security.banned"
    ip: str
    reason: str
    seconds: float


# -- resources and configuration ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceEvent(Event):
    """A resource written through the API or edited on disk. ``kind``: ``Agent``,
    ``Domain``...; ``name_``: its ``metadata.name`` (``name`` in JSON)."""

    kind: str
    ref: str
    name_: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceCreated(ResourceEvent):
    name: ClassVar[str] = "resource.created"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceUpdated(ResourceEvent):
    name: ClassVar[str] = "resource.updated"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceDeleted(ResourceEvent):
    name: ClassVar[str] = "resource.deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigReloaded(Event):
    """Resources (re)loaded: ``counts`` per kind (``{"Agent": 3, ...}``); ``source``: the
    provider or path they came from."""

    name: ClassVar[str] = "config.reloaded"
    counts: Mapping[str, int]
    source: str


#: Every concrete event class by its name: for filters, metrics labels and consumers.
EVENT_TYPES: Final[Mapping[str, type[Event]]] = {
    cls.name: cls
    for cls in (
        EndpointRegistered,
        EndpointUnregistered,
        EndpointExpired,
        CallStarted,
        CallAnswered,
        CallEnded,
        GatewayRegistered,
        GatewayRegistrationFailed,
        GatewayUnregistered,
        GatewayUnregistrationFailed,
        SecurityBanned,
        ResourceCreated,
        ResourceUpdated,
        ResourceDeleted,
        ConfigReloaded,
    )
}
