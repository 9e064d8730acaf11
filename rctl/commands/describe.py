"""describe: every field of a resource, and what it is tied to (domains, bindings, gateway,
registration, numbers, agents)."""

from __future__ import annotations

from typing import Any

import typer

from rctl.app import command_set
from rctl.client import Client
from rctl.commands.resources import KIND, REF, fetch
from rctl.errors import ApiError
from rctl.kinds import Kind, kind_named
from rctl.output import emit, to_yaml
from rctl.session import client
from rctl.views import Item

commands = command_set()


def _section(title: str, lines: list[str]) -> list[str]:
    return [f"{title}:", *(f"  {line}" for line in lines or ["<none>"])]


def _bindings(api: Client, predicate: str) -> list[str]:
    found = api.list_all("/location", predicate)
    return [f"{b.get('aor')} -> {b.get('contact')} ({b.get('transport')}, "
            f"expires in {b.get('expires')} s)" for b in found]  # fmt: skip


def _quoted(value: Any) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _related(api: Client, kind: Kind, item: Item) -> list[str]:
    """What a resource is tied to: its domains, bindings, gateway, registration, users."""
    spec = item.get("spec") or {}
    meta = item.get("metadata") or {}
    ref = _quoted(meta.get("ref"))
    out: list[str] = []
    if kind.name == "Agent":
        domains = []
        for uri in spec.get("domains") or []:
            found = api.list_all("/domains", f"@.spec.context.domainUri == {_quoted(uri)}")
            name = found[0]["metadata"]["ref"] if found else "missing!"
            domains.append(f"{uri} ({name})")
        out += _section("Domains", domains)
        out += _section("Bindings", _bindings(api, f"@.ref == {ref}"))
    elif kind.name == "Peer":
        out += _section("Bindings", _bindings(api, f"@.ref == {ref}"))
    elif kind.name == "Number":
        gateway = meta.get("gwRef")
        try:
            gw = api.get(f"/gateways/{gateway}")
            gw_line = f"{gateway} ({gw['metadata'].get('name')}, {gw['spec'].get('host')})"
        except ApiError:
            gw_line = f"{gateway} (missing!)"
        out += _section("Gateway", [gw_line])
        link = (spec.get("location") or {}).get("aorLink")
        out += _section(f"AOR link {link}", _bindings(api, f"@.aor == {_quoted(link)}")
                        or ["not registered"])  # fmt: skip
    elif kind.name == "Gateway":
        state = api.list_all("/registry", f"@.ref == {ref}")
        out += _section("Registration", [
            f"{r.get('state')} at {r.get('registrar')} (last response: "
            f"{r.get('lastResponse') or 'none'})" for r in state
        ] or ["not registering"])  # fmt: skip
        numbers = api.list_all("/numbers", f"@.metadata.gwRef == {ref}")
        out += _section("Numbers", [
            f"{n['metadata']['ref']} {n['spec']['location']['telUrl']}" for n in numbers
        ])  # fmt: skip
    elif kind.name == "Domain":
        uri = (spec.get("context") or {}).get("domainUri")
        agents = api.list_all("/agents", f"{_quoted(uri)} in @.spec.domains")
        out += _section("Agents", [
            f"{a['metadata']['ref']} {a['spec']['credentials']['username']}" for a in agents
        ])  # fmt: skip
    return out


@commands.command()
def describe(
    ctx: typer.Context,
    kind_name: str = KIND,
    ref: str = REF,
) -> None:
    """Show every field of a resource, and what it is tied to."""
    kind = kind_named(kind_name)
    api = client(ctx)
    item = fetch(api, kind, ref)
    meta = item.get("metadata") or {}
    lines = [
        f"Kind:        {item.get('kind')}",
        f"Ref:         {meta.get('ref')}",
        f"Name:        {meta.get('name') or '<none>'}",
        f"Created:     {meta.get('createdOn') or '<unknown>'}",
        f"Modified:    {meta.get('modifiedOn') or '<unknown>'}",
    ]
    extra = {k: v for k, v in meta.items() if k not in ("ref", "name", "createdOn", "modifiedOn")}
    if extra:
        lines += ["Metadata:", *(f"  {x}" for x in to_yaml(extra).splitlines())]
    lines += ["Spec:", *(f"  {x}" for x in to_yaml(item.get("spec") or {}).splitlines())]
    try:
        lines += _related(api, kind, item)
    except ApiError as exc:  # an older server may not filter this way: show what we have
        lines += [f"(related objects unavailable: {exc.reason})"]
    emit("\n".join(lines))
