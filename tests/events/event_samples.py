"""One sample of every event type, for the events tests (the ``event`` fixture too)."""

from __future__ import annotations

from routr.events import (
    CallAnswered,
    CallEnded,
    CallStarted,
    ConfigReloaded,
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
    ResourceUpdated,
    SecurityBanned,
)

#: 2024-05-01T12:00:00.123Z: a fixed clock, events never read the time themselves.
T = 1714564800.123


def gateway(cls: type[GatewayEvent], status: int | None = None, reason: str | None = None) -> Event:
    return cls(
        timestamp=T,
        ref="gw-1",
        registrar="sip.provider.net:5060",
        expires=3600,
        status=status,
        reason=reason,
    )


def endpoint(
    cls: type[EndpointRegistered | EndpointUnregistered | EndpointExpired],
    reason: str | None = "registered",
) -> Event:
    return cls(
        timestamp=T,
        aor="sip:1001@sip.local",
        contact="sip:1001@10.0.0.5:5060",
        transport="udp",
        source="10.0.0.5:5060",
        user_agent="baresip",
        expires=3600,
        reason=reason,
    )


def samples() -> list[Event]:
    return [
        endpoint(EndpointRegistered),
        endpoint(EndpointUnregistered, "replaced"),
        endpoint(EndpointExpired, None),
        CallStarted(
            timestamp=T,
            call_id="c1",
            from_uri="sip:1001@sip.local",
            to_uri="tel:+17853178070",
            caller_ref="ag-1",
            callee_ref="dn-1",
            strategy="DOMAIN_EGRESS",
            gateway_ref="gw-1",
        ),
        CallAnswered(timestamp=T, call_id="c1", status=200),
        CallEnded(
            timestamp=T, call_id="c1", cause="normal", status="BYE", duration=61.5, answered=True
        ),
        gateway(GatewayRegistered),
        gateway(GatewayRegistrationFailed, 403, "Forbidden"),
        gateway(GatewayUnregistered),
        gateway(GatewayUnregistrationFailed, reason="timeout"),
        SecurityBanned(timestamp=T, ip="1.2.3.4", reason="flood", seconds=300.0),
        ResourceCreated(timestamp=T, kind="Agent", ref="ag-1", name_="John Doe"),
        ResourceUpdated(timestamp=T, kind="Agent", ref="ag-1", name_="John Doe"),
        ResourceDeleted(timestamp=T, kind="Agent", ref="ag-1"),
        ConfigReloaded(timestamp=T, counts={"Agent": 2, "Domain": 1}, source="files:config"),
    ]
