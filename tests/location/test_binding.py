"""Binding: where a request for it goes, and its JSON form."""

from __future__ import annotations

import pytest
from location_helpers import make_binding

from routr.location import Binding


@pytest.mark.parametrize(
    ("contact", "transport", "nat", "hop"),
    [
        ("sip:1001@127.0.0.99:5999", "udp", False, ("udp", "127.0.0.99", 5999, None)),
        ("sip:1001@127.0.0.99:5999", "udp", True, ("udp", "127.0.0.1", 5070, None)),
        ("sip:1001@127.0.0.99", "udp", False, ("udp", "127.0.0.99", 5060, None)),
        ("sip:1001@127.0.0.99;transport=TCP", "udp", False, ("tcp", "127.0.0.99", 5060, None)),
        ("sips:1001@127.0.0.99", "udp", False, ("tls", "127.0.0.99", 5061, None)),
        ("sip:1001@[::1]:5999", "udp", False, ("udp", "::1", 5999, None)),
        # Stream flows are reused, WebSocket ones always (a browser has no listener).
        ("sip:1001@127.0.0.99:5999;transport=tcp", "tcp", False, ("tcp", "127.0.0.1", 5070, 3)),
        ("sip:x@abc.invalid;transport=ws", "ws", False, ("ws", "127.0.0.1", 5070, 3)),
        ("sip:x@abc.invalid;transport=ws", "wss", False, ("wss", "127.0.0.1", 5070, 3)),
        # A contact that names no SIP host: only the source can reach it.
        ("tel:+1234", "udp", False, ("udp", "127.0.0.1", 5070, None)),
    ],
)
def test_next_hop(
    contact: str, transport: str, nat: bool, hop: tuple[str, str, int, int | None]
) -> None:
    conn_id = None if transport == "udp" else 3
    b = make_binding(contact=contact, transport=transport, nat=nat, conn_id=conn_id)
    assert b.next_hop() == hop


def test_to_dict_for_the_api() -> None:
    b = make_binding(user_agent="ua", expires_at=1_100.4, source_ip="::1", source_port=7)
    data = b.to_dict(now=1_000.0)
    assert data["aor"] == "sip:1001@sip.local"
    assert data["contact"] == "sip:1001@127.0.0.1:5070"
    assert data["transport"] == "udp"
    assert data["source"] == "[::1]:7"
    assert data["expires"] == 100
    assert data["userAgent"] == "ua"
    assert "expires" not in b.to_dict()
    assert Binding.from_dict(data) == b
    assert b.expires_in(2_000.0) == 0 and b.expired(1_100.4) and not b.expired(1_100.3)
