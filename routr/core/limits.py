"""The proxy's server transactions, counted by source address for
``spec.security.limits.maxTransactionsPerSource``.

A source may have at most N requests in progress (no final response sent yet) at once.
The table keeps, per source address, the transactions not yet seen answered; only when
that set reaches N are the answered ones dropped from it and the rest counted, so a
source far from its bound costs one set insertion per transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from routr.core.proxy import Context

_MISSING: object = object()


class ServerTable(dict[str, "Context"]):
    """``Proxy.servers``: server transactions by key, and the open ones by source IP."""

    __slots__ = ("by_source", "limit")

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.by_source: dict[str, set[Context]] = {}

    def __setitem__(self, key: str, ctx: Context) -> None:
        if key in self:
            self._forget(self[key])
        dict.__setitem__(self, key, ctx)
        ip = ctx.source.ip
        found = self.by_source.get(ip)
        if found is None:
            self.by_source[ip] = {ctx}
        else:
            found.add(ctx)

    def __delitem__(self, key: str) -> None:
        self._forget(dict.pop(self, key))

    def pop(self, key: str, default: object = _MISSING) -> object:  # type: ignore[override]
        ctx = dict.pop(self, key, None)  # a Context is never None
        if ctx is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        self._forget(ctx)
        return ctx

    def _forget(self, ctx: Context) -> None:
        ip = ctx.source.ip
        found = self.by_source.get(ip)
        if found is not None:
            found.discard(ctx)
            if not found:
                del self.by_source[ip]

    def full(self, ip: str) -> bool:
        """``ip`` has ``limit`` requests in progress: a new one must wait."""
        found = self.by_source.get(ip)
        if found is None or len(found) < self.limit:
            return False
        answered = [ctx for ctx in found if ctx.final_sent]
        found.difference_update(answered)
        return len(found) >= self.limit
