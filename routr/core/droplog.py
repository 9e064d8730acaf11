"""Log lines for refused and dropped messages, at most one per source and reason a while.

10,000 junk datagrams from one address must not write 10,000 lines (a full disk, burnt
CPU): the first of a kind is logged at once, the rest are counted and summed up in the
next line for that source and reason once ``interval`` has passed. Each one is still
logged at debug level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

_MAX_TRACKED = 10_000  # (source, reason) pairs; a scan from many addresses starts afresh


class DropLog:
    def __init__(
        self, logger: logging.Logger, clock: Callable[[], float], interval: float = 10.0
    ) -> None:
        self.logger = logger
        self.clock = clock
        self.interval = interval
        #: (ip, reason) -> [time of the last line, messages since]
        self._seen: dict[tuple[str, str], list[float]] = {}
        #: lines not written since start, for /metrics
        self.suppressed = 0

    def note(self, ip: str, reason: str, detail: str) -> None:
        """One message from ``ip`` refused or dropped for ``reason``; ``detail`` says more."""
        self.logger.debug("%s", detail)
        now = self.clock()
        key = (ip, reason)
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.interval:
            seen[1] += 1
            self.suppressed += 1
            return
        if seen is None and len(self._seen) >= _MAX_TRACKED:
            self._seen.clear()
        if seen is not None and seen[1]:
            self.logger.info("%s (and %d more from %s in the last %.0f s)", detail, int(seen[1]),
                             ip, now - seen[0])  # fmt: skip
        else:
            self.logger.info("%s", detail)
        self._seen[key] = [now, 0.0]
