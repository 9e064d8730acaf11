"""Typed header values: name-addr / addr-spec, Via and CSeq; header parameter helpers."""

from __future__ import annotations

import pytest

from routr.sip.address import (
    MAGIC_COOKIE,
    Address,
    CSeq,
    StarContact,
    Via,
    parse_address,
    parse_cseq,
    parse_via,
)
from routr.sip.errors import ParseError
from routr.sip.headers import (
    canonical_name,
    format_params,
    parse_params,
    parse_uint,
    quote,
    quoted_end,
    split_values,
    unquote,
)
from routr.sip.uri import AbsoluteURI, SipURI, TelURI, parse_uri

# -- name-addr / addr-spec ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        ("<sip:a@example.com>", None, "sip:a@example.com", {}),
        ("sip:a@example.com", None, "sip:a@example.com", {}),
        ("sip:a@example.com;tag=1", None, "sip:a@example.com", {"tag": "1"}),
        (
            "<sip:a@example.com;transport=tcp>;tag=1",
            None,
            "sip:a@example.com;transport=tcp",
            {"tag": "1"},
        ),
        ('"Alice" <sip:a@example.com>;tag=x', "Alice", "sip:a@example.com", {"tag": "x"}),
        ('"Alice"<sip:a@example.com>', "Alice", "sip:a@example.com", {}),
        ("Bob <sip:b@example.com>", "Bob", "sip:b@example.com", {}),
        ("Bob Smith<sip:b@example.com>", "Bob Smith", "sip:b@example.com", {}),
        (
            '"J Rosenberg \\\\\\"" <sip:jdrosen@example.com> ; tag = 98asjd8',
            'J Rosenberg \\"',
            "sip:jdrosen@example.com",
            {"tag": "98asjd8"},
        ),
        (
            '"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam = newvalue ; '
            "secondparam ; q = 0.33",
            'Quoted string ""',
            "sip:jdrosen@example.com",
            {"newparam": "newvalue", "secondparam": None, "q": "0.33"},
        ),
        ('"<sip:not@uri>" <sip:real@example.com>', "<sip:not@uri>", "sip:real@example.com", {}),
        ('"a;b,c" <sip:x@example.com>', "a;b,c", "sip:x@example.com", {}),
        (
            "Watson, Thomas <sip:t.watson@example.org>",
            "Watson, Thomas",
            "sip:t.watson@example.org",
            {},
        ),
        (
            "<mailto:watson@bell-telephone.com>;q=0.1",
            None,
            "mailto:watson@bell-telephone.com",
            {"q": "0.1"},
        ),
        ("<tel:+1-201-555-0123>;tag=t", None, "tel:+1-201-555-0123", {"tag": "t"}),
        (
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            None,
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            {},
        ),
        (
            '<sip:a@example.com>;+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000001>"',
            None,
            "sip:a@example.com",
            {"+sip.instance": "<urn:uuid:00000000-0000-0000-0000-000000000001>"},
        ),
        ('sip:a@example.com;x="<y>"', None, "sip:a@example.com", {"x": "<y>"}),
        ("  <sip:a@example.com>  ", None, "sip:a@example.com", {}),
        ("<sip:a@example.com>;TAG=Abc", None, "sip:a@example.com", {"tag": "Abc"}),
    ],
)
def test_parse_address(
    text: str, display: str | None, uri: str, params: dict[str, str | None]
) -> None:
    addr = parse_address(text)
    assert addr.display == display
    assert str(addr.uri) == uri
    assert addr.params == params
    # What we print parses back to the same thing.
    again = parse_address(str(addr))
    assert again.display == display
    assert str(again.uri) == uri
    assert again.params == params


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        '"unterminated <sip:a@example.com>',
        '"Alice" sip:a@example.com',
        "<sip:a@example.com",
        "<sip:a@example.com> garbage",
        "<sip:a@example.com>;;tag=1",
        "<sip:a@example.com>;=1",
        "<>",
        "<sip:a b@example.com>",
        "sip:a@example.com:70000",
        '<sip:a@example.com>;tag="open',
        "Name <not a uri>",
    ],
)
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_address(text)
    assert info.value.status == 400


