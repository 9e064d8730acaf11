"""Crashes the fuzzers found (``fuzz/``, and the suite's hypothesis runs), one test each,
with the smallest input that showed it."""

from __future__ import annotations

from routr.sip.uri import SipURI, escape_user, parse_uri


def test_escape_user_takes_back_an_escaped_non_utf8_byte() -> None:
    # "%80" unescapes to a lone surrogate; escaping it raised UnicodeEncodeError (reached
    # by the router when it writes a dialled number to a gateway's Request-URI).
    uri = parse_uri("sip:%80@example.org")
    assert isinstance(uri, SipURI) and uri.user_unescaped is not None
    assert escape_user(uri.user_unescaped) == "%80"
    assert escape_user("caf\u00e9 \udcff") == "caf%C3%A9%20%FF"
