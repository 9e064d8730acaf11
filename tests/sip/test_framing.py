"""Stream framing (TCP/TLS): messages cut by Content-Length, keep-alives, limits."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routr.sip import framing
from routr.sip.errors import MessageTooLarge, ParseError
from routr.sip.framing import KEEPALIVE, PING, PONG, FramingError, KeepAlive, StreamFramer
from routr.sip.message import Request, parse_message


def msg(
    n: int, body: str = "", *, length: str | None = None, name: str = "Content-Length"
) -> bytes:
    head = (
        f"OPTIONS sip:u{n}@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK{n}\r\n"
        f"Call-ID: c{n}\r\n"
        f"{name}: {len(body.encode()) if length is None else length}\r\n\r\n"
    )
    return (head + body).encode()


M1 = msg(1)
M2 = msg(2, "hello\r\n\r\nworld")  # a CRLFCRLF inside the body must not cut it
M3 = msg(3, "v=0\n", name="l")


def feed_all(framer: StreamFramer, chunks: list[bytes]) -> list[bytes | KeepAlive]:
    out: list[bytes | KeepAlive] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out


def test_one_message() -> None:
    framer = StreamFramer()
    assert framer.feed(M1) == [M1]
    assert framer.pending == 0


def test_several_messages_in_one_chunk() -> None:
    framer = StreamFramer()
    assert framer.feed(M1 + M2 + M3) == [M1, M2, M3]
    assert framer.pending == 0


def test_messages_are_parseable() -> None:
    for item in StreamFramer().feed(M1 + M2 + M3):
        assert isinstance(item, bytes)
        parsed = parse_message(item, datagram=False)
        assert isinstance(parsed, Request)
    assert parse_message(M2, datagram=False).body == b"hello\r\n\r\nworld"


@pytest.mark.parametrize("stream", [M1, M2, M3, M1 + PING + M2 + M3])
def test_split_at_every_byte_boundary(stream: bytes) -> None:
    expected = StreamFramer().feed(stream)
    for cut in range(1, len(stream)):
        framer = StreamFramer()
        got = feed_all(framer, [stream[:cut], stream[cut:]])
        assert got == expected, cut
        assert framer.pending == 0


def test_byte_by_byte() -> None:
    stream = M1 + PING + M2 + PONG + M3 + PING
    framer = StreamFramer()
    got = feed_all(framer, [stream[i : i + 1] for i in range(len(stream))])
    assert got == [M1, KEEPALIVE, M2, M3, KEEPALIVE]
    assert framer.pending == 0


def test_partial_message_waits() -> None:
    framer = StreamFramer()
    assert framer.feed(M2[:-3]) == []
    assert framer.pending == len(M2) - 3
    assert framer.feed(M2[-3:]) == [M2]
    assert framer.pending == 0


def test_keepalive_ping() -> None:
    framer = StreamFramer()
    out = framer.feed(PING)
    assert out == [KEEPALIVE]
    assert isinstance(out[0], KeepAlive)
    assert framer.feed(PING + PING) == [KEEPALIVE, KEEPALIVE]
    assert framer.feed(PING + M1 + PING) == [KEEPALIVE, M1, KEEPALIVE]
    assert PONG == b"\r\n"


def test_ping_split_waits() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r") == []
    assert framer.pending == 3
    assert framer.feed(b"\n") == [KEEPALIVE]
    assert framer.pending == 0


def test_lone_crlf_is_skipped() -> None:
    framer = StreamFramer()
    assert framer.feed(PONG) == []
    assert framer.feed(M1) == [M1]
    assert framer.pending == 0
    framer = StreamFramer()
    assert framer.feed(PONG + M1) == [M1]
    assert framer.feed(b"\r\n" + M2 + b"\n" + M3) == [M2, M3]


def test_missing_content_length() -> None:
    framer = StreamFramer()
    with pytest.raises(FramingError) as info:
        framer.feed(b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n")
    assert info.value.status == 400
    assert isinstance(info.value, ParseError)


@pytest.mark.parametrize("value", ["-1", "abc", "", "1.5", "99999999999", "\u00b2"])
def test_bad_content_length(value: str) -> None:
    with pytest.raises(FramingError) as info:
        StreamFramer().feed(msg(1, length=value))
    assert info.value.status == 400


def test_conflicting_content_length() -> None:
    data = b"OPTIONS sip:a@example.com SIP/2.0\r\nContent-Length: 2\r\nl: 3\r\n\r\nabc"
    with pytest.raises(FramingError) as info:
        StreamFramer().feed(data)
    assert info.value.status == 400
    same = b"OPTIONS sip:a@example.com SIP/2.0\r\nContent-Length: 3\r\nl: 3\r\n\r\nabc"
    assert StreamFramer().feed(same) == [same]


def test_content_length_names() -> None:
    for name in ("content-length", "CONTENT-LENGTH", "L", "Content-Length  "):
        data = msg(7, "xyz", name=name)
        assert StreamFramer().feed(data + M1) == [data, M1]


def test_too_large_headers_without_end() -> None:
    framer = StreamFramer(max_size=100)
    assert framer.feed(b"OPTIONS sip:a@example.com SIP/2.0\r\n") == []
    with pytest.raises(MessageTooLarge) as info:
        framer.feed(b"X-Filler: " + b"a" * 100)
    assert info.value.status == 513


def test_too_large_body() -> None:
    framer = StreamFramer(max_size=200)
    with pytest.raises(MessageTooLarge) as info:
        framer.feed(msg(1, length="4294967295"))
    assert info.value.status == 513
    big = msg(1, "x" * 300)
    with pytest.raises(MessageTooLarge):
        StreamFramer(max_size=len(big) - 1).feed(big)
    assert StreamFramer(max_size=len(big)).feed(big) == [big]


def test_default_max_size() -> None:
    assert StreamFramer().max_size == 65535


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([M1, M2, M3, PING]), min_size=1, max_size=6),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_any_chunking_gives_the_same_items(items: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(items)
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    framer = StreamFramer()
    got = feed_all(framer, chunks)
    assert got == [KEEPALIVE if item == PING else item for item in items]
    assert framer.pending == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=5))
def test_fuzz_only_framing_errors(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_size=1000)
    try:
        for item in feed_all(framer, chunks):
            assert isinstance(item, bytes | KeepAlive)
    except ParseError as exc:
        assert exc.status in (400, 513)


def test_a_trickled_message_has_its_header_block_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found writing the framing fuzz target: each chunk searched the whole buffer for the
    # header block's end and re-read the block, so a message sent a byte at a time cost
    # time quadratic in its size (seconds of CPU for one 64 KB message).
    calls: list[bytes] = []
    real = framing._content_length

    def counted(head: bytes) -> int:
        calls.append(head)
        return real(head)

    monkeypatch.setattr(framing, "_content_length", counted)
    big = msg(4, "x" * 5000).replace(b"\r\n\r\n", b"\r\n" + b"X-Long: a\r\n" * 2000 + b"\r\n", 1)
    framer = StreamFramer()
    got = feed_all(framer, [big[i : i + 1] for i in range(len(big))])
    assert got == [big] and len(calls) == 1 and framer.pending == 0
