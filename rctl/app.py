"""The Typer application: its global options, its commands (imported as they are run), and
the one place errors are printed."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, get_args

import typer
import typer.main
from typer._click import Command, Context, HelpFormatter
from typer._click.exceptions import BadParameter, ClickException, NoArgsIsHelpError, UsageError
from typer._click.utils import make_default_short_help
from typer._coercion import RuntimeParam
from typer._param_types import coerce_cli_choice
from typer.core import TyperGroup, _TyperParameter
from typer.exceptions import Abort

from rctl.errors import RctlError
from rctl.output import Format
from rctl.session import Options

#: Every command: the module of ``rctl.commands`` that defines it, and its help's first
#: sentence. ``rctl --help`` is written from this table, and a command line imports the
#: module of its own command only (a test keeps the table and the modules equal).
COMMANDS: dict[str, tuple[str, str]] = {
    "login": ("auth", "Log in: keep the URL and a token (never the password) in the config file."),
    "logout": ("auth", "Forget a context and its token."),
    "contexts": ("auth", "List the login contexts; the current one is starred."),
    "use-context": ("auth", "Make a context the current one."),
    "ping": ("auth", "Check that the server answers (no token needed)."),
    "version": ("auth", "Print rctl's version and, when a server is known, the server's."),
    "get": ("resources", "List resources of a kind, or show one by ref or natural key."),
    "create": (
        "resources",
        "Create the resources of a manifest (one, a list, or --- documents), in order.",
    ),
    "apply": (
        "resources",
        "Create or update each resource of a manifest (found by ref, else by natural key).",
    ),
    "delete": ("resources", "Delete resources; one that others still use is refused and named."),
    "describe": ("describe", "Show every field of a resource, and what it is tied to."),
    "edit": (
        "edit",
        "Edit a resource in $EDITOR; on a refusal the reasons are shown and the edit offered"
        " again (save it unchanged to give up).",
    ),
    "route": ("explain", "How routr would route a request from FROM to TO (nothing is sent)."),
    "trace": (
        "explain",
        "A call's SIP messages as a ladder (who sent what to whom, when); --pcap for Wireshark.",
    ),
    "locate": ("live", "Who is registered where: AOR, contact, transport, user agent, expiry."),
    "registry": ("live", "routr's own registrations to Gateways, and how they stand."),
    "calls": ("live", "Calls in progress and recent ones."),
    "bans": ("live", "Addresses banned for flooding or guessing passwords."),
    "unban": ("live", "Lift a ban."),
    "logs": ("system", "The server's recent log records; -f follows them."),
    "reload": ("system", "Re-read resources and configuration without a restart."),
    "completion": ("system", 'Print a shell completion script: eval "$(rctl completion bash)".'),
    "config": ("system", "The server's configuration."),
}


def command_set() -> typer.Typer:
    """The Typer of one module of ``rctl.commands``: plain help, as the main app's."""
    return typer.Typer(add_completion=False, rich_markup_mode=None)


