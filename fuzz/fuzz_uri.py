"""Fuzz target: URI, name-addr, Via, CSeq and parameter parsing, and what is read of them."""

from __future__ import annotations

import harness
from harness import EXPECTED

from routr.sip.address import parse_address, parse_cseq, parse_via
from routr.sip.headers import parse_params, split_values
from routr.sip.uri import SipURI, TelURI, escape_user, parse_uri, unescape


def _uri(text: str) -> None:
    uri = parse_uri(text)
    shown = str(uri)
    if isinstance(uri, SipURI):
        _ = uri.host_key, uri.aor, uri.user_unescaped, uri.transport
        assert uri.copy().matches(uri), f"a copy of {shown!r} does not match it"
    elif isinstance(uri, TelURI):
        _ = uri.digits
    # What we write must parse again, and mean the same.
    again = parse_uri(shown)
    assert again.matches(uri), f"{shown!r} read back is another URI"


def test_one(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    for step in (_uri, parse_address, parse_via, parse_cseq, parse_params, split_values):
        try:
            step(text)
        except EXPECTED:
            pass
    escape_user(unescape(text))


if __name__ == "__main__":
    harness.run(test_one)
