"""URIs: sip/sips/tel/absolute parsing, serialization and RFC 3261 §19.1.4 comparison."""

from __future__ import annotations

import pytest

from routr.sip.errors import ParseError
from routr.sip.uri import AbsoluteURI, SipURI, TelURI, parse_uri, unescape


def sip(text: str) -> SipURI:
    uri = parse_uri(text)
    assert isinstance(uri, SipURI)
    return uri


# -- parsing ---------------------------------------------------------------------------------


def test_full_sip_uri() -> None:
    uri = sip(
        "sip:alice:secretword@atlanta.com:5070;transport=TCP;lr;maddr=239.255.255.1"
        "?subject=project%20x&priority=urgent"
    )
    assert uri.scheme == "sip"
    assert uri.user == "alice"
    assert uri.password == "secretword"
    assert uri.host == "atlanta.com"
    assert uri.port == 5070
    assert uri.params == {"transport": "TCP", "lr": None, "maddr": "239.255.255.1"}
    assert uri.transport == "tcp"
    assert uri.headers == "subject=project%20x&priority=urgent"
    assert str(uri) == (
        "sip:alice:secretword@atlanta.com:5070;transport=TCP;lr;maddr=239.255.255.1"
        "?subject=project%20x&priority=urgent"
    )


@pytest.mark.parametrize(
    ("text", "user", "host", "port"),
    [
        ("sip:atlanta.com", None, "atlanta.com", None),
        ("sip:alice@atlanta.com", "alice", "atlanta.com", None),
        ("sips:alice@atlanta.com:5061", "alice", "atlanta.com", 5061),
        ("sip:+1-212-555-1212:1234@gateway.com;user=phone", "+1-212-555-1212", "gateway.com", None),
        ("sip:alice@192.0.2.4", "alice", "192.0.2.4", None),
        ("sip:host.example.com:0", None, "host.example.com", 0),
        ("sip:host.example.com:65535", None, "host.example.com", 65535),
        ("sip:[2001:db8::10]", None, "[2001:db8::10]", None),
        ("sip:user@[2001:db8::10]:5070;transport=tcp", "user", "[2001:db8::10]", 5070),
        ("sip:[2001:db8::10:5070]", None, "[2001:db8::10:5070]", None),
        ("sip:[::ffff:192.0.2.1]:5060", None, "[::ffff:192.0.2.1]", 5060),
        ("sip:[2001:db8:::192.0.2.1]", None, "[2001:db8:::192.0.2.1]", None),
        (
            "sip:user;par=u%40example.net@example.com",
            "user;par=u%40example.net",
            "example.com",
            None,
        ),
        (
            "sip:sips%3Auser%40example.com@example.net",
            "sips%3Auser%40example.com",
            "example.net",
            None,
        ),
        ("SIP:ALICE@AtLanTa.CoM", "ALICE", "AtLanTa.CoM", None),
    ],
)
def test_sip_uri_parts(text: str, user: str | None, host: str, port: int | None) -> None:
    uri = sip(text)
    assert (uri.user, uri.host, uri.port) == (user, host, port)
    # Serialization keeps everything but the scheme's case.
    assert str(uri) == uri.scheme + text[text.index(":") :]


def test_scheme_lower_cased() -> None:
    assert sip("SIP:a@b.example.com").scheme == "sip"
    assert sip("SiPs:a@b.example.com").scheme == "sips"
    assert parse_uri("TEL:+1234").scheme == "tel"
    assert parse_uri("MAILTO:a@b").scheme == "mailto"


def test_password_and_odd_user_characters() -> None:
    uri = sip(
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d"
        "_too.(doesn't-it)@example.com"
    )
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com"
    assert uri.params == {}
    assert uri.headers is None


def test_escaped_characters() -> None:
    uri = sip("sip:sips%3Auser%40example.com@example.net")
    assert uri.user_unescaped == "sips:user@example.com"
    assert str(uri) == "sip:sips%3Auser%40example.com@example.net"
    assert sip("sip:%61lice@atlanta.com").user_unescaped == "alice"
    nul = sip("sip:null-%00-null@example.com")
    assert nul.user_unescaped == "null-\x00-null"
    assert sip("sip:atlanta.com").user_unescaped is None


def test_invalid_escapes_are_literal() -> None:
    assert unescape("%Z%45") == "%ZE"
    assert unescape("100%") == "100%"
    assert unescape("plain") == "plain"
    assert sip("sip:%Zuser@example.com").user_unescaped == "%Zuser"


def test_aor_and_host_key() -> None:
    assert sip("sip:Alice@AtLanTa.com:5060;transport=tcp").aor == "sip:Alice@atlanta.com"
    assert sip("sip:%61lice@example.com").aor == "sip:alice@example.com"
    assert sip("sip:Example.COM").aor == "sip:example.com"
    assert sip("sip:[2001:DB8::1]:5060").host_key == "2001:db8::1"
    assert sip("sip:Example.COM").host_key == "example.com"


def test_params_case_and_flags() -> None:
    uri = sip("sip:a@example.com;Transport=UDP;LR;User=Phone;x=")
    assert uri.params == {"transport": "UDP", "lr": None, "user": "Phone", "x": ""}
    assert uri.transport == "udp"
    assert sip("sip:a@example.com").transport is None


def test_copy_is_independent() -> None:
    uri = sip("sips:u:p@example.com:5061;lr?h=v")
    dup = uri.copy()
    assert str(dup) == str(uri)
    assert dup.scheme == "sips"
    dup.params["x"] = "1"
    dup.port = 1
    assert "x" not in uri.params
    assert uri.port == 5061


