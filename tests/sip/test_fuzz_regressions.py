"""Crashes the fuzzers found (``fuzz/``, and the suite's hypothesis runs), one test each,
with the smallest input that showed it."""

from __future__ import annotations

import asyncio
import logging

import pytest
from support.fake_io import FakeIO, FakeSource

from routr.core.identity import Identity
from routr.core.nat import stamp_via
from routr.core.service import SipService
from routr.data.index import Index
from routr.data.secrets import Secrets
from routr.data.snapshot import Snapshot
from routr.location import MemoryStore
from routr.models.config import Config
from routr.sip.errors import ParseError
from routr.sip.message import Request, parse_message
from routr.sip.uri import SipURI, escape_user, parse_uri


def test_escape_user_takes_back_an_escaped_non_utf8_byte() -> None:
    # "%80" unescapes to a lone surrogate; escaping it raised UnicodeEncodeError (reached
    # by the router when it writes a dialled number to a gateway's Request-URI).
    uri = parse_uri("sip:%80@example.org")
    assert isinstance(uri, SipURI) and uri.user_unescaped is not None
    assert escape_user(uri.user_unescaped) == "%80"
    assert escape_user("caf\u00e9 \udcff") == "caf%C3%A9%20%FF"


def _served(data: bytes, caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    """What a whole sans-IO service answers to ``data`` from an untrusted source, after
    checking that it logged no error (its handlers log what they catch)."""
    io = FakeIO(t=1_000.0)
    sip = SipService(
        Config.model_validate({"spec": {"security": {"trusted": []}}}),
        io,
        clock=io.now,
        emit=lambda event: None,
        secrets=Secrets.derive(b"test master", "test"),
        index=lambda: Index(Snapshot.of([])),
        location=MemoryStore(clock=io.now),
        identity=Identity.of({"127.0.0.1"}, {5060}, set()),
    )
    with caplog.at_level(logging.ERROR, logger="routr"):
        sip.on_data(data, FakeSource("10.0.0.5", 5070))
        asyncio.run(io.run_work())
    assert not caplog.records, caplog.text
    return [(r.status, r.reason) for r in io.replies]


def test_a_route_token_with_non_ascii_is_refused_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # hmac.compare_digest raised TypeError on a str with non-ASCII: an in-dialog request
    # with a forged Route to us (r=\xe9) ended in "routing BYE failed" with a traceback.
    bye = (
        "BYE sip:1002@10.0.0.7:5062 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKabc;rport\r\n"
        "Max-Forwards: 70\r\nRoute: <sip:127.0.0.1:5060;lr;r=\xe9\xe9>\r\n"
        "From: <sip:1001@sip.local>;tag=a\r\nTo: <sip:1002@sip.local>;tag=b\r\n"
        "Call-ID: x1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    ).encode("latin-1")
    assert _served(bye, caplog) == [(403, "Route Not Recorded Here")]


EMPTY_CALL_ID = (
    b"OPTIONS sip:user@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP t1.example.com;branch=z9hG4bKkdjuw\r\n"
    b"To: sip:user@example.com\r\nFrom: <sip:caller@example.com>;tag=323\r\n"
    b"Call-ID:\r\nCSeq: 60 OPTIONS\r\nl: 0\r\n\r\n"
)


def test_an_empty_call_id_fails_the_check(caplog: pytest.LogCaptureFixture) -> None:
    # Found by the framing target: check() saw a Call-ID header and let the request
    # through; the proxy's transaction key then raised "Missing Call-ID" inside its task,
    # and nothing was answered.
    request = parse_message(EMPTY_CALL_ID)
    assert isinstance(request, Request)
    with pytest.raises(ParseError, match="Missing Call-ID") as info:
        request.check()
    assert info.value.status == 400 and info.value.message is request
    assert _served(EMPTY_CALL_ID, caplog) == [(400, "Missing Call-ID")]


QUOTED_COMMA_VIA = (
    b"OPTIONS sip:1002@sip.local SIP/2.0\r\n"
    b'Via: SIP/2.0/UDP 10.0.0.9:5070;x="a,b";branch=z9hG4bK1\r\n'
    b"From: <sip:1001@sip.local>;tag=1\r\nTo: <sip:1002@sip.local>\r\n"
    b"Call-ID: q1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def test_a_quoted_comma_in_the_top_via_survives_its_stamp(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Found by the message target: writing the stamped top Via back cut its header at the
    # first comma, quoted or not, which left an unterminated quote behind; the proxy's
    # transaction key then raised inside its task and nothing was answered.
    request = parse_message(QUOTED_COMMA_VIA)
    assert isinstance(request, Request)
    stamp_via(request, "10.0.0.5", 5070)
    request.remove("x-none")  # drops the parsed Vias: read again from the header
    (via,) = request.vias
    assert (via.params["x"], via.received, via.branch) == ("a,b", "10.0.0.5", "z9hG4bK1")
    assert _served(QUOTED_COMMA_VIA, caplog)  # answered, nothing logged


def test_a_bad_proxy_require_is_answered_400(caplog: pytest.LogCaptureFixture) -> None:
    # Found by the message target: Proxy-Require is first read by the dispatcher, after
    # check(); an unterminated quote in it raised out of on_data (the transport logs that
    # as "handler failed" with a traceback) and nothing was answered.
    options = (
        b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK2\r\n"
        b"From: <sip:1001@sip.local>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
        b'Call-ID: pr1\r\nCSeq: 1 OPTIONS\r\nProxy-Require: a, "b\r\nContent-Length: 0\r\n\r\n'
    )
    assert _served(options, caplog) == [(400, "Unterminated quoted string")]
