"""get, create, apply, delete: the six resource kinds."""

from __future__ import annotations

import re
import sys
from urllib.parse import quote

import typer

from rctl.app import OUTPUT, command_set
from rctl.client import Client
from rctl.errors import ApiError, RctlError
from rctl.kinds import KINDS, Kind, dig, kind_named, named, natural_keys
from rctl.manifest import Entry, load, single_text, to_text
from rctl.output import Format, emit, nothing_found, render, watch
from rctl.session import client, options
from rctl.views import RESOURCE_VIEWS, Item

commands = command_set()

YAML = {"Content-Type": "application/yaml"}


def _kind_names(incomplete: str) -> list[str]:
    names = [n for k in KINDS for n in (k.plural, k.lower, k.short)]
    return [n for n in names if n.startswith(incomplete)]


KIND = typer.Argument(
    ...,
    metavar="KIND",
    help="agent(s)/ag, domain(s)/dm, peer(s)/pr, gateway(s)/gw, number(s)/dd, user(s)/us",
    autocompletion=_kind_names,
)
REF = typer.Argument(
    ..., metavar="REF", help="the resource's ref or natural key (see rctl get --help)"
)
REFS = typer.Argument(..., metavar="REF...", help="refs of the resources to delete")
FILE = typer.Option(..., "--filename", "-f", help="a YAML or JSON manifest; '-' reads stdin")


def fetch(api: Client, kind: Kind, ref: str) -> Item:
    """The resource ``ref`` names: its ref, else its natural key or a shorter name (an
    Agent's username, a Number as dialled, a Gateway's name); ``get``, ``describe`` and
    ``edit`` all find it so."""
    try:
        item: Item = api.get(f"/{kind.plural}/{quote(ref, safe='')}")
        return item
    except ApiError as exc:
        if exc.status != 404:
            raise
    found = named(kind, api.list_all(f"/{kind.plural}"), ref)
    if len(found) > 1:
        refs = ", ".join(sorted(str(dig(i, "metadata", "ref")) for i in found))
        raise RctlError(
            f"{kind.lower} {ref!r} names {len(found)} {kind.plural} ({refs}); give a ref"
        )
    if not found:
        raise RctlError(f"{kind.lower} {ref!r} not found")
    return found[0]


def _named(exc: ApiError, kind: Kind, ref: str) -> RctlError:
    """A 404 says which resource, in the words the user typed it."""
    if exc.status == 404:
        return RctlError(f"{kind.lower} {ref!r} not found")
    return exc


@commands.command()
def get(
    ctx: typer.Context,
    kind_name: str = KIND,
    ref: str | None = typer.Argument(
        None, metavar="[REF]", help="one resource, by ref or natural key (else all)"
    ),
    filter: str | None = typer.Option(
        None, "--filter", help="JsonPath predicate, e.g. \"@.spec.credentials.username == '1001'\""
    ),
    watch_: bool = typer.Option(False, "--watch", "-w", help="keep showing changes"),
    output: Format | None = OUTPUT,
) -> None:
    """List resources of a kind, or show one by ref or natural key.

    REF is a ref, or what names the resource: an Agent's username (or username@domain), a
    Domain's domainUri, a Peer's or User's username, a Gateway's host[:port] or name, a
    Number's telUrl (+17853178070 or tel:+1 785 317 8070 alike).
    """
    kind = kind_named(kind_name)
    fmt = options(ctx).format(output)
    view = RESOURCE_VIEWS[kind.name]
    api = client(ctx)
    if watch_:
        if ref:
            raise RctlError("--watch follows a whole kind; use --filter to narrow it, not a ref")
        params = {"watch": "true", **({"filter": filter} if filter else {})}
        watch(view, api.watch(f"/{kind.plural}", **params), fmt)
        return
    if ref:
        emit(render(view, [fetch(api, kind, ref)], fmt, single=True))
        return
    items = api.list_all(f"/{kind.plural}", filter)
    if not items and fmt in (Format.table, Format.wide):
        nothing_found(kind.plural)
    emit(render(view, items, fmt))


# -- create / apply ---------------------------------------------------------------------------


def _runs(entries: list[Entry]) -> list[list[Entry]]:
    """Consecutive entries of one kind: one POST each, in file order (a Gateway before the
    Number that names it, a Domain before its Agents)."""
    runs: list[list[Entry]] = []
    for entry in entries:
        if runs and runs[-1][0].kind == entry.kind:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


def _a(word: str) -> str:
    return ("an " if word[0] in "AEIOU" else "a ") + word


def _source_name(source: str) -> str:
    return "<stdin>" if source == "-" else source


def _entries(source: str, kind_name: str | None) -> list[Entry]:
    entries = load(source)
    if kind_name:
        wanted = kind_named(kind_name)
        for entry in entries:
            if entry.kind != wanted:
                raise RctlError(
                    f"{_source_name(source)}:{entry.line}: {_a(entry.kind.name)}, "
                    f"not {_a(wanted.name)}; "
                    f"'rctl create {wanted.lower}' takes {wanted.plural} only "
                    "(leave the kind out to create every kind)"
                )
    return entries