def test_address_properties() -> None:
    addr = parse_address('"A" <sip:a@example.com>;tag=t1;expires=60;q=0.5')
    assert addr.tag == "t1"
    assert addr.expires == 60
    assert addr.q == 0.5
    assert isinstance(addr.sip_uri, SipURI)
    plain = parse_address("<sip:a@example.com>")
    assert plain.tag is None
    assert plain.expires is None
    assert plain.q == 1.0
    big = parse_address("<sip:a@example.com>;expires=99999999999999999999")
    assert big.expires == 2**32 - 1
    tel = parse_address("<tel:+1234>")
    assert isinstance(tel.uri, TelURI)
    with pytest.raises(ParseError):
        _ = tel.sip_uri
    assert isinstance(parse_address("<urn:x:y>").uri, AbsoluteURI)


def test_address_str() -> None:
    addr = Address(parse_uri("sip:a@example.com"), 'Al "the" \\ one', {"tag": "1", "lr": None})
    assert str(addr) == '"Al \\"the\\" \\\\ one" <sip:a@example.com>;tag=1;lr'
    assert parse_address(str(addr)).display == 'Al "the" \\ one'
    assert str(Address(SipURI("example.com"))) == "<sip:example.com>"
    assert repr(Address(SipURI("example.com"))) == "<Address <sip:example.com>>"


def test_address_str_quotes_values_that_need_it() -> None:
    addr = parse_address(
        '<sip:a@192.0.2.1>;+sip.instance="<urn:uuid:1>";methods="INVITE, BYE";reg-id=1;ob'
        ";received=[2001:db8::1];expires=30"
    )
    text = str(addr)
    assert text == (
        '<sip:a@192.0.2.1>;+sip.instance="<urn:uuid:1>";methods="INVITE, BYE";reg-id=1;ob'
        ";received=[2001:db8::1];expires=30"
    )
    # In a Contact list the quoted comma must not split the value.
    assert len(split_values(f"{text}, <sip:b@example.com>")) == 2


def test_star_contact() -> None:
    star = StarContact()
    assert str(star) == "*"
    assert star.params == {}
    assert star.expires is None


