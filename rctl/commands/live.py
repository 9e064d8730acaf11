"""locate, registry, calls, bans, unban: what is going on now."""

from __future__ import annotations

import typer

from rctl.app import OUTPUT, command_set
from rctl.errors import ApiError, RctlError
from rctl.output import Format, emit, nothing_found, render, watch
from rctl.session import client, options
from rctl.views import BANS, BINDINGS, CALLS, REGISTRATIONS, View

commands = command_set()

FILTER = typer.Option(None, "--filter", help='JsonPath predicate, e.g. "@.aor =~ /1001/"')
WATCH = typer.Option(False, "--watch", "-w", help="keep the table up to date")


def _table(
    ctx: typer.Context,
    path: str,
    view: View,
    what: str,
    filter: str | None,
    watching: bool,
    output: Format | None,
) -> None:
    fmt = options(ctx).format(output)
    api = client(ctx)
    if watching:
        params = {"watch": "true", **({"filter": filter} if filter else {})}
        watch(view, api.watch(path, **params), fmt)
        return
    items = api.list_all(path, filter)
    if not items and fmt in (Format.table, Format.wide):
        nothing_found(what)
    emit(render(view, items, fmt))


@commands.command()
def locate(
    ctx: typer.Context,
    filter: str | None = FILTER,
    watch_: bool = WATCH,
    output: Format | None = OUTPUT,
) -> None:
    """Who is registered where: AOR, contact, transport, user agent, expiry."""
    _table(ctx, "/location", BINDINGS, "bindings", filter, watch_, output)


@commands.command()
def registry(
    ctx: typer.Context,
    filter: str | None = FILTER,
    watch_: bool = WATCH,
    output: Format | None = OUTPUT,
) -> None:
    """routr's own registrations to Gateways, and how they stand."""
    _table(ctx, "/registry", REGISTRATIONS, "gateway registrations", filter, watch_, output)


@commands.command()
def calls(
    ctx: typer.Context,
    filter: str | None = FILTER,
    watch_: bool = WATCH,
    output: Format | None = OUTPUT,
) -> None:
    """Calls in progress and recent ones."""
    _table(ctx, "/calls", CALLS, "calls", filter, watch_, output)


@commands.command()
def bans(ctx: typer.Context, output: Format | None = OUTPUT) -> None:
    """Addresses banned for flooding or guessing passwords."""
    fmt = options(ctx).format(output)
    items = client(ctx).list_all("/bans")
    if not items and fmt in (Format.table, Format.wide):
        nothing_found("bans")
    emit(render(BANS, items, fmt))


@commands.command()
def unban(ctx: typer.Context, ip: str = typer.Argument(..., help="a banned address")) -> None:
    """Lift a ban."""
    try:
        client(ctx).data("DELETE", f"/bans/{ip}")
    except ApiError as exc:
        if exc.status == 404:
            raise RctlError(f"{ip} is not banned") from None
        raise
    emit(f"ban of {ip} lifted")
