"""An immutable view of every resource, and the changes between two views."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from routr.models import KINDS, Resource, normalize_key

ChangeType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True, slots=True)
class Change:
    """One resource added, modified or deleted; ``resource`` is the old one on DELETED."""

    type: ChangeType
    resource: Resource

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def ref(self) -> str:
        return self.resource.ref


class Snapshot:
    """Resources by kind and ref, in their stored order. Never mutated: edits return a copy."""

    __slots__ = ("_by_kind",)

    def __init__(self, by_kind: Mapping[str, Mapping[str, Resource]] | None = None) -> None:
        by_kind = by_kind or {}
        self._by_kind: dict[str, dict[str, Resource]] = {k: dict(by_kind.get(k, {})) for k in KINDS}

    @classmethod
    def of(cls, resources: Iterable[Resource]) -> Snapshot:
        by_kind: dict[str, dict[str, Resource]] = {k: {} for k in KINDS}
        for r in resources:
            by_kind[r.kind][r.ref] = r
        return cls(by_kind)

    def items(self, kind: str) -> list[Resource]:
        return list(self._by_kind[kind].values())

    def __iter__(self) -> Iterator[Resource]:
        for kind in KINDS:
            yield from self._by_kind[kind].values()

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_kind.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Snapshot) and self._by_kind == other._by_kind

    __hash__ = None  # type: ignore[assignment]

    def get(self, kind: str, ref: str) -> Resource | None:
        return self._by_kind[kind].get(ref)

    def find_by_key(self, kind: str, key: str) -> Resource | None:
        """The resource of ``kind`` one of whose natural keys is ``key``."""
        wanted = normalize_key(kind, key)
        return next((r for r in self._by_kind[kind].values() if wanted in r.natural_keys()), None)

    def with_kind(self, kind: str, resources: Iterable[Resource]) -> Snapshot:
        return Snapshot({**self._by_kind, kind: {r.ref: r for r in resources}})

    def apply(self, change: Change) -> Snapshot:
        """A copy with ``change`` done; a modified resource keeps its place."""
        current = dict(self._by_kind[change.kind])
        if change.type == "DELETED":
            current.pop(change.ref, None)
        else:
            current[change.ref] = change.resource
        return Snapshot({**self._by_kind, change.kind: current})


def diff(old: Snapshot, new: Snapshot) -> list[Change]:
    """What changed from ``old`` to ``new``, kind by kind."""
    changes: list[Change] = []
    for kind in KINDS:
        before, after = old._by_kind[kind], new._by_kind[kind]
        changes.extend(Change("DELETED", r) for ref, r in before.items() if ref not in after)
        for ref, r in after.items():
            if ref not in before:
                changes.append(Change("ADDED", r))
            elif before[ref] != r:
                changes.append(Change("MODIFIED", r))
    return changes
