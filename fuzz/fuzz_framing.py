"""Fuzz target: stream framing with arbitrary chunking. The first bytes choose the chunk
sizes; whatever the chunking, the same messages come out (or the stream fails), and each
message goes through the service as over TCP."""

from __future__ import annotations

import harness
from harness import EXPECTED

from routr.sip.framing import KeepAlive, StreamFramer

SERVICE = harness.Service()
MAX = 4096  # small, so that the size limit is reached too


def _messages(chunks: list[bytes]) -> tuple[list[bytes], bool]:
    """The messages framed from ``chunks`` (keep-alives left out) and whether it failed."""
    framer = StreamFramer(MAX)
    out: list[bytes] = []
    try:
        for chunk in chunks:
            out += [item for item in framer.feed(chunk) if not isinstance(item, KeepAlive)]
    except EXPECTED:
        return out, True
    assert framer.pending <= MAX, framer.pending
    return out, False


def test_one(data: bytes) -> None:
    sizes, stream = data[:8], data[8:]
    chunks: list[bytes] = []
    i = 0
    for n in sizes:
        chunks.append(stream[i : i + n % 64 + 1])
        i += n % 64 + 1
    chunks.append(stream[i:])
    whole, whole_failed = _messages([stream])
    cut, cut_failed = _messages(chunks)
    if whole_failed:
        assert cut_failed, "the stream fails whole but not in chunks"
    else:
        assert not cut_failed, "the stream fails in chunks but not whole"
        assert cut == whole, "chunking changed the messages"
    for message in whole:
        SERVICE.feed(message, "tcp")


if __name__ == "__main__":
    harness.run(test_one)
