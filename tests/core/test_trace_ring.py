"""The call trace ring, sans-IO."""

from __future__ import annotations

from routr.core.trace import Traces, redact
from routr.sip.message import parse_message

A, B = ("10.0.0.1", 5060), ("10.0.0.2", 5060)


def _msg(method: str, call_id: str, to: str = "<sip:b@x>") -> bytes:
    return (f"{method} sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:a@x>;tag=1\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\n"
            "Content-Length: 0\r\n\r\n").encode()  # fmt: skip


def _feed(traces: Traces, data: bytes, now: float = 1.0) -> None:
    traces.incoming(parse_message(data), data, "udp", A, B, now)


def test_an_initial_invite_opens_a_trace_and_the_rest_follow() -> None:
    traces = Traces()
    _feed(traces, _msg("REGISTER", "r1"))
    _feed(traces, _msg("INVITE", "c1"))
    _feed(traces, _msg("BYE", "c1", "<sip:b@x>;tag=2"))
    _feed(traces, _msg("INVITE", "c2", "<sip:b@x>;tag=9"))  # a re-INVITE of an unknown call
    assert traces.call_ids() == ["c1"]
    trace = traces.get("c1")
    assert trace is not None and [r.data.split(b" ")[0] for r in trace.records] == [
        b"INVITE", b"BYE"]  # fmt: skip


def test_the_ring_and_the_messages_per_call_are_bounded() -> None:
    traces = Traces(calls=2, messages=3)
    for n in range(4):
        _feed(traces, _msg("INVITE", f"c{n}"))
    assert traces.call_ids() == ["c3", "c2"]
    for _ in range(5):
        _feed(traces, _msg("ACK", "c3", "<sip:b@x>;tag=2"))
    trace = traces.get("c3")
    assert trace is not None and len(trace.records) == 3 and trace.dropped == 3


def test_off_and_sampled() -> None:
    off = Traces(mode="off")
    assert not off.on
    sampled = Traces(mode="sampled", sample=0.5, chance=iter([0.7, 0.2]).__next__)
    _feed(sampled, _msg("INVITE", "c1"))
    _feed(sampled, _msg("INVITE", "c2"))
    assert sampled.call_ids() == ["c2"]


def test_a_malformed_to_is_not_traced_and_raises_nothing() -> None:
    traces = Traces()
    _feed(traces, _msg("INVITE", "c1", '"unclosed <sip:b@x>'))
    assert traces.call_ids() == []


def test_digest_responses_are_redacted() -> None:
    raw = (
        b'Proxy-Authorization: Digest username="1001", realm="x", nonce="n", '
        b'response="0123abcd", uri="sip:b@x"\r\nAuthorization: Digest response=ffff\r\n'
    )
    hidden = redact(raw)
    assert b"0123abcd" not in hidden and b"ffff" not in hidden
    assert hidden.count(b'response="<redacted>"') == 2 and b'username="1001"' in hidden


def test_the_bound_holds_under_many_calls() -> None:
    traces = Traces(calls=50, messages=5)
    for n in range(20_000):
        _feed(traces, _msg("INVITE", f"load-{n}"))
        _feed(traces, _msg("ACK", f"load-{n}", "<sip:b@x>;tag=2"))
    assert len(traces) == 50
    assert traces.call_ids()[0] == "load-19999"
    assert all(len(t.records) == 2 for t in map(traces.get, traces.call_ids()) if t)


def test_the_bytes_kept_are_bounded_too() -> None:
    traces = Traces(calls=1000, messages=1000, max_bytes=10_000)
    for n in range(100):
        _feed(traces, _msg("INVITE", f"b-{n}"))
    assert traces.bytes <= 10_000 and len(traces) < 100
    assert traces.call_ids()[0] == "b-99"