def fail(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class _Plain(RuntimeParam):
    """A parameter's value as typer makes it, without pydantic. typer builds a pydantic
    TypeAdapter for each parameter of the command line it parses, and pydantic's import
    alone takes longer than ``rctl get``; rctl's parameters are strings, integers, flags and
    enum choices, which need none of it."""

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if isinstance(value, list | tuple):  # a list[...] parameter
            (element,) = get_args(self.annotation)
            return [self._one(element, v, param, ctx) for v in value]
        return self._one(self.annotation, value, param, ctx)

    def _one(self, kind: Any, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if kind is str:
            return str(value)
        if kind is bool:
            if isinstance(value, bool) or str(value).lower() in _TRUE + _FALSE:
                return value if isinstance(value, bool) else str(value).lower() in _TRUE
            raise BadParameter(f"{value!r} is not a boolean.", ctx=ctx, param=param)
        if _is_enum(kind):
            sensitive = self.parameter_info.case_sensitive
            try:
                return coerce_cli_choice(
                    value, choices=tuple(kind), case_sensitive=sensitive, ctx=ctx
                )
            except ValueError as exc:
                raise BadParameter(str(exc), ctx=ctx, param=param) from None
        try:
            number = int(value)
        except ValueError:
            raise BadParameter(f"{value!r} is not an integer.", ctx=ctx, param=param) from None
        low, high = self.parameter_info.min, self.parameter_info.max
        if low is not None and number < low:
            raise BadParameter(f"{number}: must be at least {low}.", ctx=ctx, param=param)
        if high is not None and number > high:
            raise BadParameter(f"{number}: must be at most {high}.", ctx=ctx, param=param)
        return number


def _is_enum(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Enum)


def plain_coercion(command: Command, ctx: Context) -> None:
    """Give ``command``'s parameters (its help option and its subcommands' too) the coercion
    of ``_Plain`` where it does what typer's would; others (paths, files) keep typer's.
    ``ctx`` is the command's or its parent's: both have the same help option names."""
    for param in command.get_params(ctx):
        if not isinstance(param, _TyperParameter) or param._runtime_param is not None:
            continue
        desc = param.type_descriptor
        info = desc.parameter_info
        if desc.is_file or desc.is_tuple or info.parser is not None or info.clamp:
            continue
        kind = get_args(desc.annotation)[0] if desc.is_list else desc.annotation
        if kind in (str, int, bool) or _is_enum(kind):
            param._runtime_param = _Plain(info, desc.annotation)
    subcommands = getattr(command, "commands", None)
    if isinstance(subcommands, dict):  # a built group, not the lazy ``_Commands``
        for sub in subcommands.values():
            plain_coercion(sub, ctx)


class _Commands(MutableMapping[str, Command]):
    """A group's commands, each built from its module the first time it is asked for."""

    def __init__(self) -> None:
        self.built: dict[str, Command] = {}
        self.modules: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self.built:
            if name not in COMMANDS:
                raise KeyError(name)
            self.built[name] = self._build(name)
        return self.built[name]

    def _build(self, name: str) -> Command:
        module = COMMANDS[name][0]
        if module not in self.modules:
            found = importlib.import_module(f"rctl.commands.{module}")
            self.modules[module] = typer.main.get_command(found.commands)
        built = self.modules[module]
        # typer makes a one-command Typer that command itself, not a group of one
        return built.commands[name] if isinstance(built, TyperGroup) else built

    def __setitem__(self, name: str, command: Command) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        del self.built[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(COMMANDS), **self.built})

    def __len__(self) -> int:
        return len({**dict.fromkeys(COMMANDS), **self.built})


class Group(TyperGroup):
    """rctl's commands, imported only when run (``COMMANDS``), and the one place errors are
    printed: every failure ends here as a line on stderr (exit 1; usage errors exit 2),
    whether rctl runs as a program or under a test's CliRunner: never a traceback."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        lazy = _Commands()
        lazy.built.update(self.commands)
        self.commands = lazy

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The list of ``rctl --help``, from ``COMMANDS``: no command module imported."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, make_default_short_help(line, limit)) for name, (_, line) in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        plain_coercion(self, ctx)
        return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            plain_coercion(command, ctx)
        return name, command, rest

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except NoArgsIsHelpError as exc:
            sys.stderr.write(exc.format_message() + "\n")
            sys.exit(2)
        except UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "rctl"
            fail(f"{exc.format_message()} (see {command} --help)")
            sys.exit(2)
        except ClickException as exc:
            fail(exc.format_message())
            sys.exit(exc.exit_code)
        except Abort:
            fail("aborted")
            sys.exit(1)
        except RctlError as exc:
            fail(exc.message)
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)
        except BrokenPipeError:  # `rctl get agents | head`: the reader has what it wanted
            sys.stderr.close()
            sys.exit(0)
        except Exception as exc:  # a bug of rctl's: still one line, naming what broke
            fail(f"internal error ({type(exc).__name__}: {exc}); please report it")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="rctl",
    cls=Group,
    help="Command-line client of the routr REST API.",
    no_args_is_help=True,
    add_completion=False,
    # rich help costs ~0.3 s of imports on every `rctl --help`; plain help is instant
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

COMPLETE_VAR = "_RCTL_COMPLETE"  # what the scripts of `rctl completion SHELL` set
OUTPUT = typer.Option(None, "--output", "-o", help="table, wide, json, yaml or name")


@app.callback()
def main_options(
    ctx: typer.Context,
    server: str | None = typer.Option(
        None, "--server", "-s", help="API URL, e.g. https://routr:4567 (else the context's)"
    ),
    context: str | None = typer.Option(None, "--context", help="use this login context"),
    insecure: bool = typer.Option(
        False, "--insecure", "-k", help="do not check the server's TLS certificate"
    ),
    ca: str | None = typer.Option(None, "--ca", help="trust the server certificates of FILE"),
    output: Format | None = OUTPUT,
) -> None:
    """rctl drives routr-server's REST API: resources, live tables, logs.

    Start with: rctl login https://HOST:4567 -u admin
    """
    ctx.obj = Options(server, context, insecure, ca, output)
