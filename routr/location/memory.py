"""The in-process location store (the default): dicts plus an expiry heap."""

from __future__ import annotations

import heapq
import itertools

from routr.location.binding import Binding
from routr.location.store import AddResult, Bindings, Clock, LocationStore, ordered, out_of_order


class MemoryStore(LocationStore):
    """Bindings in a dict of dicts. Expiry: :meth:`sweep` (the server calls it with ``now``)
    pops a heap of deadlines; lookups also hide what has expired in between."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self._by_aor: dict[str, dict[str, Binding]] = {}
        # (expires_at, tie-breaker, aor, contact); stale entries are skipped when popped.
        self._heap: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()
        self._size = 0  # bindings held: len() is on the add path, it must be O(1)

    async def add(self, binding: Binding, now: float | None = None) -> AddResult:
        contacts = self._by_aor.setdefault(binding.aor, {})
        old = contacts.get(binding.contact)
        if old is not None and out_of_order(old, binding):
            return "REFUSED"
        contacts[binding.contact] = binding
        if old is None:
            self._size += 1
        heapq.heappush(
            self._heap, (binding.expires_at, next(self._seq), binding.aor, binding.contact)
        )
        if len(self._heap) > 1024 and len(self._heap) > 4 * len(self):
            self._compact()
        result: AddResult = "ADDED" if old is None else "MODIFIED"
        self.watchers.emit("ADDED" if old is None else "MODIFIED", binding)
        return result

    def _compact(self) -> None:
        # Refreshes leave dead heap entries behind; rebuild from the live bindings.
        self._heap = [
            (b.expires_at, next(self._seq), b.aor, b.contact)
            for contacts in self._by_aor.values()
            for b in contacts.values()
        ]
        heapq.heapify(self._heap)

    def _pop(self, aor: str, contact: str) -> Binding | None:
        contacts = self._by_aor.get(aor)
        if contacts is None:
            return None
        binding = contacts.pop(contact, None)
        if binding is not None:
            self._size -= 1
        if not contacts:
            del self._by_aor[aor]
        return binding

    async def remove(self, aor: str, contact: str) -> Binding | None:
        binding = self._pop(aor, contact)
        if binding is not None:
            self.watchers.emit("DELETED", binding)
        return binding

    async def remove_all(self, aor: str) -> Bindings:
        removed = list(self._by_aor.pop(aor, {}).values())
        self._size -= len(removed)
        for binding in removed:
            self.watchers.emit("DELETED", binding)
        return removed

    async def lookup(self, aor: str, now: float | None = None) -> Bindings:
        t = self._now(now)
        return ordered([b for b in self._by_aor.get(aor, {}).values() if b.expires_at > t])

    async def list(self, now: float | None = None) -> Bindings:
        t = self._now(now)
        out: Bindings = []
        for aor in sorted(self._by_aor):
            out.extend(ordered([b for b in self._by_aor[aor].values() if b.expires_at > t]))
        return out

    async def evict_all(self) -> int:
        everything = [b for contacts in self._by_aor.values() for b in contacts.values()]
        self._by_aor.clear()
        self._heap.clear()
        self._size = 0
        for binding in everything:
            self.watchers.emit("DELETED", binding)
        return len(everything)

    async def sweep(self, now: float | None = None) -> Bindings:
        t = self._now(now)
        heap = self._heap
        expired: Bindings = []
        while heap and heap[0][0] <= t:
            deadline, _, aor, contact = heapq.heappop(heap)
            current = self._by_aor.get(aor, {}).get(contact)
            # A refreshed or removed binding left this entry behind: skip it.
            if current is None or current.expires_at != deadline:
                continue
            self._pop(aor, contact)
            expired.append(current)
        for binding in expired:
            self.watchers.emit("EXPIRED", binding)
        return expired

    def __len__(self) -> int:
        return self._size
