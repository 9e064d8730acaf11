"""Parser and forward-edit throughput on one core, a typical INVITE with SDP."""

from __future__ import annotations

import time

from routr.sip.message import Request, parse_message

INVITE = (
    b"INVITE sip:1002@sip.local SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'To: "Bob" <sip:1002@sip.local>\r\n'
    b'From: "Alice" <sip:1001@sip.local>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:1001@10.1.2.3:5060;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO, UPDATE\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: softphone 1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 130\r\n"
    b"\r\n"
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 10.1.2.3\r\ns=-\r\n"
    b"c=IN IP4 10.1.2.3\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def parse_and_read(data: bytes = INVITE) -> None:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    msg.via.branch  # noqa: B018 - the read is what we measure
    msg.from_.tag  # noqa: B018
    msg.to.uri  # noqa: B018
    msg.cseq  # noqa: B018
    msg.call_id  # noqa: B018
    msg.contacts  # noqa: B018
    msg.max_forwards  # noqa: B018


def forward_edit(data: bytes = INVITE) -> bytes:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    hops = msg.max_forwards
    msg.via  # noqa: B018 - a proxy reads the top Via before it pushes its own
    msg.add("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-routr-1a2b3c", first=True)
    msg.add("Record-Route", "<sip:127.0.0.1:5060;lr>", first=True)
    msg.set("max-forwards", str((hops if hops is not None else 70) - 1))
    return msg.to_bytes()


def rate(fn: object, seconds: float = 2.0) -> float:
    """Calls per second of ``fn`` over about ``seconds``."""
    assert callable(fn)
    for _ in range(1000):
        fn()
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(1000):
            fn()
        n += 1000
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main() -> list[tuple[str, str]]:
    results = [
        ("parse + read Via/From/To/CSeq/Call-ID/Contact/Max-Forwards", rate(parse_and_read)),
        ("forward edit (parse, push Via, add Record-Route, Max-Forwards, serialize)",
         rate(forward_edit)),
    ]  # fmt: skip
    return [(name, f"{value:,.0f} msg/s") for name, value in results]


if __name__ == "__main__":
    for name, value in main():
        print(f"{name}: {value}")
