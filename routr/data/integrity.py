"""Referential rules checked on every write, whichever provider stores the data.

Each ``plan_*`` function looks at a snapshot taken inside the provider's write lock or
transaction and returns the one ``Change`` to apply, or raises a typed ``DataError``.
"""

from __future__ import annotations

from datetime import datetime

from routr.models import Agent, Domain, Number, Resource

from .errors import AlreadyExists, DependentObjects, NotFound, UnfulfilledDependency
from .snapshot import Change, Snapshot

# kind -> kinds whose resources may point at it
_DEPENDENTS: dict[str, tuple[str, ...]] = {
    "Domain": ("Agent",),
    "Gateway": ("Number",),
    "Number": ("Domain",),
}


def describe(resource: Resource) -> str:
    """``Agent ag1234abcd (John Doe)`` for messages."""
    name = resource.metadata.name
    return f"{resource.kind} {resource.ref}" + (f" ({name})" if name else "")


def missing_dependencies(snapshot: Snapshot, resource: Resource) -> list[str]:
    """What ``resource`` points at that ``snapshot`` does not hold, e.g. ``Domain sip.local``."""
    if isinstance(resource, Agent):
        uris = {d.uri for d in snapshot.items("Domain") if isinstance(d, Domain)}
        return [f"Domain {d}" for d in resource.spec.domains if d.lower() not in uris]
    if isinstance(resource, Number):
        ref = resource.metadata.gwRef
        return [] if snapshot.get("Gateway", ref) else [f"Gateway {ref}"]
    if isinstance(resource, Domain):
        return [
            f"Number {p.numberRef}"
            for p in resource.spec.context.policies
            if snapshot.get("Number", p.numberRef) is None
        ]
    return []


def _check_dependencies(snapshot: Snapshot, resource: Resource) -> None:
    missing = missing_dependencies(snapshot, resource)
    if missing:
        raise UnfulfilledDependency(
            f"{describe(resource)} has unfulfilled dependencies: {', '.join(missing)} not found"
        )


def _check_unique(snapshot: Snapshot, resource: Resource) -> None:
    for key in resource.natural_keys():
        other = snapshot.find_by_key(resource.kind, key)
        if other is not None and other.ref != resource.ref:
            raise AlreadyExists(f"{resource.kind} {key} already exists ({describe(other)})")


def _check_not_orphaning(before: Snapshot, after: Snapshot, touched: Resource) -> None:
    """Refuse a change that breaks resources that were whole before it."""
    broken = [
        r
        for kind in _DEPENDENTS.get(touched.kind, ())
        for r in after.items(kind)
        if missing_dependencies(after, r) and not missing_dependencies(before, r)
    ]
    if broken:
        users = ", ".join(describe(r) for r in broken)
        raise DependentObjects(f"{describe(touched)} has dependent objects: {users}")


def _stamped(resource: Resource, created: datetime | None, now: datetime) -> Resource:
    metadata = resource.metadata.model_copy(update={"createdOn": created or now, "modifiedOn": now})
    return resource.model_copy(update={"metadata": metadata})


def plan_create(snapshot: Snapshot, resource: Resource, now: datetime) -> Change:
    if snapshot.get(resource.kind, resource.ref) is not None:
        raise AlreadyExists(f"{resource.kind} with ref {resource.ref} already exists")
    _check_unique(snapshot, resource)
    _check_dependencies(snapshot, resource)
    return Change("ADDED", _stamped(resource, resource.metadata.createdOn, now))


def plan_update(snapshot: Snapshot, resource: Resource, now: datetime) -> Change:
    existing = snapshot.get(resource.kind, resource.ref)
    if existing is None:
        raise NotFound(f"{resource.kind} {resource.ref} not found")
    _check_unique(snapshot, resource)
    _check_dependencies(snapshot, resource)
    change = Change("MODIFIED", _stamped(resource, existing.metadata.createdOn, now))
    _check_not_orphaning(snapshot, snapshot.apply(change), resource)
    return change


def plan_delete(snapshot: Snapshot, kind: str, ref: str) -> Change:
    existing = snapshot.get(kind, ref)
    if existing is None:
        raise NotFound(f"{kind} {ref} not found")
    change = Change("DELETED", existing)
    _check_not_orphaning(snapshot, snapshot.apply(change), existing)
    return change


def audit(snapshot: Snapshot) -> list[str]:
    """Dangling references in data written by hand (logged, not refused, as Routr v1 did)."""
    return [
        f"{describe(r)}: {m} not found" for r in snapshot for m in missing_dependencies(snapshot, r)
    ]