# -- Via ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "transport", "host", "port", "params"),
    [
        (
            "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
            "UDP",
            "pc33.atlanta.com",
            None,
            {"branch": "z9hG4bK776asdhds"},
        ),
        ("SIP/2.0/tcp h:5060", "TCP", "h", 5060, {}),
        ("SIP/2.0/UNKNOWN h.example.com:1", "UNKNOWN", "h.example.com", 1, {}),
        ("SIP  /   2.0 /UDP host", "UDP", "host", None, {}),
        (
            "SIP / 2.0 / TCP spindle.example.com ; branch = z9hG4bK9ikj8",
            "TCP",
            "spindle.example.com",
            None,
            {"branch": "z9hG4bK9ikj8"},
        ),
        ("sip/2.0/sctp h", "SCTP", "h", None, {}),
        ("SIP/2.0/UDP h : 5060", "UDP", "h", 5060, {}),
        ("SIP/2.0/UDP h:\t5070 ;rport", "UDP", "h", 5070, {"rport": None}),
        (
            "SIP/2.0/UDP [2001:db8::9:1]:5060;received=[2001:db8::9:255]",
            "UDP",
            "[2001:db8::9:1]",
            5060,
            {"received": "[2001:db8::9:255]"},
        ),
        ("SIP/2.0/UDP [2001:db8::9:1] : 5061", "UDP", "[2001:db8::9:1]", 5061, {}),
        (
            "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255",
            "UDP",
            "[2001:db8::9:1]",
            None,
            {"received": "2001:db8::9:255"},
        ),
        (
            "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKb;rport=5060;received=192.0.2.5",
            "WSS",
            "df7jal23ls0d.invalid",
            None,
            {"branch": "z9hG4bKb", "rport": "5060", "received": "192.0.2.5"},
        ),
    ],
)
def test_parse_via(
    text: str, transport: str, host: str, port: int | None, params: dict[str, str | None]
) -> None:
    via = parse_via(text)
    assert (via.transport, via.host, via.port, via.params) == (transport, host, port, params)
    again = parse_via(str(via))
    assert (again.transport, again.host, again.port, again.params) == (
        transport,
        host,
        port,
        params,
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ",
        "SIP/2.0/UDP h 5060",
        "SIP/2.0/UDP h:5060 x",
        "SIP/1.0/UDP h",
        "SIPS/2.0/UDP h",
        "SIP/2.0",
        "SIP/2.0/UDP h:65536",
        "SIP/2.0/UDP h:",
        "SIP/2.0/UDP :",
        "SIP/2.0/UDP [2001:db8::1",
        "SIP/2.0/UDP [2001:db8::1]5060",
        'SIP/2.0/UDP h;branch="x',
        "SIP/2.0/UDP h;;",
        "SIP/2.0/UDP h;=x",
    ],
)
def test_bad_via(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_via(text)
    assert info.value.status == 400


def test_via_properties() -> None:
    via = Via("UDP", "[2001:DB8::1]", 5060, {"branch": MAGIC_COOKIE + "x", "rport": None})
    assert via.rfc3261_branch
    assert via.host_key == "2001:db8::1"
    assert via.rport is None
    assert str(via) == "SIP/2.0/UDP [2001:DB8::1]:5060;branch=z9hG4bKx;rport"
    assert repr(via) == f"<Via {via}>"
    assert not Via("UDP", "h", None, {"branch": MAGIC_COOKIE}).rfc3261_branch
    assert not Via("UDP", "h", None, {"branch": "1234"}).rfc3261_branch
    via.params["rport"] = "40000"
    assert via.rport == 40000
    via.params["rport"] = "junk"
    assert via.rport is None


# -- CSeq -----------------------------------------------------------------------------------------


def test_cseq() -> None:
    cseq = parse_cseq("0009\r\n  INVITE".replace("\r\n", ""))
    assert (cseq.number, cseq.method) == (9, "INVITE")
    assert str(CSeq(1, "ACK")) == "1 ACK"
    assert repr(CSeq(1, "ACK")) == "<CSeq 1 ACK>"
    assert parse_cseq(f"{2**31 - 1} REGISTER").number == 2**31 - 1
    for bad in (
        "",
        "1",
        "INVITE",
        "1 INVITE x",
        f"{2**31} INVITE",
        "-1 INVITE",
        "x INVITE",
        "36893488147419103232 REGISTER",
        "\u0661 INVITE",
    ):
        with pytest.raises(ParseError):
            parse_cseq(bad)


# -- helpers from headers.py --------------------------------------------------------------------


def test_parse_params() -> None:
    assert parse_params("") == {}
    assert parse_params(";a=1;B=Two;flag") == {"a": "1", "b": "Two", "flag": None}
    assert parse_params("a = 1 ;  b") == {"a": "1", "b": None}
    assert parse_params(';x="a;b=c";y=2') == {"x": "a;b=c", "y": "2"}
    assert parse_params(';x="say \\"hi\\""') == {"x": 'say "hi"'}
    for bad in (";;", ";a;;b", ";=1", '"x'):
        with pytest.raises(ParseError):
            parse_params(bad)


def test_format_params() -> None:
    params: dict[str, str | None] = {"lr": None, "x": "a b", "tag": "1", "r": "[::1]"}
    assert format_params(params) == ";lr;x=a b;tag=1;r=[::1]"
    assert format_params(params, header=True) == ';lr;x="a b";tag=1;r=[::1]'
    assert format_params({"e": ""}, header=True) == ";e="
    assert format_params({}) == ""


def test_quote_unquote() -> None:
    for text in ("", "plain", 'a "b" c', "back\\slash", '\\"', "\u00e9t\u00e9"):
        quoted = quote(text)
        assert quoted_end(quoted, 0) == len(quoted) - 1
        assert unquote(quoted) == text
    assert quoted_end('"a\\\\" rest"', 0) == 4
    with pytest.raises(ParseError):
        quoted_end('"a\\"', 0)


def test_parse_uint() -> None:
    assert parse_uint(" 42 ", "X") == 42
    assert parse_uint("0000000001", "X") == 1
    assert parse_uint("65535", "port", 65535) == 65535
    for bad in ("", "-1", "+1", "1.0", "0x1", "\u00b2", "65536"):
        with pytest.raises(ParseError):
            parse_uint(bad, "port", 65535)
    with pytest.raises(ParseError):
        parse_uint("4294967296", "X")


def test_canonical_name() -> None:
    assert canonical_name("call-id") == "Call-ID"
    assert canonical_name("cseq") == "CSeq"
    assert canonical_name("www-authenticate") == "WWW-Authenticate"
    assert canonical_name("record-route") == "Record-Route"
    assert canonical_name("x-dod-number") == "X-Dod-Number"