def test_build_sip_uri() -> None:
    assert str(SipURI("example.com")) == "sip:example.com"
    uri = SipURI("gw.example.com", "1001", 5080, {"transport": "tcp"}, scheme="sips")
    assert str(uri) == "sips:1001@gw.example.com:5080;transport=tcp"
    assert repr(uri) == "<SipURI sips:1001@gw.example.com:5080;transport=tcp>"


def test_tel_uri() -> None:
    uri = parse_uri("tel:+1-201-555-0123;phone-context=example.com;ext=12")
    assert isinstance(uri, TelURI)
    assert uri.number == "+1-201-555-0123"
    assert uri.digits == "+12015550123"
    assert uri.params == {"phone-context": "example.com", "ext": "12"}
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com;ext=12"
    assert str(parse_uri("tel:911")) == "tel:911"


def test_tel_matches_ignores_visual_separators() -> None:
    assert parse_uri("tel:+1-201-555-0123").matches(parse_uri("tel:+1.201.555.0123"))
    assert parse_uri("tel:+1(201)5550123").matches(parse_uri("tel:+12015550123"))
    assert not parse_uri("tel:+12015550123").matches(parse_uri("tel:+12015550124"))
    assert not parse_uri("tel:+12015550123").matches(parse_uri("sip:+12015550123@x.com"))


@pytest.mark.parametrize(
    ("text", "scheme", "opaque"),
    [
        ("mailto:watson@bell-telephone.com", "mailto", "watson@bell-telephone.com"),
        ("http://www.example.com/a?b=c", "http", "//www.example.com/a?b=c"),
        ("unknownscheme:unknownstuff", "unknownscheme", "unknownstuff"),
        ("soap.beep://192.0.2.103:3002", "soap.beep", "//192.0.2.103:3002"),
        (
            "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            "urn",
            "uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        ),
    ],
)
def test_absolute_uri(text: str, scheme: str, opaque: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteURI)
    assert (uri.scheme, uri.opaque) == (scheme, opaque)
    assert str(uri) == text
    assert uri.matches(parse_uri(text))
    assert not uri.matches(parse_uri("sip:a@example.com"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip",
        "sip:",
        ":foo",
        "sips:",
        "tel:",
        "tel:;x=1",
        "1abc:foo",
        "ab$c:foo",
        "sip:user@",
        "sip:@",
        "sip:a b@example.com",
        "sip:a@exa mple.com",
        "sip:a@example.com\t",
        "sip:a@example.com:",
        "sip:a@example.com:65536",
        "sip:a@example.com:999999",
        "sip:a@example.com:-1",
        "sip:a@example.com:50x0",
        "sip:a@example.com:+80",
        "sip:a@example.com:\u0661\u0662",
        "sip:a@example.com:5060:5060",
        "sip:a@exa<mple.com",
        "sip:a@example.com;;lr",
        "sip:a@example.com;lr;;x",
        "sip:2001:db8::10",
        "sip:[2001:db8::10",
        "sip:[2001:db8::10]5060",
        "sip:[2001:db8::10]:",
        "sip:[2001:db8::10]:http",
        "sip:[]",
        "sip:[hello]",
        "sip:a@b.example.com:99999;transport=tcp",
    ],
)
def test_bad_uris(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_uri(text)
    assert info.value.status == 400


# -- RFC 3261 §19.1.4 comparison --------------------------------------------------------------

# The RFC's own sets of equivalent URIs: every pair within a set matches.
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
    # Equality is not transitive: each of these matches the bare URI.
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=off"),
]

# The RFC's non-equivalent pairs.
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_rfc3261_equivalent(a: str, b: str) -> None:
    assert parse_uri(a).matches(parse_uri(b))
    assert parse_uri(b).matches(parse_uri(a))


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_rfc3261_not_equivalent(a: str, b: str) -> None:
    assert not parse_uri(a).matches(parse_uri(b))
    assert not parse_uri(b).matches(parse_uri(a))


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("sip:alice@atlanta.com", "sips:alice@atlanta.com", False),
        ("sip:alice:pw@atlanta.com", "sip:alice@atlanta.com", False),
        ("sip:alice:pw@atlanta.com", "sip:alice:PW@atlanta.com", False),
        ("sip:alice:p%77@atlanta.com", "sip:alice:pw@atlanta.com", True),
        ("sip:Alice@atlanta.com", "sip:alice@atlanta.com", False),
        ("sip:atlanta.com", "sip:alice@atlanta.com", False),
        ("sip:a@[2001:DB8::1]", "sip:a@[2001:db8::1]", True),
        ("sip:a@h;user=phone", "sip:a@h", False),
        ("sip:a@h;ttl=1", "sip:a@h;ttl=2", False),
        ("sip:a@h;method=INVITE", "sip:a@h", False),
        ("sip:a@h;maddr=239.255.255.1", "sip:a@h;maddr=239.255.255.1", True),
        ("sip:a@h;maddr=239.255.255.1", "sip:a@h", False),
        ("sip:a@h;lr", "sip:a@h", True),
        ("sip:a@h;x=1", "sip:a@h;x=2", False),
        ("sip:a@h;x=ABC", "sip:a@h;X=abc", True),
        ("sip:a@h;transport=%74cp", "sip:a@h;transport=tcp", True),
        ("sip:a@h?Subject=x", "sip:a@h?subject=x", True),
        ("sip:a@h?subject=x", "sip:a@h?subject=y", False),
        ("sip:a@h?a=1", "sip:a@h?a=1&b=2", False),
        ("sip:a@h", "tel:+1234", False),
        ("sip:a@h", "mailto:a@h", False),
    ],
)
def test_matches_more(a: str, b: str, equal: bool) -> None:
    assert parse_uri(a).matches(parse_uri(b)) is equal
    assert parse_uri(b).matches(parse_uri(a)) is equal
