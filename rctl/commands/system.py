"""logs, config describe, reload, completion."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Any

import typer

from rctl.app import COMPLETE_VAR, OUTPUT, command_set
from rctl.errors import RctlError
from rctl.output import Format, colour, emit, to_json, to_yaml
from rctl.session import client, options

commands = command_set()


class Level(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"
    critical = "critical"


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


LEVEL = typer.Option(Level.info, "--level", "-l", help="the lowest level shown")
SHELL = typer.Argument(..., help="bash, zsh or fish")
_LEVEL_COLOURS = {"WARNING": "33", "ERROR": "31", "CRITICAL": "1;31", "DEBUG": "2"}


def _log_line(record: dict[str, Any], painted: bool) -> str:
    level = str(record.get("level", "")).upper()
    text = (
        f"{record.get('time', '')} {level:<8} {record.get('logger', '')}: {record.get('msg', '')}"
    )
    code = _LEVEL_COLOURS.get(level)
    return f"\x1b[{code}m{text}\x1b[0m" if painted and code else text


@commands.command()
def logs(
    ctx: typer.Context,
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new records"),
    level: Level = LEVEL,
    limit: int = typer.Option(200, "--limit", "-n", min=1, help="recent records to show first"),
    output: Format | None = OUTPUT,
) -> None:
    """The server's recent log records; -f follows them."""
    fmt = options(ctx).format(output)
    api = client(ctx)
    params = {"level": level.value, "limit": limit}
    painted = colour()
    if follow:
        for event in api.watch("/system/logs", follow="true", **params):
            record = event.get("object") or {}
            emit(to_json(record).replace("\n", "") if fmt is Format.json else
                 _log_line(record, painted))  # fmt: skip
        return
    records = api.get("/system/logs", **params) or []
    if fmt is Format.json:
        emit(to_json(records))
    elif fmt is Format.yaml:
        emit(to_yaml(records).rstrip("\n"))
    else:
        emit("\n".join(_log_line(r, painted) for r in records))


config_app = typer.Typer(help="The server's configuration.", no_args_is_help=True)
commands.add_typer(config_app, name="config")


@config_app.command("describe")
def config_describe(ctx: typer.Context, output: Format | None = OUTPUT) -> None:
    """The running configuration (secrets masked), YAML unless -o json."""
    data = client(ctx).get("/system/config")
    fmt = options(ctx).format(output, Format.yaml)
    emit(to_json(data) if fmt is Format.json else to_yaml(data).rstrip("\n"))


@commands.command()
def reload(ctx: typer.Context) -> None:
    """Re-read resources and configuration without a restart."""
    outcome = client(ctx).data("POST", "/system/reload")
    lines = ["reloaded"]
    if isinstance(outcome, dict):
        lines += [f"  {key}: {_words(value)}" for key, value in outcome.items()]
    emit("\n".join(lines))


def _words(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_words(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(_words(v) for v in value) or "none"
    return str(value)


@commands.command()
def completion(shell: Shell = SHELL) -> None:
    """Print a shell completion script: eval "$(rctl completion bash)"."""
    # typer's own script: it speaks the protocol its runtime answers (see rctl.cli.main)
    from typer._completion_shared import get_completion_script

    try:
        script = get_completion_script(
            prog_name="rctl", complete_var=COMPLETE_VAR, shell=shell.value
        )
    except typer.Exit:
        raise RctlError(f"no completion for {shell.value}") from None
    sys.stdout.write(script + "\n")
