"""The log subscriber: one line per event, in the words operators and tests grep for.

Levels: ``endpoint.*`` at debug (one per REGISTER would flood the operator's log and cost a
formatted line per request), ``security.banned`` at warning, everything else at info. The
level is checked before any text is built, so a disabled level costs one lookup.

Formats (the first words are what the end-to-end tests wait for):
``endpoint.registered sip:1001@sip.local -> sip:1001@10.0.0.5:5060 (registered)``,
``security.banned 1.2.3.4 for 300 s: flood``,
``gateway.registered gw-1 at sip.provider.net:5060 for 3600 s``,
``call.ended <call-id> busy (486), not answered``.
"""

from __future__ import annotations

import logging
from functools import singledispatch

from routr.events.bus import Bus, Kinds, Subscription
from routr.events.types import (
    CallAnswered,
    CallEnded,
    CallStarted,
    ConfigReloaded,
    EndpointEvent,
    Event,
    GatewayEvent,
    GatewayRegistered,
    ResourceEvent,
    SecurityBanned,
)

__all__ = ["describe", "level_of", "log_event", "log_events"]

_log = logging.getLogger(__name__)

#: Level by name prefix; the first match wins, the default is info.
# One line per registration or call event costs a good share of the hot path (about 15 %
# of a REGISTER): those are for the bus and its subscribers, the log shows them at debug.
_LEVELS: tuple[tuple[str, int], ...] = (
    ("endpoint.", logging.DEBUG),
    ("call.", logging.DEBUG),
    ("security.", logging.WARNING),
)
_level_cache: dict[str, int] = {}


def level_of(name: str) -> int:
    """The logging level an event of that name is logged at."""
    level = _level_cache.get(name)
    if level is None:
        level = next((lv for prefix, lv in _LEVELS if name.startswith(prefix)), logging.INFO)
        _level_cache[name] = level
    return level


@singledispatch
def describe(event: Event) -> str:
    """The log line for ``event`` (without level or timestamp)."""
    body = event.to_dict()
    del body["event"], body["node"], body["timestamp"]
    return " ".join([event.name, *(f"{k}={v}" for k, v in body.items())])


@describe.register
def _(event: EndpointEvent) -> str:
    reason = f" ({event.reason})" if event.reason else ""
    return f"{event.name} {event.aor} -> {event.contact}{reason}"


@describe.register
def _(event: SecurityBanned) -> str:
    return f"security.banned {event.ip} for {event.seconds:.0f} s: {event.reason}"


@describe.register
def _(event: GatewayEvent) -> str:
    text = f"{event.name} {event.ref} at {event.registrar}"
    if isinstance(event, GatewayRegistered):
        return f"{text} for {event.expires} s"
    why = " ".join(str(part) for part in (event.status, event.reason) if part)
    return f"{text}: {why}" if why else text


@describe.register
def _(event: CallStarted) -> str:
    text = f"call.started {event.call_id} {event.from_uri} -> {event.to_uri} ({event.strategy})"
    if event.gateway_ref:
        text += f" via gateway {event.gateway_ref}"
    elif event.peer_ref:
        text += f" via peer {event.peer_ref}"
    return text


@describe.register
def _(event: CallAnswered) -> str:
    return f"call.answered {event.call_id} {event.status}"


@describe.register
def _(event: CallEnded) -> str:
    after = f" after {event.duration:.0f} s" if event.answered else ", not answered"
    return f"call.ended {event.call_id} {event.cause} ({event.status}){after}"


@describe.register
def _(event: ResourceEvent) -> str:
    label = f" ({event.name_})" if event.name_ else ""
    return f"{event.name} {event.kind} {event.ref}{label}"


@describe.register
def _(event: ConfigReloaded) -> str:
    counts = ", ".join(f"{n} {kind}" for kind, n in event.counts.items()) or "nothing"
    return f"config.reloaded from {event.source}: {counts}"


def log_event(event: Event, logger: logging.Logger = _log) -> None:
    """Log one event at its level; a bus callback (``bus.subscribe(log_event)``)."""
    level = level_of(event.name)
    if logger.isEnabledFor(level):
        logger.log(level, "%s", describe(event))


def log_events(bus: Bus, kinds: Kinds = None, logger: logging.Logger | None = None) -> Subscription:
    """Subscribe the log to ``bus``; ``logger`` defaults to ``routr.events.log``."""
    target = logger or _log
    return bus.subscribe(lambda event: log_event(event, target), kinds, name="log")
