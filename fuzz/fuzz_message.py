"""Fuzz target: one datagram through the message parser, every header accessor the server
reads, the nat/response/serialize steps, and the whole sans-IO service (``on_data``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import harness
from harness import EXPECTED

from routr.core.nat import fix_contact, reply_address, stamp_via
from routr.sip.digest import parse_challenge, parse_credentials
from routr.sip.message import Message, Request, Response, parse_message

SERVICE = harness.Service()

# List headers the core reads by name (option tags, Allow, Path...).
_LISTS = ("supported", "require", "proxy-require", "allow", "path", "unsupported", "accept")


def _try(step: Callable[[], Any]) -> None:
    """Run one accessor; its own documented error is no crash and must not hide the rest."""
    try:
        step()
    except EXPECTED:
        pass


def _address(address: Any) -> None:
    str(address)
    _ = address.tag, address.display
    _try(lambda: address.expires)
    _try(lambda: address.q)
    _try(lambda: address.sip_uri.aor)
    _try(lambda: (address.sip_uri.host_key, address.sip_uri.transport))
    address.uri.matches(address.uri)


def _addresses(addresses: list[Any]) -> None:
    for address in addresses:
        _address(address)


def sweep(message: Message) -> None:
    """Read every typed header the server reads, each on its own."""

    def vias() -> None:
        for via in message.vias:
            str(via)
            _ = via.branch, via.received, via.rport, via.maddr, via.host_key
            _ = via.rfc3261_branch

    _try(vias)
    _try(lambda: message.via)
    _try(lambda: _address(message.from_))
    _try(lambda: _address(message.to))
    _try(lambda: message.call_id)
    _try(lambda: str(message.cseq))
    _try(lambda: message.max_forwards)
    _try(lambda: message.content_length)
    _try(lambda: message.expires)
    _ = message.content_type, message.get("user-agent")
    for getter in (lambda: message.contacts, lambda: message.routes,
                   lambda: message.record_routes):  # fmt: skip
        _try(lambda getter=getter: _addresses(getter()))  # type: ignore[misc]
    for key in _LISTS:
        _try(lambda key=key: message.get_all(key))  # type: ignore[misc]
    for key in ("authorization", "proxy-authorization"):
        for value in message.get_all(key):
            _try(lambda value=value: repr(parse_credentials(value)))  # type: ignore[misc]
    for key in ("www-authenticate", "proxy-authenticate"):
        for value in message.get_all(key):
            _try(lambda value=value: parse_challenge(value))  # type: ignore[misc]
    if isinstance(message, Request):
        _try(lambda: str(message.uri))
        _try(message.check)
        _try(lambda: reply_address(message, "10.0.0.5", 5070))
        _try(lambda: stamp_via(message, "10.0.0.5", 5070))
        _try(lambda: fix_contact(message, "udp", "10.0.0.5", 5070))
        _try(lambda: message.response(400, "Bad Request").to_bytes())
        _try(lambda: message.pop_first("route"))
    elif isinstance(message, Response):
        _try(lambda: fix_contact(message, "udp", "10.0.0.5", 5070))
    again = message.to_bytes()
    _try(lambda: parse_message(again, datagram=False))


def test_one(data: bytes) -> None:
    for datagram in (True, False):
        try:
            message = parse_message(data, datagram=datagram)
        except EXPECTED as exc:
            found = getattr(exc, "message", None)
            if found is not None:
                sweep(found)  # the server still reads a rejected request to answer it
            continue
        sweep(message)
    SERVICE.feed(data)


if __name__ == "__main__":
    harness.run(test_one)
