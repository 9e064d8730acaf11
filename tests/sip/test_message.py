"""SIP messages: parsing, typed header access, validation, edits, responses, serialization."""

from __future__ import annotations

import pytest

from routr.sip.address import StarContact
from routr.sip.errors import NotImplementedMethod, ParseError, VersionNotSupported
from routr.sip.headers import COMPACT, header_key, split_values
from routr.sip.message import Request, Response, make_request, parse_message
from routr.sip.uri import SipURI, TelURI


def wire(*lines: str, body: str = "") -> bytes:
    """Join header lines with CRLF, add the empty line and the body."""
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


INVITE = wire(
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@biloxi.example.com>",
    'From: "Alice A." <sip:alice@atlanta.example.com>;tag=1928301774',
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:alice@pc33.atlanta.example.com>",
    "Content-Type: application/sdp",
    "Content-Length: 4",
    body="v=0\n",
)


def request(*extra: str, method: str = "OPTIONS", body: str = "") -> Request:
    """A minimal valid request plus ``extra`` header lines."""
    msg = parse_message(
        wire(
            f"{method} sip:bob@example.com SIP/2.0",
            "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc",
            "Max-Forwards: 70",
            "To: <sip:bob@example.com>",
            "From: <sip:alice@example.com>;tag=a1",
            "Call-ID: call-1@example.com",
            f"CSeq: 1 {method}",
            *extra,
            body=body,
        )
    )
    assert isinstance(msg, Request)
    return msg


def bare(*lines: str) -> Request:
    """Parse a request made of exactly these lines (no defaults added)."""
    msg = parse_message(wire(*lines))
    assert isinstance(msg, Request)
    return msg


# -- parsing: start line, headers, body ---------------------------------------------------


def test_parse_request() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert msg.uri_text == "sip:bob@biloxi.example.com"
    assert msg.version == "SIP/2.0"
    assert isinstance(msg.uri, SipURI)
    assert msg.uri.user == "bob"
    assert msg.uri.host == "biloxi.example.com"
    assert msg.body == b"v=0\n"
    assert msg.content_length == 4
    assert msg.content_type == "application/sdp"
    assert [h[0] for h in msg.headers] == [
        "via",
        "max-forwards",
        "to",
        "from",
        "call-id",
        "cseq",
        "contact",
        "content-type",
        "content-length",
    ]
    msg.check()


def test_parse_response() -> None:
    msg = parse_message(
        wire(
            "SIP/2.0 180 Ringing",
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKabc",
            "To: <sip:bob@example.com>;tag=b2",
            "From: <sip:alice@example.com>;tag=a1",
            "Call-ID: c1",
            "CSeq: 7 INVITE",
            "Content-Length: 0",
        )
    )
    assert isinstance(msg, Response)
    assert (msg.version, msg.status, msg.reason) == ("SIP/2.0", 180, "Ringing")
    assert msg.to.tag == "b2"
    assert msg.cseq.number == 7
    assert msg.cseq.method == "INVITE"
    assert msg.body == b""


@pytest.mark.parametrize(
    ("line", "status", "reason"),
    [
        ("SIP/2.0 200 OK", 200, "OK"),
        ("SIP/2.0 100 ", 100, ""),
        ("SIP/2.0 100", 100, ""),
        ("SIP/2.0 486 Busy Here, really", 486, "Busy Here, really"),
        ("SIP/2.0 200 \u00e7a va", 200, "\u00e7a va"),
    ],
)
def test_response_reason_phrases(line: str, status: int, reason: str) -> None:
    msg = parse_message(wire(line, "Via: SIP/2.0/UDP h;branch=z9hG4bK1"))
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (status, reason)


