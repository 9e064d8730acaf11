"""Bounds on what one message may make routr parse and hold, and the count of their hits.

The header counts are checked where a message is parsed (:func:`routr.sip.message.
parse_message`), on the header list it already built: a typical message is let through by
one ``len`` and one ``str.count`` in C; only a message near a bound is counted value by
value (comma lists split with quotes and ``<...>`` respected).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from routr.sip.errors import LimitExceeded
from routr.sip.headers import split_values

if TYPE_CHECKING:
    from routr.sip.message import Message

#: Every limit by its label in ``routr_limit_hits_total{limit=...}`` (docs/limits.md).
LIMIT_NAMES: Final = (
    "message_size", "headers", "vias", "contacts", "routes", "transactions", "connections",
    "ws_frame", "handshake", "message_timeout", "bindings", "dns_lookups",
)  # fmt: skip


class LimitHits:
    """How often each limit was hit; plain ints, one increment per hit."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(LIMIT_NAMES, 0)

    def hit(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1


class MessageLimits:
    """The most header fields, Via values, Route values and (in a REGISTER) Contact values
    one message may carry."""

    __slots__ = ("contacts", "floor", "headers", "routes", "vias")

    def __init__(
        self, *, headers: int = 256, vias: int = 70, routes: int = 70, contacts: int = 32
    ) -> None:
        self.headers = headers
        self.vias = vias
        self.routes = routes
        self.contacts = contacts
        # Header lines plus commas bound every count: at or under the smallest bound, no
        # value needs counting.
        self.floor = min(vias, routes, contacts)

    def check(self, message: Message, commas: int) -> None:
        """Raise :class:`LimitExceeded` (400, carrying ``message``) past a bound;
        ``commas`` is the number of commas in the header block."""
        headers = message.headers
        if len(headers) > self.headers:
            raise LimitExceeded("Too Many Headers", limit="headers", message=message)
        if len(headers) + commas <= self.floor:
            return
        register = getattr(message, "method", None) == "REGISTER"
        for key, bound, reason, limit in (
            ("via", self.vias, "Too Many Via Headers", "vias"),
            ("route", self.routes, "Too Many Route Headers", "routes"),
            ("contact", self.contacts if register else 0, "Too Many Contacts", "contacts"),
        ):
            if bound and _count(headers, key) > bound:
                raise LimitExceeded(reason, limit=limit, message=message)


def _count(headers: list[tuple[str, str, str]], key: str) -> int:
    """Values of ``key``; only a value with a comma is split."""
    return sum(
        len(split_values(value)) if "," in value else 1 for k, _, value in headers if k == key
    )
