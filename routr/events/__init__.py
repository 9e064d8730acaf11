"""Typed events (SPEC.md §7) and the in-process bus that carries them to the log, metrics,
the API's watch streams and NATS.

Emitters build an event with the timestamp of their clock and call ``bus.emit(event)``;
consumers use ``bus.subscribe(callback)`` (inline, cheap) or ``bus.queue()`` (buffered,
async). ``event.to_dict(node)`` is the JSON body to publish.
"""

from routr.events.bus import Bus, EventQueue, Kinds, QueueClosed, Subscription
from routr.events.log import describe, level_of, log_event, log_events
from routr.events.types import (
    EVENT_TYPES,
    CallAnswered,
    CallEnded,
    CallStarted,
    ConfigReloaded,
    EndpointEvent,
    EndpointExpired,
    EndpointRegistered,
    EndpointUnregistered,
    Event,
    GatewayEvent,
    GatewayRegistered,
    GatewayRegistrationFailed,
    GatewayUnregistered,
    GatewayUnregistrationFailed,
    ResourceCreated,
    ResourceDeleted,
    ResourceEvent,
    ResourceUpdated,
    SecurityBanned,
    iso_timestamp,
)

__all__ = [
    "EVENT_TYPES",
    "Bus",
    "CallAnswered",
    "CallEnded",
    "CallStarted",
    "ConfigReloaded",
    "EndpointEvent",
    "EndpointExpired",
    "EndpointRegistered",
    "EndpointUnregistered",
    "Event",
    "EventQueue",
    "GatewayEvent",
    "GatewayRegistered",
    "GatewayRegistrationFailed",
    "GatewayUnregistered",
    "GatewayUnregistrationFailed",
    "Kinds",
    "QueueClosed",
    "ResourceCreated",
    "ResourceDeleted",
    "ResourceEvent",
    "ResourceUpdated",
    "SecurityBanned",
    "Subscription",
    "describe",
    "iso_timestamp",
    "level_of",
    "log_event",
    "log_events",
]
