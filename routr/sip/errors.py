"""Errors of the SIP core.

A :class:`ParseError` carries the status code a server should answer with, so the
transport layer can turn any failure into a response (or a logged drop) in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from routr.sip.message import Message


class SipError(Exception):
    """Base class of every error raised by :mod:`routr.sip`."""


class ParseError(SipError):
    """A message that cannot be accepted.

    ``status`` is the response code to answer with and ``reason`` a short phrase naming
    the problem. ``message`` is the partly parsed message when enough of it was read to
    route a response back; ``None`` means the input must be dropped.
    """

    status: int = 400

    def __init__(
        self, reason: str, *, status: int | None = None, message: Message | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status
        self.message = message


class LimitExceeded(ParseError):
    """A message or a source went past one of routr's limits (``limit`` names it, as in
    ``routr_limit_hits_total{limit=...}``); ``retry_after`` seconds go in a 503's
    Retry-After."""

    limit: str = ""
    retry_after: int | None = None

    def __init__(
        self,
        reason: str,
        *,
        limit: str | None = None,
        status: int | None = None,
        message: Message | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(reason, status=status, message=message)
        if limit is not None:
            self.limit = limit
        self.retry_after = retry_after


class MessageTooLarge(LimitExceeded):
    """The message (or its header block) is bigger than allowed: 513."""

    status = 513
    limit = "message_size"


class UnsupportedURIScheme(ParseError):
    """The Request-URI has a scheme we cannot route: 416."""

    status = 416


class BadExtension(ParseError):
    """A Require/Proxy-Require option we do not support: 420."""

    status = 420


class TooManyHops(ParseError):
    """Max-Forwards reached zero: 483."""

    status = 483


class VersionNotSupported(ParseError):
    """A SIP version other than 2.0: 505."""

    status = 505


class NotImplementedMethod(ParseError):
    """An unknown method we cannot handle: 501."""

    status = 501