@pytest.mark.parametrize(
    "line",
    [
        "SIP/2.0 20 OK",
        "SIP/2.0 2000 OK",
        "SIP/2.0 abc OK",
        "SIP/2.0 099 Low",
        "SIP/2.0 4294967301 Big",
    ],
)
def test_bad_status_code(line: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(wire(line, "Via: SIP/2.0/UDP h"))
    assert info.value.status == 400
    assert info.value.message is None


def test_version_is_case_insensitive() -> None:
    msg = bare("OPTIONS sip:a@example.com sip/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bK1")
    assert msg.version == "SIP/2.0"
    resp = parse_message(wire("sip/2.0 200 OK", "Via: SIP/2.0/UDP h"))
    assert isinstance(resp, Response)
    assert resp.status == 200


@pytest.mark.parametrize(
    "data",
    [b"", b"\r\n", b"\r\n\r\n", b" \r\n\r\n", b"\t\r\nVia: x\r\n\r\n", b"   "],
)
def test_empty_or_blank_message(data: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(data)
    assert info.value.status == 400


def test_leading_crlfs_before_start_line_are_ignored() -> None:
    for prefix in (b"\r\n", b"\r\n\r\n", b"\r\n\r\n\r\n"):
        msg = parse_message(prefix + INVITE)
        assert isinstance(msg, Request)
        assert msg.method == "INVITE"
        assert msg.body == b"v=0\n"


def test_malformed_request_line_keeps_headers_for_a_response() -> None:
    data = wire("INVITE sip:a@b.example.com", "Via: SIP/2.0/UDP h;branch=z9hG4bK1", "CSeq: 1 X")
    with pytest.raises(ParseError) as info:
        parse_message(data)
    assert info.value.status == 400
    assert isinstance(info.value.message, Request)
    assert info.value.message.via.host == "h"


def test_request_uri_in_angle_brackets_is_rejected() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(wire("INVITE <sip:a@b.example.com> SIP/2.0", "Via: SIP/2.0/UDP h"))
    assert info.value.status == 400
    assert isinstance(info.value.message, Request)


def test_request_uri_with_embedded_lws_is_rejected() -> None:
    with pytest.raises(ParseError):
        parse_message(wire("INVITE sip:a b@example.com SIP/2.0", "Via: SIP/2.0/UDP h"))


def test_non_sip_protocol_is_rejected() -> None:
    with pytest.raises(ParseError):
        parse_message(wire("GET /index.html HTTP/1.1", "Host: example.com"))


def test_header_without_colon_is_rejected() -> None:
    with pytest.raises(ParseError):
        parse_message(wire("OPTIONS sip:a@example.com SIP/2.0", "Via SIP/2.0/UDP h"))
    with pytest.raises(ParseError):
        parse_message(wire("OPTIONS sip:a@example.com SIP/2.0", ": no name"))


def test_bare_lf_message_is_tolerated() -> None:
    data = INVITE.replace(b"\r\n", b"\n")
    msg = parse_message(data)
    assert isinstance(msg, Request)
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert msg.body == b"v=0\n"


def test_message_without_blank_line_is_tolerated() -> None:
    msg = parse_message(b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCSeq: 1 X")
    assert isinstance(msg, Request)
    assert msg.get("cseq") == "1 X"
    assert msg.body == b""


def test_body_bytes_survive_untouched() -> None:
    body = "--b\r\nContent-Type: x\n\n\x00\xff\xfe\r\n--b--".encode("latin-1")
    raw = wire("MESSAGE sip:a@example.com SIP/2.0", f"Content-Length: {len(body)}")
    msg = parse_message(raw + body)
    assert msg.body == body
    assert parse_message(msg.to_bytes()).body == body


def test_non_utf8_header_bytes_round_trip() -> None:
    raw = b"OPTIONS sip:a@example.com SIP/2.0\r\nSubject: caf\xe9 \xff\r\nContent-Length: 0\r\n\r\n"
    msg = parse_message(raw)
    assert msg.to_bytes() == raw


# -- header names, compact forms, value lists, folding, whitespace -------------------------


def test_header_names_are_case_insensitive() -> None:
    msg = bare(
        "OPTIONS sip:a@example.com SIP/2.0",
        "vIA: SIP/2.0/UDP h;branch=z9hG4bK1",
        "CALL-ID: abc",
        "cseq: 2 OPTIONS",
        "fRoM: <sip:x@example.com>;tag=1",
        "tO: <sip:a@example.com>",
    )
    assert msg.call_id == "abc"
    assert msg.cseq.number == 2
    assert msg.from_.tag == "1"
    assert msg.via.host == "h"
    assert msg.get("call-id") == "abc"
    # The spelling received is what goes back on the wire.
    assert b"\r\nCALL-ID: abc\r\n" in msg.to_bytes()
    assert b"\r\nvIA: SIP/2.0/UDP h;branch=z9hG4bK1\r\n" in msg.to_bytes()


COMPACT_FORMS = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "f": "from",
    "t": "to",
    "v": "via",
    "k": "supported",
    "c": "content-type",
    "s": "subject",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "u": "allow-events",
    "x": "session-expires",
    "y": "identity",
    "a": "accept-contact",
    "j": "reject-contact",
}


@pytest.mark.parametrize(("short", "long"), sorted(COMPACT_FORMS.items()))
def test_compact_forms(short: str, long: str) -> None:
    assert COMPACT[short] == long
    assert header_key(short) == long
    assert header_key(short.upper()) == long
    assert header_key(f"{short} ") == long
    value = "0" if long == "content-length" else "val"
    msg = parse_message(wire("OPTIONS sip:a@example.com SIP/2.0", f"{short.upper()}: {value}"))
    assert msg.get(long) == value
    assert msg.headers[0] == (long, short.upper(), value)


def test_compact_headers_give_typed_values() -> None:
    msg = bare(
        "INVITE sip:a@example.com SIP/2.0",
        "v: SIP/2.0/TCP h:5061;branch=z9hG4bKc",
        "i: compact-call",
        "f: <sip:x@example.com>;tag=ft",
        "t: <sip:a@example.com>",
        "CSeq: 1 INVITE",
        "m: <sip:x@192.0.2.9>",
        "c: application/sdp",
        "l: 0",
    )
    assert msg.via.transport == "TCP"
    assert msg.via.port == 5061
    assert msg.call_id == "compact-call"
    assert msg.from_.tag == "ft"
    assert msg.to.uri.matches(SipURI("example.com", "a"))
    assert msg.contacts[0].sip_uri.host == "192.0.2.9"
    assert msg.content_type == "application/sdp"
    assert msg.content_length == 0
    msg.check()


def test_unknown_header_name_key_is_lower_case() -> None:
    assert header_key("X-Custom-Thing") == "x-custom-thing"
    assert header_key("  Via ") == "via"


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("a", ["a"]),
        ("a, b ,c", ["a", "b", "c"]),
        (
            '"Doe, John" <sip:j@example.com>, <sip:k@example.com>',
            ['"Doe, John" <sip:j@example.com>', "<sip:k@example.com>"],
        ),
        (
            "<sip:a@example.com;x=1,2>;q=0.5, sip:b@example.com",
            ["<sip:a@example.com;x=1,2>;q=0.5", "sip:b@example.com"],
        ),
        ('"a \\" , b" <sip:x@y>, <sip:z@w>', ['"a \\" , b" <sip:x@y>', "<sip:z@w>"]),
        ('"x" <sip:a@b>;p="1,2", <sip:c@d>', ['"x" <sip:a@b>;p="1,2"', "<sip:c@d>"]),
    ],
)
def test_split_values_respects_quotes_and_angle_brackets(value: str, parts: list[str]) -> None:
    assert split_values(value) == parts


