"""The dialogs the proxy recorded the route of, and who may send what in them.

An in-dialog request carries no credentials (its dialog was authorized when it was made),
so the proxy must not relay one to wherever its Request-URI says: that would let anyone
who learnt our Record-Route (by calling a local AOR) reach a Gateway. A :class:`Dialog`
remembers both ends as they were when the dialog was made (and refreshed): the Contact
(remote target) of each side, the Record-Route entry next to ours on each side, and the
addresses each side sends from. An in-dialog request is relayed only from one side to the
other side's recorded target.

Plain ``__slots__`` classes in an ordered dict: bounded in size (oldest dropped) and
entries expire when not used for ``ttl`` seconds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from routr.sip.uri import URI, SipURI

DIALOG_TTL = 12 * 3600.0
MAX_DIALOGS = 200_000


def uri_key(uri: URI | None) -> str | None:
    """A SIP URI reduced to what decides where it goes: user, host and port."""
    if not isinstance(uri, SipURI):
        return None
    port = uri.port
    if port is None:
        port = 5061 if uri.scheme == "sips" or uri.transport in ("tls", "wss") else 5060
    return f"{uri.user or ''}@{uri.host_key}:{port}"


class Side:
    """One end of a dialog: where requests to it go, and where its requests come from."""

    __slots__ = ("contact", "ips", "route")

    def __init__(self, contact: str | None, ips: tuple[str, ...], route: str | None) -> None:
        self.contact = contact  # uri_key of its Contact (remote target), None if unknown
        self.ips = ips  # the addresses it sends from
        self.route = route  # uri_key of the Record-Route entry next to ours on its side


class Dialog:
    """A dialog we record-routed: Call-ID and tags, caller side (0) and callee side (1)."""

    __slots__ = ("call_id", "confirmed", "key", "sides", "used")

    def __init__(self, key: tuple[str, str, str], sides: tuple[Side, Side], used: float) -> None:
        self.key = key
        self.call_id = key[0]
        self.sides = sides
        self.used = used
        self.confirmed = False  # a 2xx made it; early (1xx) otherwise

    def sender(self, ip: str | None, target: str | None, by_route: bool) -> int | None:
        """Which side (0 or 1) may send a request from ``ip`` to ``target`` (a Request-URI
        or, ``by_route``, a next Route): the other side must be that target; None if no
        side may."""
        if target is None:
            return None
        for me in (0, 1):
            if ip not in self.sides[me].ips:
                continue
            other = self.sides[1 - me]
            if target == (other.route if by_route else other.contact):
                return me
        return None


def dialog_key(call_id: str, tag1: str, tag2: str) -> tuple[str, str, str]:
    """The same key whichever side's tag is the From tag."""
    return (call_id, tag1, tag2) if tag1 <= tag2 else (call_id, tag2, tag1)


class Dialogs:
    """The table of recorded dialogs."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        ttl: float = DIALOG_TTL,
        max_dialogs: int = MAX_DIALOGS,
    ) -> None:
        self.clock = clock
        self.ttl = ttl
        self.max_dialogs = max_dialogs
        self._table: OrderedDict[tuple[str, str, str], Dialog] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def record(
        self, call_id: str, from_tag: str, to_tag: str, caller: Side, callee: Side
    ) -> Dialog:
        """Add (or replace) a dialog; the oldest go when the table is full or expired."""
        now = self.clock()
        key = dialog_key(call_id, from_tag, to_tag)
        old = self._table.pop(key, None)
        dialog = Dialog(key, (caller, callee), now)
        if old is not None:
            dialog.confirmed = old.confirmed
        self._table[key] = dialog
        self._prune(now)
        return dialog

    def find(self, call_id: str, tag1: str | None, tag2: str | None) -> Dialog | None:
        """The live dialog of a request (tags in either order), marked as used now."""
        if not tag1 or not tag2:
            return None
        key = dialog_key(call_id, tag1, tag2)
        dialog = self._table.get(key)
        if dialog is None:
            return None
        now = self.clock()
        if now - dialog.used > self.ttl:
            del self._table[key]
            return None
        dialog.used = now
        self._table.move_to_end(key)
        return dialog

    def remove(self, dialog: Dialog) -> None:
        if self._table.get(dialog.key) is dialog:
            del self._table[dialog.key]

    def _prune(self, now: float) -> None:
        table = self._table
        while len(table) > self.max_dialogs:
            table.popitem(last=False)
        # Ordered by last use: the expired ones are at the front.
        while table:
            first = next(iter(table.values()))
            if now - first.used <= self.ttl:
                break
            table.popitem(last=False)