_INDEXED = re.compile(r"^\[(\d+)\]\.?(.*)$")


def _located(exc: ApiError, sent: list[Entry], source: str) -> RctlError:
    """A 422 about entries sent as a list names them by index in that list; the user
    knows them by file and line."""
    if exc.status != 422 or not isinstance(exc.data, list):
        return exc
    lines = []
    for problem in exc.data:
        if not isinstance(problem, dict):
            continue
        path = str(problem.get("path") or "")
        entry = sent[0] if len(sent) == 1 else None
        match = _INDEXED.match(path)
        if match:
            path = match.group(2)
            index = int(match.group(1))
            entry = sent[index] if index < len(sent) else None
        where = f"{source}:{entry.line_of(path)}: " if entry is not None else ""
        lines.append(f"  {where}{path + ': ' if path else ''}{problem.get('problem')}")
    return RctlError("invalid:\n" + "\n".join(lines)) if lines else exc


def _post(api: Client, run: list[Entry], source: str) -> list[str]:
    kind = run[0].kind
    try:
        refs = api.data("POST", f"/{kind.plural}", content=to_text(run), headers=YAML)
    except ApiError as exc:
        raise _located(exc, run, source) from None
    return [str(r) for r in (refs if isinstance(refs, list) else [refs])]


@commands.command()
def create(
    ctx: typer.Context,
    kind_name: str | None = typer.Argument(
        None, metavar="[KIND]", help="check that the file holds this kind"
    ),
    filename: str = FILE,
) -> None:
    """Create the resources of a manifest (one, a list, or --- documents), in order."""
    entries = _entries(filename, kind_name)
    api = client(ctx)
    for run in _runs(entries):
        for ref in _post(api, run, _source_name(filename)):
            emit(f"{run[0].kind.lower}/{ref} created")


class _Existing:
    """The resources of each kind, fetched once per apply, by ref and natural key."""

    def __init__(self, api: Client) -> None:
        self.api = api
        self.by_kind: dict[str, tuple[set[str], dict[str, str]]] = {}

    def _index(self, kind: Kind) -> tuple[set[str], dict[str, str]]:
        if kind.name not in self.by_kind:
            refs: set[str] = set()
            keys: dict[str, str] = {}
            for item in self.api.list_all(f"/{kind.plural}"):
                ref = str((item.get("metadata") or {}).get("ref"))
                refs.add(ref)
                keys.update(dict.fromkeys(natural_keys(kind, item), ref))
            self.by_kind[kind.name] = (refs, keys)
        return self.by_kind[kind.name]

    def ref_of(self, entry: Entry) -> str | None:
        """The stored resource this entry updates: the one with its ref, or (written without
        a ref) the one with its natural key."""
        refs, keys = self._index(entry.kind)
        if entry.ref is not None:
            return entry.ref if entry.ref in refs else None
        return next((keys[k] for k in natural_keys(entry.kind, entry.plain()) if k in keys), None)


@commands.command()
def apply(ctx: typer.Context, filename: str = FILE) -> None:
    """Create or update each resource of a manifest (found by ref, else by natural key).

    Secrets left out (as in `rctl get -o yaml`) keep their stored value.
    """
    entries = load(filename)
    api = client(ctx)
    existing = _Existing(api)
    for entry in entries:
        kind = entry.kind
        ref = existing.ref_of(entry)
        if ref is None:
            (created,) = _post(api, [entry], _source_name(filename))
            emit(f"{kind.lower}/{created} created")
            continue
        try:
            put(api, kind, ref, single_text(entry))
        except ApiError as exc:
            raise _located(exc, [entry], _source_name(filename)) from None
        emit(f"{kind.lower}/{ref} configured")


def put(api: Client, kind: Kind, ref: str, text: str) -> Item:
    try:
        item: Item = api.data("PUT", f"/{kind.plural}/{ref}", content=text, headers=YAML)
    except ApiError as exc:
        raise _named(exc, kind, ref) from None
    return item


# -- delete -----------------------------------------------------------------------------------


@commands.command()
def delete(
    ctx: typer.Context,
    kind_name: str = KIND,
    refs: list[str] = REFS,
) -> None:
    """Delete resources; one that others still use is refused and named."""
    kind = kind_named(kind_name)
    api = client(ctx)
    failed = 0
    for ref in refs:
        try:
            api.data("DELETE", f"/{kind.plural}/{ref}")
        except ApiError as exc:
            failed += 1
            error = _named(exc, kind, ref)
            sys.stderr.write(f"error: {kind.lower}/{ref}: {error.message}\n")
            continue
        emit(f"{kind.lower}/{ref} deleted")
    if failed:
        raise typer.Exit(1)