def test_split_values_unterminated_quote() -> None:
    with pytest.raises(ParseError):
        split_values('"open, <sip:a@b>')


def test_get_all_joins_lines_and_splits_commas() -> None:
    msg = request(
        "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        "Route: <sip:p3.example.com;lr>",
    )
    assert msg.get_all("route") == [
        "<sip:p1.example.com;lr>",
        "<sip:p2.example.com;lr>",
        "<sip:p3.example.com;lr>",
    ]
    assert [r.sip_uri.host for r in msg.routes] == [
        "p1.example.com",
        "p2.example.com",
        "p3.example.com",
    ]
    assert all("lr" in r.sip_uri.params for r in msg.routes)


def test_folded_lines_are_unfolded() -> None:
    msg = bare(
        "OPTIONS sip:a@example.com SIP/2.0",
        "Subject: I know you're there,",
        "   pick up the phone",
        "\tand talk to me!",
        "Via: SIP/2.0/UDP",
        " h.example.com",
        " ;branch=z9hG4bKf",
    )
    assert msg.get("subject") == "I know you're there, pick up the phone and talk to me!"
    assert msg.via.host == "h.example.com"
    assert msg.via.branch == "z9hG4bKf"
    out = msg.to_bytes()
    assert b"Subject: I know you're there, pick up the phone and talk to me!\r\n" in out


def test_folded_empty_first_line() -> None:
    msg = bare("OPTIONS sip:a@example.com SIP/2.0", "To:", " <sip:a@example.com>;tag=1")
    assert msg.get("to") == "<sip:a@example.com>;tag=1"
    assert msg.to.tag == "1"


def test_whitespace_allowed_by_rfc3261_section25() -> None:
    msg = bare(
        "INVITE sip:a@example.com SIP/2.0",
        "Via  : SIP  /   2.0 /UDP host.example.com ;  branch = z9hG4bKw ; rport",
        "Via\t:\tSIP/2.0/TCP other.example.com : 5070 ;received= 192.0.2.4",
        "To :   <sip:a@example.com>  ;  tag  =  t1  ",
        'From:"Quoted \\"Name\\""<sip:b@example.com>;tag=f1',
        "Call-ID   :   x1",
        "CSeq :  0009 \t INVITE",
        "Max-Forwards :   0068",
        "Contact: <sip:b@192.0.2.2> ; q = 0.33 ; expires = 60",
    )
    via = msg.vias[0]
    assert (via.transport, via.host, via.port, via.branch) == (
        "UDP",
        "host.example.com",
        None,
        "z9hG4bKw",
    )
    assert "rport" in via.params
    assert msg.vias[1].host == "other.example.com"
    assert msg.vias[1].port == 5070
    assert msg.vias[1].received == "192.0.2.4"
    assert msg.to.tag == "t1"
    assert msg.from_.display == 'Quoted "Name"'
    assert msg.call_id == "x1"
    assert (msg.cseq.number, msg.cseq.method) == (9, "INVITE")
    assert msg.max_forwards == 68
    assert msg.contacts[0].q == pytest.approx(0.33)
    assert msg.contacts[0].expires == 60
    msg.check()


# -- serialization ---------------------------------------------------------------------------


def test_header_order_and_unknown_headers_preserved() -> None:
    raw = wire(
        "OPTIONS sip:a@example.com SIP/2.0",
        "X-First: 1",
        "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
        "P-Weird-Header: ;;,,;;,;",
        "Via: SIP/2.0/UDP h2;branch=z9hG4bK2",
        "x-lower: keep me",
        "Content-Length: 0",
    )
    msg = parse_message(raw)
    assert msg.to_bytes() == raw
    assert [h[1] for h in msg] == [
        "X-First",
        "Via",
        "P-Weird-Header",
        "Via",
        "x-lower",
        "Content-Length",
    ]
    assert msg.get("p-weird-header") == ";;,,;;,;"


