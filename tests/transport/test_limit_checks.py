"""The limits' sans-IO parts: header counts at parse, the framer's partial message, the
table of server transactions per source."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from routr.core.limits import ServerTable
from routr.sip.errors import LimitExceeded, MessageTooLarge
from routr.sip.framing import StreamFramer
from routr.sip.limits import LIMIT_NAMES, LimitHits, MessageLimits
from routr.sip.message import Request, parse_message

LIMITS = MessageLimits(headers=20, vias=3, routes=3, contacts=2)


def message(method: str = "OPTIONS", extra: str = "") -> bytes:
    return (
        f"{method} sip:example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-1\r\n"
        "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
        f"Call-ID: c1\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("extra", "limit", "reason"),
    [
        ("".join(f"X-{i}: {i}\r\n" for i in range(14)), "headers", "Too Many Headers"),
        ("Via: SIP/2.0/UDP h1, SIP/2.0/UDP h2\r\nVia: SIP/2.0/UDP h3\r\n", "vias",
         "Too Many Via Headers"),
        ("Route: <sip:r1;lr>, <sip:r2;lr>, <sip:r3;lr>, <sip:r4;lr>\r\n", "routes",
         "Too Many Route Headers"),
    ],
)  # fmt: skip
def test_a_count_past_its_bound_is_refused_with_the_message(extra, limit, reason):
    with pytest.raises(LimitExceeded) as refused:
        parse_message(message(extra=extra), limits=LIMITS)
    assert (refused.value.limit, refused.value.reason, refused.value.status) == (
        limit,
        reason,
        400,
    )
    assert isinstance(refused.value.message, Request)  # so a 400 can go back


def test_contacts_count_in_a_register_only():
    three = "Contact: <sip:a@h1>, <sip:a@h2>\r\nContact: <sip:a@h3>\r\n"
    parse_message(message("INVITE", three), limits=LIMITS)
    with pytest.raises(LimitExceeded) as refused:
        parse_message(message("REGISTER", three), limits=LIMITS)
    assert refused.value.limit == "contacts"


def test_commas_inside_quotes_and_brackets_are_not_values():
    # Two Contacts whose display names and URIs hold commas: two values, not six.
    two = 'Contact: "Doe, John" <sip:a@h1;x=1,2>, "Roe, Jane" <sip:a@h2>\r\n'
    extra = two + "".join(f"X-{i}: a, b, c\r\n" for i in range(5))
    assert len(parse_message(message("REGISTER", extra), limits=LIMITS).contacts) == 2


def test_no_limits_no_check():
    many = "".join(f"Via: SIP/2.0/UDP h{i}\r\n" for i in range(10))
    assert len(parse_message(message(extra=many)).vias) == 11


def test_message_too_large_is_the_message_size_limit():
    assert MessageTooLarge("Message Too Large").limit == "message_size"
    hits = LimitHits()
    hits.hit("headers")
    assert hits.counts == {**dict.fromkeys(LIMIT_NAMES, 0), "headers": 1}


def test_the_framer_tells_a_begun_message_from_line_ends():
    framer = StreamFramer()
    framer.feed(b"\r\n")  # may become a ping: no message has begun
    assert framer.pending and not framer.partial
    framer.feed(b"\r\n")
    assert not framer.pending
    framer.feed(b"OPT")
    assert framer.partial
    framer.feed(message()[3:])
    assert not framer.partial


class Ctx:
    """What the table reads of the proxy's Context: its source and whether it is answered."""

    def __init__(self, ip: str) -> None:
        self.source = SimpleNamespace(ip=ip)
        self.final_sent = False


def context(ip: str) -> Any:
    return Ctx(ip)


def test_the_table_counts_requests_in_progress_per_source():
    table = ServerTable(2)
    a, b = context("192.0.2.1"), context("192.0.2.1")
    table["k1"], table["k2"] = a, b
    table["k3"] = context("192.0.2.2")
    assert table.full("192.0.2.1") and not table.full("192.0.2.2")
    a.final_sent = True  # answered: no longer in progress, though still in the table
    assert not table.full("192.0.2.1")
    assert table.pop("k2") is b and table.pop("k2", None) is None
    del table["k1"]
    assert "192.0.2.1" not in table.by_source
    with pytest.raises(KeyError):
        table.pop("k1")
    assert cast(dict[str, Any], table) == {"k3": table["k3"]}
