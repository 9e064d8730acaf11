"""The Typer application, its global options, and the one place errors are printed."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup
from typer.exceptions import Abort

from rctl.errors import RctlError
from rctl.output import Format
from rctl.session import Options


def fail(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


class Group(TyperGroup):
    """Every failure ends here as a line on stderr (exit 1; usage errors exit 2), whether
    rctl runs as a program or under a test's CliRunner: never a traceback."""

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