def test_content_length_recomputed_on_serialize() -> None:
    msg = request(body="")
    msg.body = b"hello"
    out = msg.to_bytes()
    assert b"\r\nContent-Length: 5\r\n\r\nhello" in out
    assert out.endswith(b"\r\n\r\nhello")
    again = parse_message(out)
    assert again.body == b"hello"
    assert again.content_length == 5


def test_content_length_added_when_missing() -> None:
    msg = make_request("OPTIONS", "sip:a@example.com", [("Via", "SIP/2.0/UDP h")], b"xy")
    out = msg.to_bytes()
    assert (
        out == b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
        b"Content-Length: 2\r\n\r\nxy"
    )
    assert bytes(msg) == out


def test_compact_content_length_rewritten_and_duplicates_dropped() -> None:
    msg = parse_message(
        wire("OPTIONS sip:a@example.com SIP/2.0", "l: 2", "Content-Length: 2", body="ab")
    )
    msg.body = b"abcd"
    out = msg.to_bytes()
    assert out.count(b"Content-Length") == 0
    assert b"\r\nl: 4\r\n" in out
    assert parse_message(out).body == b"abcd"


def test_response_serializes_start_line() -> None:
    resp = Response(404, "Not Found", [("call-id", "Call-ID", "x")])
    assert resp.to_bytes() == b"SIP/2.0 404 Not Found\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"
    assert repr(resp) == "<Response 404 Not Found>"


def test_request_with_uri_object() -> None:
    req = Request("OPTIONS", SipURI("example.com", "bob", 5070))
    assert req.start_line() == "OPTIONS sip:bob@example.com:5070 SIP/2.0"
    req.uri = TelURI("+15551234")
    assert req.uri_text == "tel:+15551234"
    assert req.start_line() == "OPTIONS tel:+15551234 SIP/2.0"
    assert "OPTIONS tel:+15551234" in repr(req)


# -- UDP (datagram) Content-Length rules -----------------------------------------------------


def test_udp_octets_past_content_length_are_dropped() -> None:
    msg = parse_message(
        wire("OPTIONS sip:a@example.com SIP/2.0", "Content-Length: 3", body="abcdef")
    )
    assert msg.body == b"abc"


def test_udp_content_length_zero_drops_trailing_message() -> None:
    second = wire("INVITE sip:j@example.com SIP/2.0", "Content-Length: 0")
    msg = parse_message(wire("REGISTER sip:example.com SIP/2.0", "Content-Length: 0") + second)
    assert isinstance(msg, Request)
    assert msg.method == "REGISTER"
    assert msg.body == b""


def test_udp_content_length_beyond_data_is_400() -> None:
    data = wire("INVITE sip:a@example.com SIP/2.0", "Content-Length: 10", body="abc")
    with pytest.raises(ParseError) as info:
        parse_message(data)
    assert info.value.status == 400
    assert isinstance(info.value.message, Request)
    # Over a stream the framer guarantees the length; the parser does not insist.
    assert parse_message(data, datagram=False).body == b"abc"


def test_udp_without_content_length_takes_the_rest() -> None:
    data = wire("MESSAGE sip:a@example.com SIP/2.0", "Via: SIP/2.0/UDP h", body="hello")
    assert parse_message(data).body == b"hello"


