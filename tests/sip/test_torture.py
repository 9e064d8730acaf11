"""The RFC 4475 and RFC 5118 torture messages, as the parser sees them.

The corpus lives in the shared folder beside the repository (``../shared/conformance``) or
under ``$ROUTR_SHARED``; without it these tests are skipped. Each MANIFEST.tsv row says
whether a message is valid and what a server should do with it; here we check the part that
is the parser's business. Routing decisions (416, 420, 483) belong to the router's tests.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import NamedTuple

import pytest

from routr.sip.errors import ParseError
from routr.sip.message import Message, Request, Response, parse_message
from routr.sip.uri import SipURI


def shared_dir() -> Path:
    env = os.environ.get("ROUTR_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared"


CORPORA = ("rfc4475", "rfc5118")


class Case(NamedTuple):
    corpus: str
    name: str
    valid: str
    check: str
    path: Path


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for corpus in CORPORA:
        manifest = shared_dir() / "conformance" / corpus / "MANIFEST.tsv"
        if not manifest.is_file():
            continue
        with manifest.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                path = manifest.parent / f"{row['name']}.sip"
                cases.append(Case(corpus, row["name"], row["valid"], row["check"], path))
    return cases


CASES = load_cases()
MISSING = f"conformance corpus not found under {shared_dir()} (set ROUTR_SHARED)"
PARAMS = [pytest.param(c, id=f"{c.corpus}-{c.name}") for c in CASES] or [
    pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="no-corpus")
]


def expected_statuses(check: str) -> set[int]:
    """``should:501,400`` -> {501, 400}."""
    return {int(code) for code in check.split(":", 1)[1].split(",")}


def parse_and_check(data: bytes) -> Message:
    """What a UDP listener does: parse, then validate a request."""
    msg = parse_message(data)
    if isinstance(msg, Request):
        msg.check()
    return msg


def assert_round_trip(msg: Message) -> None:
    """The message re-serializes and re-parses to the same start line, headers and body."""
    out = msg.to_bytes()
    again = parse_message(out)
    assert type(again) is type(msg)
    assert again.start_line() == msg.start_line()
    strip = [h for h in msg.headers if h[0] != "content-length"]
    assert [h for h in again.headers if h[0] != "content-length"] == strip
    assert again.body == msg.body
    assert again.content_length == len(msg.body)
    assert again.to_bytes() == out


def test_corpus_is_complete() -> None:
    if not CASES:
        pytest.skip(MISSING)
    names = {c.name for c in CASES}
    assert len([c for c in CASES if c.corpus == "rfc4475"]) == 49
    assert len([c for c in CASES if c.corpus == "rfc5118"]) == 12
    assert {"wsinv", "badvers", "mismatch02", "ipv6-good"} <= names
    for case in CASES:
        assert case.path.is_file(), case.path


@pytest.mark.parametrize("case", PARAMS)
def test_torture_message(case: Case | None) -> None:
    assert case is not None
    data = case.path.read_bytes()
    check = case.check

    if check == "drop-response":
        # Never answered: it either parses as a response or fails without a request to
        # answer.
        try:
            msg = parse_message(data)
        except ParseError as exc:
            assert exc.message is None or isinstance(exc.message, Response)
            return
        assert isinstance(msg, Response)
        assert_round_trip(msg)
        return

    if check.startswith("should:") and expected_statuses(check) & {501, 505}:
        # The parser decides these: badvers (505), mismatch02 (501, 400 tolerated): we give
        # the preferred one, listed first.
        with pytest.raises(ParseError) as info:
            parse_and_check(data)
        assert info.value.status == int(check.split(":", 1)[1].split(",")[0])
        assert isinstance(info.value.message, Request)
        return

    if case.valid == "valid" or check.startswith("process") or check == "first-only":
        # Valid (or odd but to be processed): parses, and a request passes check().
        # unkscm/novelsc (416), zeromf (483), bext01 (420) are decided by the router.
        msg = parse_and_check(data)
        assert_round_trip(msg)
        _ = msg.vias, msg.cseq, msg.call_id, msg.from_, msg.to
        if isinstance(msg, Request):
            _ = msg.uri, msg.contacts, msg.routes, msg.record_routes, msg.max_forwards
        return

    if check == "reject":
        try:
            msg = parse_message(data)
        except ParseError as exc:
            assert 400 <= exc.status <= 599
            return
        # Parsed: it still serializes and re-parses, and check() refuses it.
        assert_round_trip(msg)
        assert isinstance(msg, Request)
        with pytest.raises(ParseError) as info:
            msg.check()
        assert 400 <= info.value.status <= 599
        assert info.value.message is msg
        return

    assert check == "lenient", f"unknown check {check!r}"
    try:
        msg = parse_and_check(data)
    except ParseError as exc:
        assert 400 <= exc.status <= 599
        return
    assert_round_trip(msg)


def test_dblreq_trailing_message_ignored() -> None:
    if not CASES:
        pytest.skip(MISSING)
    msg = parse_message((shared_dir() / "conformance/rfc4475/dblreq.sip").read_bytes())
    assert isinstance(msg, Request)
    assert msg.method == "REGISTER"
    assert msg.body == b""


def test_wsinv_details() -> None:
    if not CASES:
        pytest.skip(MISSING)
    msg = parse_message((shared_dir() / "conformance/rfc4475/wsinv.sip").read_bytes())
    assert isinstance(msg, Request)
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display == 'J Rosenberg \\"'
    assert msg.from_.tag == "98asjd8"
    assert msg.max_forwards == 68
    assert (msg.cseq.number, msg.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    (contact,) = msg.contacts
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert msg.get("newfangledheader") == "newfangled value continued newfangled value"
    assert msg.get("unknownheaderwithunusualvalue") == ";;,,;;,;"
    assert msg.get("subject") == ""
    assert len(msg.body) == 150


def test_esc_and_ipv6_details() -> None:
    if not CASES:
        pytest.skip(MISSING)
    base = shared_dir() / "conformance"
    esc02 = parse_message((base / "rfc4475/esc02.sip").read_bytes())
    assert isinstance(esc02, Request)
    assert esc02.method == "RE%47IST%45R"
    port = parse_message((base / "rfc5118/port-ambiguous.sip").read_bytes())
    assert isinstance(port, Request)
    assert isinstance(port.uri, SipURI)
    assert (port.uri.host, port.uri.port) == ("[2001:db8::10:5070]", None)
    unamb = parse_message((base / "rfc5118/port-unambiguous.sip").read_bytes())
    assert isinstance(unamb, Request)
    assert isinstance(unamb.uri, SipURI)
    assert (unamb.uri.host, unamb.uri.port) == ("[2001:db8::10]", 5070)
    assert not port.uri.matches(unamb.uri)


def test_baddn_archive_bytes_without_final_crlf() -> None:
    # The RFC archive's baddn lacks the empty line; a liberal parser still reads it.
    path = shared_dir() / "conformance/rfc4475/archive/baddn.dat"
    if not path.is_file():
        pytest.skip(MISSING)
    msg = parse_message(path.read_bytes())
    assert isinstance(msg, Request)
    msg.check()
    assert msg.from_.display == "Bell, Alexander"
    assert msg.to.display == "Watson, Thomas"
    assert msg.body == b""
