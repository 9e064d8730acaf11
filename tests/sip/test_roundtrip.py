"""Property tests: what we serialize parses back the same; no input crashes the parser."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routr.sip.address import Address, Via, parse_address, parse_via
from routr.sip.errors import ParseError
from routr.sip.framing import StreamFramer
from routr.sip.headers import COMPACT, split_values
from routr.sip.message import (
    KNOWN_METHODS,
    Message,
    Request,
    Response,
    make_request,
    parse_message,
)
from routr.sip.uri import SipURI, parse_uri

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TOKEN_CHARS = ALNUM + "-.!%*_+`'~"

tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
methods = st.one_of(
    st.sampled_from(sorted(KNOWN_METHODS)), st.text(ALNUM + "-_", min_size=1, max_size=10)
)
labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
domains = st.lists(labels, min_size=1, max_size=4).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(
    lambda parts: "[" + ":".join(f"{p:x}" for p in parts) + "]"
)
hosts = st.one_of(domains, ipv4, ipv6)
ports = st.one_of(st.none(), st.integers(0, 65535))
# User parts: unreserved characters and escapes.
users = st.text(ALNUM + "-_.!~*'()&=+$,;?/", min_size=1, max_size=12) | st.builds(
    lambda a, b: f"{a}%{b:02X}", st.text(ALNUM, min_size=1, max_size=5), st.integers(0, 255)
)
uri_params = st.dictionaries(
    st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8),
    st.one_of(st.none(), st.text(ALNUM + "-_.", min_size=1, max_size=8)),
    max_size=3,
)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipURI:
    return SipURI(
        draw(hosts),
        draw(st.one_of(st.none(), users)),
        draw(ports),
        draw(uri_params),
        scheme=draw(st.sampled_from(["sip", "sips"])),
    )


# Display names: any printable text, quoted and escaped by Address.__str__.
displays = st.one_of(
    st.none(),
    st.text(
        st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"),
        min_size=1,
        max_size=15,
    ).filter(lambda s: s.strip() == s and s != ""),
)
header_param_values = st.one_of(
    st.none(),
    tokens,
    st.text(ALNUM + " ,;:<>@=/", min_size=1, max_size=10),  # needs quoting
)
header_params = st.dictionaries(
    st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8),
    header_param_values,
    max_size=3,
)


@st.composite
def addresses(draw: st.DrawFn, tag: bool = True) -> Address:
    params = draw(header_params)
    params.pop("tag", None)  # the random names may spell it; only ``tag=True`` sets one
    if tag:
        params["tag"] = draw(tokens)
    return Address(draw(sip_uris()), draw(displays), params)


@st.composite
def vias(draw: st.DrawFn) -> Via:
    params: dict[str, str | None] = {"branch": "z9hG4bK" + draw(tokens)}
    if draw(st.booleans()):
        params["rport"] = draw(st.one_of(st.none(), st.integers(1, 65535).map(str)))
    if draw(st.booleans()):
        params["received"] = draw(ipv4)
    transport = draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"]))
    return Via(transport, draw(hosts), draw(ports), params)


# Header values of unknown headers: printable text without CR/LF, no edge whitespace.
free_text = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x10FFFF, exclude_categories=("Cs", "Cc")),
    max_size=30,
).map(str.strip)
unknown_names = st.text(ALNUM + "-", min_size=1, max_size=12).map(lambda s: "X-" + s)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    method = draw(methods)
    headers: list[tuple[str, str]] = [
        (draw(st.sampled_from(["Via", "v", "VIA"])), str(v))
        for v in draw(st.lists(vias(), min_size=1, max_size=3))
    ]
    headers += [
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
        (draw(st.sampled_from(["From", "f"])), str(draw(addresses()))),
        (draw(st.sampled_from(["To", "t"])), str(draw(addresses(tag=False)))),
        (draw(st.sampled_from(["Call-ID", "i", "call-id"])), draw(tokens) + "@" + draw(domains)),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
    ]
    for contact in draw(st.lists(addresses(tag=False), max_size=3)):
        headers.append((draw(st.sampled_from(["Contact", "m"])), str(contact)))
    for name, value in draw(st.lists(st.tuples(unknown_names, free_text), max_size=4)):
        headers.append((name, value))
    order = draw(st.permutations(range(len(headers))))
    headers = [headers[i] for i in order]
    body = draw(st.binary(max_size=64))
    if draw(st.booleans()):
        req: Message = make_request(method, draw(sip_uris()), headers, body)
    else:
        status = draw(st.integers(100, 699))
        reason = draw(free_text)
        req = Response(status, reason, make_request("X", "sip:x", headers).headers, body)
    if draw(st.booleans()):
        req.add("Content-Length", str(len(body)), first=draw(st.booleans()))
    return req


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_serialize_then_parse(msg: Message) -> None:
    data = msg.to_bytes()
    parsed = parse_message(data)
    assert type(parsed) is type(msg)
    assert parsed.start_line() == msg.start_line()
    assert parsed.body == msg.body
    original = [h for h in msg.headers if h[0] != "content-length"]
    assert [h for h in parsed.headers if h[0] != "content-length"] == original
    assert parsed.content_length == len(msg.body)
    assert parsed.to_bytes() == data
    # Typed views agree with what was generated.
    assert [str(v) for v in parsed.vias] == [
        str(parse_via(v)) for k, _, value in original if k == "via" for v in split_values(value)
    ]
    assert str(parsed.from_) == msg.get("from")
    assert parsed.to.tag is None
    assert str(parsed.cseq) == msg.get("cseq")
    assert parsed.call_id == msg.get("call-id")
    assert [str(c) for c in parsed.contacts] == msg.get_all("contact")
    if isinstance(parsed, Request):
        assert isinstance(msg, Request)
        assert parsed.method == msg.method
        assert str(parsed.uri) == msg.uri_text
        parsed.check()
    else:
        assert isinstance(parsed, Response) and isinstance(msg, Response)
        assert (parsed.status, parsed.reason) == (msg.status, msg.reason)
    # Over a stream the same bytes frame into exactly this message.
    assert StreamFramer().feed(data + data) == [data, data]


@settings(max_examples=300, deadline=None)
@given(sip_uris())
def test_sip_uri_round_trip(uri: SipURI) -> None:
    text = str(uri)
    again = parse_uri(text)
    assert isinstance(again, SipURI)
    assert (again.scheme, again.user, again.host, again.port, again.params) == (
        uri.scheme,
        uri.user,
        uri.host,
        uri.port,
        uri.params,
    )
    assert str(again) == text
    assert again.matches(uri)
    assert uri.matches(again)


@settings(max_examples=300, deadline=None)
@given(addresses())
def test_address_round_trip(addr: Address) -> None:
    again = parse_address(str(addr))
    assert again.display == addr.display
    assert str(again.uri) == str(addr.uri)
    assert again.params == addr.params
    assert str(again) == str(addr)


@settings(max_examples=300, deadline=None)
@given(vias())
def test_via_round_trip(via: Via) -> None:
    again = parse_via(str(via))
    assert (again.transport, again.host, again.port, again.params) == (
        via.transport,
        via.host,
        via.port,
        via.params,
    )


# -- fuzz: only ParseError may come out -----------------------------------------------------


def exercise(data: bytes) -> None:
    """Everything a server does with an incoming datagram; only ParseError may escape."""
    for datagram in (True, False):
        try:
            msg = parse_message(data, datagram=datagram, max_size=4096)
        except ParseError as exc:
            assert 400 <= exc.status <= 599
            assert exc.message is None or isinstance(exc.message, Message)
            continue
        msg.to_bytes()
        if isinstance(msg, Request):
            try:
                msg.check()
            except ParseError as exc:
                assert 400 <= exc.status <= 599
                assert exc.message is msg
            with contextlib.suppress(ParseError):
                msg.response(400, "Bad Request").to_bytes()
            with contextlib.suppress(ParseError):
                _ = msg.uri
        for attr in (
            "vias",
            "from_",
            "to",
            "cseq",
            "call_id",
            "max_forwards",
            "contacts",
            "routes",
            "record_routes",
            "content_length",
            "expires",
        ):
            with contextlib.suppress(ParseError):
                getattr(msg, attr)
        with contextlib.suppress(ParseError):
            for contact in msg.contacts:
                with contextlib.suppress(ParseError):
                    _ = contact.expires
                with contextlib.suppress(ParseError):
                    _ = contact.q
        with contextlib.suppress(ParseError):
            for via in msg.vias:
                _ = via.rport, via.received, via.branch, via.host_key, str(via)
        with contextlib.suppress(ParseError):
            msg.pop_first("via")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_any_bytes(data: bytes) -> None:
    exercise(data)


SEED = (
    b"INVITE sip:bob@biloxi.example.com;transport=tcp SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK77;rport, SIP/2.0/TCP h:1\r\n"
    b"Max-Forwards: 70\r\n"
    b'To: "Bob" <sip:bob@biloxi.example.com>\r\n'
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>;expires=60;q=0.5, *\r\n"
    b"Route: <sip:p1.example.com;lr>\r\n"
    b"Expires: 30\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)
GRAMMAR = b' \t\r\n:;,<>"\\@[]=/%?&*0SIP2.'


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(SEED) - 1),
            st.integers(0, 3),
            st.binary(min_size=0, max_size=3) | st.sampled_from([bytes([c]) for c in GRAMMAR]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fuzz_mutated_message(edits: list[tuple[int, int, bytes]]) -> None:
    data = bytearray(SEED)
    for pos, drop, insert in edits:
        pos = min(pos, len(data))
        data[pos : pos + drop] = insert
    exercise(bytes(data))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_header_value_parsers(text: str) -> None:
    for parse in (parse_uri, parse_address, parse_via, split_values):
        with contextlib.suppress(ParseError):
            parse(text)


def test_compact_names_never_clash_with_generated_unknown_headers() -> None:
    # Generated unknown header names start with "X-", never a compact form.
    assert all(len(short) == 1 for short in COMPACT)