@pytest.mark.parametrize("value", ["-1", "abc", "", "1.5", "99999999999", "\u00b2", "0x10"])
def test_bad_content_length(value: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(wire("OPTIONS sip:a@example.com SIP/2.0", f"Content-Length: {value}"))
    assert info.value.status == 400
    assert isinstance(info.value.message, Request)


def test_conflicting_content_lengths() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(
            wire("OPTIONS sip:a@example.com SIP/2.0", "Content-Length: 1", "l: 2", body="ab")
        )
    assert info.value.status == 400
    # Repeating the same value is not a conflict.
    msg = parse_message(
        wire("OPTIONS sip:a@example.com SIP/2.0", "Content-Length: 2", "l: 2", body="ab")
    )
    assert msg.body == b"ab"


def test_max_size() -> None:
    parse_message(INVITE, max_size=len(INVITE))
    with pytest.raises(ParseError) as info:
        parse_message(INVITE, max_size=len(INVITE) - 1)
    assert info.value.status == 513


# -- typed access -----------------------------------------------------------------------------


def test_via_fields() -> None:
    msg = request(
        "Via: SIP/2.0/TLS proxy.example.com:5061;branch=z9hG4bK-2;received=198.51.100.1"
        ";rport=40000;maddr=224.0.0.1;ttl=1, sip/2.0/ws abc.invalid;branch=z9hG4bK-3;rport",
        "v: SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK-4",
    )
    vias = msg.vias
    assert len(vias) == 4
    top = msg.via
    assert top is vias[0]
    assert (top.transport, top.host, top.port) == ("UDP", "192.0.2.1", 5060)
    assert top.branch == "z9hG4bKabc"
    assert top.rfc3261_branch
    second = vias[1]
    assert (second.transport, second.host, second.port) == ("TLS", "proxy.example.com", 5061)
    assert second.received == "198.51.100.1"
    assert second.rport == 40000
    assert second.maddr == "224.0.0.1"
    assert second.params["ttl"] == "1"
    third = vias[2]
    assert third.transport == "WS"
    assert third.port is None
    assert third.rport is None
    assert "rport" in third.params
    assert third.params["rport"] is None
    assert third.received is None
    assert third.maddr is None
    fourth = vias[3]
    assert fourth.host == "[2001:db8::1]"
    assert fourth.host_key == "2001:db8::1"
    assert fourth.port == 5070
    assert str(fourth) == "SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK-4"


def test_via_without_rport_and_branch() -> None:
    msg = bare("OPTIONS sip:a@example.com SIP/2.0", "Via: SIP/2.0/UDP h")
    assert msg.via.rport is None
    assert "rport" not in msg.via.params
    assert msg.via.branch is None
    assert not msg.via.rfc3261_branch


@pytest.mark.parametrize(
    "value",
    [
        "SIP/2.0/UDP",
        "SIP/2.0/UDP h x",
        "SIP/3.0/UDP h",
        "HTTP/2.0/UDP h",
        "SIP/2.0 h",
        "SIP/2.0/UDP h:99999",
        "SIP/2.0/UDP h:abc",
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDP [::1]x",
        "SIP/2.0/UDP :5060",
        "SIP/2.0/UDP h;;branch=z9hG4bK1",
        "SIP/2.0/UDP h;branch=z9hG4bK1,",
        "SIP/2.0/UDP h;branch=z9hG4bK1,,SIP/2.0/UDP g",
    ],
)
def test_bad_via(value: str) -> None:
    msg = bare("OPTIONS sip:a@example.com SIP/2.0", f"Via: {value}")
    with pytest.raises(ParseError) as info:
        _ = msg.vias
    assert info.value.status == 400


def test_missing_via() -> None:
    msg = bare("OPTIONS sip:a@example.com SIP/2.0")
    assert msg.vias == []
    with pytest.raises(ParseError):
        _ = msg.via


def test_from_to_addresses() -> None:
    msg = parse_message(INVITE)
    assert msg.from_.display == "Alice A."
    assert msg.from_.tag == "1928301774"
    assert isinstance(msg.from_.uri, SipURI)
    assert msg.from_.sip_uri.user == "alice"
    assert msg.to.display == "Bob"
    assert msg.to.tag is None
    assert msg.to.sip_uri.aor == "sip:bob@biloxi.example.com"
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert (msg.cseq.number, msg.cseq.method) == (314159, "INVITE")
    assert str(msg.cseq) == "314159 INVITE"
    assert msg.max_forwards == 70


def test_addr_spec_from_and_to() -> None:
    msg = bare(
        "OPTIONS sip:a@example.com SIP/2.0",
        "From: sip:caller@example.net;tag=141334",
        "To: sip:a@example.com",
    )
    assert msg.from_.tag == "141334"
    assert msg.from_.display is None
    assert msg.from_.sip_uri.params == {}
    assert msg.to.tag is None


def test_missing_typed_headers() -> None:
    msg = bare("OPTIONS sip:a@example.com SIP/2.0", "Via: SIP/2.0/UDP h")
    for attr in ("from_", "to", "call_id", "cseq"):
        with pytest.raises(ParseError):
            getattr(msg, attr)
    assert msg.max_forwards is None
    assert msg.content_length is None
    assert msg.content_type is None
    assert msg.expires is None
    assert msg.contacts == []
    assert msg.routes == []
    assert msg.record_routes == []


def test_contacts() -> None:
    msg = request(
        'Contact: "Mr. Watson" <sip:watson@worcester.bell-telephone.com>;q=0.7;expires=3600,'
        ' "Mr. Watson" <mailto:watson@bell-telephone.com>;q=0.1',
        "m: sip:plain@192.0.2.7:5080;expires=0",
    )
    contacts = msg.contacts
    assert len(contacts) == 3
    assert contacts[0].display == "Mr. Watson"
    assert contacts[0].q == pytest.approx(0.7)
    assert contacts[0].expires == 3600
    assert contacts[1].uri.scheme == "mailto"
    assert contacts[1].q == pytest.approx(0.1)
    assert contacts[1].expires is None
    with pytest.raises(ParseError):
        _ = contacts[1].sip_uri
    assert contacts[2].sip_uri.port == 5080
    assert contacts[2].expires == 0
    assert contacts[2].q == 1.0


def test_star_contact() -> None:
    msg = request("Contact: *", "Expires: 0", method="REGISTER")
    (star,) = msg.contacts
    assert isinstance(star, StarContact)
    assert str(star) == "*"
    assert msg.expires == 0


@pytest.mark.parametrize(
    ("param", "ok"),
    [
        ("q=0", True),
        ("q=1", True),
        ("q=1.000", True),
        ("q=0.5", True),
        ("q=abc", False),
        ("q=1.5", False),
        ("q=-0.1", False),
        ("q=nan", False),
        ("q=inf", False),
    ],
)
def test_contact_q_values(param: str, ok: bool) -> None:
    (contact,) = request(f"Contact: <sip:a@example.com>;{param}").contacts
    if ok:
        assert 0.0 <= contact.q <= 1.0
    else:
        with pytest.raises(ParseError):
            _ = contact.q


@pytest.mark.parametrize("value", ["abc", "-1", "\u00b2", "\u0661", "1.5"])
def test_bad_contact_expires(value: str) -> None:
    (contact,) = request(f"Contact: <sip:a@example.com>;expires={value}").contacts
    with pytest.raises(ParseError):
        _ = contact.expires


def test_expires_header() -> None:
    assert request("Expires: 3600").expires == 3600
    assert request("Expires: 99999999999999999999999").expires == 2**32 - 1
    for bad in ("x", "-5", "\u00b2", "\u0663"):
        with pytest.raises(ParseError):
            _ = request(f"Expires: {bad}").expires


def test_rport_with_non_ascii_digit_is_not_a_port() -> None:
    msg = request()
    msg.set("via", "SIP/2.0/UDP h;branch=z9hG4bK1;rport=\u00b2")
    assert msg.via.rport is None


def test_record_routes() -> None:
    msg = request(
        "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr;transport=tcp>",
    )
    rrs = msg.record_routes
    assert [r.sip_uri.host for r in rrs] == ["p2.example.com", "p1.example.com"]
    assert rrs[1].sip_uri.transport == "tcp"


def test_typed_values_are_cached_and_reset_on_edit() -> None:
    msg = request()
    first = msg.vias
    assert msg.vias is first
    msg.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp", first=True)
    assert msg.vias is not first
    assert msg.via.host == "proxy.example.com"


# -- check() ------------------------------------------------------------------------------------


def test_check_passes_on_valid_request() -> None:
    request().check()
    request(method="INVITE").check()
    msg = bare(  # RFC 2543 style: no Max-Forwards, no magic cookie
        "INVITE sip:a@example.com SIP/2.0",
        "Via: SIP/2.0/UDP h;branch=1",
        "From: sip:b@example.com;tag=1",
        "To: sip:a@example.com",
        "Call-ID: x",
        "CSeq: 1 INVITE",
    )
    msg.check()


REQUIRED = [
    "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
    "From: <sip:b@example.com>;tag=1",
    "To: <sip:a@example.com>",
    "Call-ID: x",
    "CSeq: 1 OPTIONS",
]


@pytest.mark.parametrize("missing", range(len(REQUIRED)))
def test_check_missing_header(missing: int) -> None:
    lines = [line for i, line in enumerate(REQUIRED) if i != missing]
    msg = bare("OPTIONS sip:a@example.com SIP/2.0", *lines)
    with pytest.raises(ParseError) as info:
        msg.check()
    assert info.value.status == 400
    assert info.value.message is msg
    name = REQUIRED[missing].split(":")[0]
    assert name in info.value.reason


@pytest.mark.parametrize(
    "extra",
    [
        "Call-ID: y",
        "CSeq: 2 OPTIONS",
        "From: <sip:c@example.com>;tag=2",
        "t: <sip:d@example.com>",
        "Max-Forwards: 70\r\nMax-Forwards: 69",
        "Content-Length: 0\r\nl: 0",
    ],
)
def test_check_duplicate_single_header(extra: str) -> None:
    msg = bare("OPTIONS sip:a@example.com SIP/2.0", *REQUIRED, *extra.split("\r\n"))
    with pytest.raises(ParseError) as info:
        msg.check()
    assert info.value.status == 400
    assert "Multiple" in info.value.reason


def test_check_cseq_method_mismatch_known_method_400() -> None:
    msg = request()
    msg.set("cseq", "1 INVITE")
    with pytest.raises(ParseError) as info:
        msg.check()
    assert info.value.status == 400
    assert not isinstance(info.value, NotImplementedMethod)


def test_check_cseq_method_mismatch_unknown_method_501() -> None:
    msg = bare("NEWMETHOD sip:a@example.com SIP/2.0", *REQUIRED[:4], "CSeq: 1 INVITE")
    with pytest.raises(NotImplementedMethod) as info:
        msg.check()
    assert info.value.status == 501


def test_check_unknown_method_with_matching_cseq_is_fine() -> None:
    bare("NEWMETHOD sip:a@example.com SIP/2.0", *REQUIRED[:4], "CSeq: 1 NEWMETHOD").check()


def test_check_method_is_case_sensitive() -> None:
    msg = bare("invite sip:a@example.com SIP/2.0", *REQUIRED[:4], "CSeq: 1 INVITE")
    with pytest.raises(ParseError) as info:
        msg.check()
    assert info.value.status == 501


def test_check_version_505() -> None:
    msg = bare("OPTIONS sip:a@example.com SIP/7.0", *REQUIRED)
    with pytest.raises(VersionNotSupported) as info:
        msg.check()
    assert info.value.status == 505
    assert info.value.message is msg


@pytest.mark.parametrize(
    ("cseq", "ok"),
    [
        ("2147483647 OPTIONS", True),
        ("2147483648 OPTIONS", False),
        ("36893488147419103232 OPTIONS", False),
        ("-1 OPTIONS", False),
        ("1", False),
        ("1 OPTIONS extra", False),
        ("x OPTIONS", False),
    ],
)
def test_check_cseq_values(cseq: str, ok: bool) -> None:
    msg = bare("OPTIONS sip:a@example.com SIP/2.0", *REQUIRED[:4], f"CSeq: {cseq}")
    if ok:
        msg.check()
    else:
        with pytest.raises(ParseError) as info:
            msg.check()
        assert info.value.status == 400


@pytest.mark.parametrize("value", ["abc", "-1", "99999999999"])
def test_check_bad_max_forwards(value: str) -> None:
    msg = bare("OPTIONS sip:a@example.com SIP/2.0", *REQUIRED, f"Max-Forwards: {value}")
    with pytest.raises(ParseError) as info:
        msg.check()
    assert info.value.status == 400


def test_check_zero_max_forwards_is_not_the_parsers_business() -> None:
    msg = bare("OPTIONS sip:a@example.com SIP/2.0", *REQUIRED, "Max-Forwards: 0")
    msg.check()
    assert msg.max_forwards == 0


def test_check_bad_request_uri() -> None:
    for uri in ("sip:a@exa mple.com", "sip:", "sip:a@example.com:99999", "sip:[::1"):
        msg = Request("OPTIONS", uri, parse_message(wire("OPTIONS x SIP/2.0", *REQUIRED)).headers)
        with pytest.raises(ParseError) as info:
            msg.check()
        assert info.value.status == 400


def test_check_headers_in_request_uri() -> None:
    msg = bare("OPTIONS sip:a@example.com?Route=%3Csip:x%3E SIP/2.0", *REQUIRED)
    with pytest.raises(ParseError):
        msg.check()


def test_check_unknown_scheme_parses() -> None:
    # 416 is the router's decision; the parser accepts any well-formed URI.
    msg = bare("OPTIONS unknownscheme:unknownstuff SIP/2.0", *REQUIRED)
    msg.check()
    assert msg.uri.scheme == "unknownscheme"


def test_check_bad_from_or_to() -> None:
    for header in ('From: "unterminated <sip:b@example.com>', "To: <sip:a@example.com"):
        lines = [h for h in REQUIRED if h.split(":")[0] != header.split(":")[0]]
        msg = bare("OPTIONS sip:a@example.com SIP/2.0", *lines, header)
        with pytest.raises(ParseError) as info:
            msg.check()
        assert info.value.status == 400


# -- edits ---------------------------------------------------------------------------------


def test_add_first_and_last() -> None:
    msg = request()
    msg.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp", first=True)
    msg.add("Record-Route", "<sip:proxy.example.com;lr>")
    assert msg.headers[0] == ("via", "Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp")
    assert msg.headers[-1] == ("record-route", "Record-Route", "<sip:proxy.example.com;lr>")
    assert [v.host for v in msg.vias] == ["proxy.example.com", "192.0.2.1"]
    out = msg.to_bytes()
    assert out.index(b"proxy.example.com;branch") < out.index(b"192.0.2.1:5060")


def test_set_replaces_every_value_in_place_of_the_first() -> None:
    msg = request("X-A: 1", "Subject: one", "X-A: 2")
    before = [h[0] for h in msg.headers]
    msg.set("x-a", "3")
    assert msg.get_all("x-a") == ["3"]
    assert [h[0] for h in msg.headers] == [k for i, k in enumerate(before) if i != len(before) - 1]
    assert msg.headers[before.index("x-a")] == ("x-a", "X-A", "3")
    msg.set("max-forwards", "69")
    assert msg.max_forwards == 69


def test_set_appends_with_canonical_name() -> None:
    msg = Request("OPTIONS", "sip:a@example.com")
    msg.set("call-id", "abc")
    msg.set("cseq", "1 OPTIONS")
    msg.set("www-authenticate", "Digest x")
    msg.set("max-forwards", "70")
    assert [h[1] for h in msg.headers] == ["Call-ID", "CSeq", "WWW-Authenticate", "Max-Forwards"]
    assert msg.call_id == "abc"


def test_remove() -> None:
    msg = request("Route: <sip:a.example.com;lr>", "X-Y: y", "route: <sip:b.example.com;lr>")
    msg.remove("route")
    assert not msg.has("route")
    assert msg.routes == []
    assert msg.has("x-y")
    msg.remove("nothing-here")


def test_pop_first_with_multi_value_lines() -> None:
    msg = request("Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>", "Route: <sip:p3;lr>")
    assert msg.pop_first("route") == "<sip:p1.example.com;lr>"
    assert msg.get_all("route") == ["<sip:p2.example.com;lr>", "<sip:p3;lr>"]
    assert msg.pop_first("route") == "<sip:p2.example.com;lr>"
    assert msg.pop_first("route") == "<sip:p3;lr>"
    assert msg.pop_first("route") is None
    assert not msg.has("route")


def test_pop_first_via_updates_typed_view() -> None:
    msg = parse_message(
        wire(
            "SIP/2.0 200 OK",
            "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp, SIP/2.0/UDP ua.example.com"
            ";branch=z9hG4bKu;received=192.0.2.9",
            "Via: SIP/2.0/UDP first.example.com;branch=z9hG4bKf",
        )
    )
    assert len(msg.vias) == 3
    top = msg.pop_first("via")
    assert top == "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp"
    assert [v.host for v in msg.vias] == ["ua.example.com", "first.example.com"]
    assert msg.via.received == "192.0.2.9"
    out = msg.to_bytes()
    assert b"proxy.example.com" not in out
    assert b"Via: SIP/2.0/UDP ua.example.com;branch=z9hG4bKu;received=192.0.2.9\r\n" in out


def test_pop_first_keeps_quoted_commas() -> None:
    msg = request('X-List: "a, b" <sip:x@example.com>, <sip:y@example.com>')
    assert msg.pop_first("x-list") == '"a, b" <sip:x@example.com>'
    assert msg.get("x-list") == "<sip:y@example.com>"


# -- response() --------------------------------------------------------------------------------


def test_response_copies_headers() -> None:
    req = request(
        "Via: SIP/2.0/UDP second.example.com;branch=z9hG4bK2",
        "Record-Route: <sip:p.example.com;lr>",
        method="INVITE",
    )
    resp = req.response(200)
    assert isinstance(resp, Response)
    assert (resp.status, resp.reason) == (200, "OK")
    assert [h[0] for h in resp.headers] == ["via", "to", "from", "call-id", "cseq", "via"]
    assert [v.host for v in resp.vias] == ["192.0.2.1", "second.example.com"]
    assert resp.from_.tag == "a1"
    assert resp.call_id == req.call_id
    assert str(resp.cseq) == "1 INVITE"
    assert resp.to.tag
    assert not resp.has("record-route")
    assert not resp.has("max-forwards")
    parsed = parse_message(resp.to_bytes())
    assert isinstance(parsed, Response)
    assert parsed.to.tag == resp.to.tag


def test_response_to_tag_stable_across_retransmissions() -> None:
    first = request(method="INVITE").response(486)
    second = request(method="INVITE").response(486)
    assert first.to.tag == second.to.tag
    assert request(method="INVITE").response(180).to.tag == first.to.tag
    other = request("X: 1", method="INVITE")
    other.set("call-id", "another-call")
    assert other.response(486).to.tag != first.to.tag


def test_response_100_has_no_to_tag() -> None:
    resp = request(method="INVITE").response(100)
    assert resp.reason == "Trying"
    assert resp.to.tag is None
    assert "tag" not in resp.get("to")  # type: ignore[operator]


def test_response_keeps_an_existing_to_tag() -> None:
    req = request()
    req.set("to", "<sip:bob@example.com> ; tag = b77")
    resp = req.response(200, to_tag="other")
    assert resp.to.tag == "b77"
    assert resp.get("to") == "<sip:bob@example.com> ; tag = b77"


def test_response_tag_param_in_uri_is_not_a_to_tag() -> None:
    req = request()
    req.set("to", "<sip:bob@example.com;tag=uriparam>")
    resp = req.response(404)
    assert resp.to.tag is not None
    assert resp.to.tag != "uriparam"


def test_response_explicit_tag_reason_and_headers() -> None:
    resp = request().response(
        299, "Odd", to_tag="t9", headers=[("Allow", "INVITE, ACK"), ("Warning", "399 x")]
    )
    assert (resp.status, resp.reason) == (299, "Odd")
    assert resp.to.tag == "t9"
    assert resp.get("allow") == "INVITE, ACK"
    assert resp.headers[-1] == ("warning", "Warning", "399 x")
    assert request().response(699).reason == "Unknown"


def test_response_to_malformed_request_still_works() -> None:
    data = wire(
        "INVITE <sip:a@example.com> SIP/2.0",
        "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
        "To: <sip:a@example.com>",
        "Call-ID: c",
        "CSeq: 1 INVITE",
    )
    with pytest.raises(ParseError) as info:
        parse_message(data)
    req = info.value.message
    assert isinstance(req, Request)
    resp = req.response(info.value.status, info.value.reason)
    assert resp.status == 400
    assert resp.to.tag
    assert resp.via.branch == "z9hG4bK1"


def test_write_top_via_keeps_the_rest_and_the_cache() -> None:
    request = make_request(
        "OPTIONS",
        "sip:bob@example.com",
        [
            (
                "Via",
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport, "
                "SIP/2.0/TCP p.example;branch=z9hG4bKb",
            ),
            ("Via", "SIP/2.0/UDP q.example;branch=z9hG4bKc"),
            ("Call-ID", "c@x"),
            ("CSeq", "1 OPTIONS"),
        ],
    )
    vias = request.vias
    vias[0].params["received"] = "192.0.2.9"
    vias[0].params["rport"] = "4000"
    request.write_top_via()
    assert request.vias is vias  # no reparse
    wire_text = request.to_bytes().decode()
    assert "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport=4000;received=192.0.2.9, " in wire_text
    again = parse_message(request.to_bytes())
    assert [v.branch for v in again.vias] == ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc"]
    assert again.via.received == "192.0.2.9" and again.via.rport == 4000
