"""Cutting a byte stream (TCP, TLS) into SIP messages (RFC 3261 §18.3, RFC 5626 §3.5.1).

Over a stream, Content-Length is mandatory and is the only way to find where a message
ends. Between messages a client may send a double-CRLF keep-alive ping, which the server
answers with a single CRLF pong.
"""

from __future__ import annotations

from routr.sip.errors import MessageTooLarge, ParseError
from routr.sip.headers import parse_uint

PING = b"\r\n\r\n"
PONG = b"\r\n"


class KeepAlive:
    """A double-CRLF ping was received: answer with :data:`PONG`."""

    __slots__ = ()


KEEPALIVE = KeepAlive()


class FramingError(ParseError):
    """The stream cannot be cut into messages; the connection must be closed."""


class StreamFramer:
    """Feed bytes in, get whole messages (as bytes) and keep-alive pings out.

    ``max_size`` bounds a message (header block and body): a client cannot make us
    buffer without limit.
    """

    __slots__ = ("_buf", "_need", "_scanned", "max_size")

    def __init__(self, max_size: int = 65535) -> None:
        self._buf = bytearray()
        self.max_size = max_size
        # Where the header block's end is looked for next, and the size of the message
        # once its header block is read: bytes that trickle in are looked at once, not
        # again with every chunk (a byte at a time was quadratic).
        self._scanned = 0
        self._need = 0

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a whole message."""
        return len(self._buf)

    @property
    def partial(self) -> bool:
        """A message has begun and is not whole yet (line ends between messages, which
        may become a keep-alive ping, do not count)."""
        buf = self._buf
        return bool(buf) and buf[0] != 13 and buf[0] != 10

    def feed(self, data: bytes) -> list[bytes | KeepAlive]:
        """Add ``data``; return the complete items now available, in order.

        Raises :class:`FramingError` (400, no Content-Length or a bad one) or
        :class:`MessageTooLarge` (513); after either, the connection is unusable.
        """
        buf = self._buf
        buf += data
        out: list[bytes | KeepAlive] = []
        while buf:
            if buf[0] == 13 or buf[0] == 10:
                if buf.startswith(PING):
                    del buf[:4]
                    out.append(KEEPALIVE)
                    continue
                if len(buf) < 4 and PING.startswith(bytes(buf)):
                    break  # may still become a ping
                # A pong, or stray line ends before a message: skip them.
                stripped = buf.lstrip(b"\r\n")
                del buf[: len(buf) - len(stripped)]
                continue
            if not self._need:
                end = buf.find(b"\r\n\r\n", self._scanned)
                if end < 0:
                    if len(buf) > self.max_size:
                        raise MessageTooLarge("Message Too Large")
                    self._scanned = max(0, len(buf) - 3)
                    break
                length = _content_length(bytes(buf[:end]))
                total = end + 4 + length
                if total > self.max_size:
                    raise MessageTooLarge("Message Too Large")
                self._need = total
            if len(buf) < self._need:
                break
            out.append(bytes(buf[: self._need]))
            del buf[: self._need]
            self._need = self._scanned = 0
        return out


def _content_length(head: bytes) -> int:
    found: int | None = None
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name = name.strip().lower()
        if name == b"content-length" or name == b"l":
            try:
                length = parse_uint(value.decode("ascii", "replace"), "Content-Length")
            except ParseError as exc:
                raise FramingError(exc.reason) from None
            if found is not None and found != length:
                raise FramingError("Conflicting Content-Length values")
            found = length
    if found is None:
        raise FramingError("Missing Content-Length")
    return found
