"""rctl starts fast: what the installed program imports for a command line (never timed
here: a loaded machine would make such a test lie). What a command does not need is not
imported; a module imported after all names the change that brought the cost back."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from rctl_kit import Rctl

from rctl.app import COMMANDS

#: Slow to import, and needed by no command line below: the server (``routr`` alone is its
#: version), pydantic (typer reaches for it to coerce parameters), rich (tables are written
#: by hand; rich draws live tables only), click and pygments (httpx's command-line tool).
HEAVY = {"fastapi", "starlette", "pydantic", "pydantic_core", "rich", "click", "pygments"}


#: Runs the installed program as its own script does, then names every module imported,
#: on stderr's last line: ``sys.modules`` holds what ``-X importtime`` misses (modules loaded
#: with importlib, as rctl loads its commands).
_RUN = """
import atexit, runpy, sys
atexit.register(lambda: sys.stderr.write("\\nimported: " + " ".join(sorted(sys.modules)) + "\\n"))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _imported(rctl: Rctl, *args: str) -> set[str]:
    """The modules the installed ``rctl ARGS`` imports; it must succeed."""
    program = Path(sys.executable).with_name("rctl")
    assert program.exists(), f"rctl is not installed next to {sys.executable}"
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(program), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **rctl.env},
    )
    *errors, last = done.stderr.rstrip("\n").split("\n")
    assert done.returncode == 0, errors
    assert last.startswith("imported: "), done.stderr
    modules = set(last.split()[1:])
    assert "rctl.app" in modules
    return modules


def _heavy(modules: set[str]) -> list[str]:
    return sorted(
        m for m in modules if m.split(".")[0] in HEAVY or m.startswith(("routr.", "typer._ad"))
    )


def _command_modules(modules: set[str]) -> set[str]:
    return {m.rsplit(".", 1)[1] for m in modules if m.startswith("rctl.commands.")}


def test_help_imports_neither_commands_nor_client_libraries(rctl_out: Rctl) -> None:
    for args in (("--help",), ("get", "--help"), ("config", "describe", "--help")):
        modules = _imported(rctl_out, *args)
        assert _heavy(modules) == [], args
        assert not {"httpx", "yaml", "routr"} & modules, args
    assert _command_modules(_imported(rctl_out, "--help")) == set()
    assert _command_modules(_imported(rctl_out, "get", "--help")) == {"resources"}


def test_version_without_a_server_imports_only_the_version(rctl_out: Rctl) -> None:
    modules = _imported(rctl_out, "version")  # not logged in: the client's version only
    assert _heavy(modules) == []
    assert not {"httpx", "yaml"} & modules
    assert _command_modules(modules) == {"auth"}


def test_get_imports_the_client_but_nothing_heavy(rctl: Rctl) -> None:
    modules = _imported(rctl, "get", "agents")
    assert {"httpx", "yaml"} <= modules  # the request, and the config file
    assert _heavy(modules) == []
    assert _command_modules(modules) == {"resources"}
    for args in (("get", "users", "-o", "json"), ("logs", "-n", "1")):
        assert _heavy(_imported(rctl, *args)) == [], args


def test_the_command_table_is_the_commands() -> None:
    """``rctl --help`` lists ``COMMANDS`` without importing a module: each line must be
    the command's own help, and each command of each module must be in it."""
    found: dict[str, tuple[str, str]] = {}
    for module in sorted({m for m, _ in COMMANDS.values()}):
        built = typer.main.get_command(importlib.import_module(f"rctl.commands.{module}").commands)
        commands = getattr(built, "commands", None) or {str(built.name): built}
        for name, command in commands.items():
            found[name] = (module, command.get_short_help_str(limit=1000))
    assert found == COMMANDS


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("logs", "-n", "0"), "0: must be at least 1"),
        (("logs", "-n", "x"), "'x' is not an integer"),
        (("get", "agents", "-o", "xml"), "'xml' is not one of 'table', 'wide', 'json'"),
        (("logs", "--level", "loud"), "'loud' is not one of 'debug', 'info'"),
    ],
)
def test_parameters_checked_without_pydantic_still_say_why(
    rctl: Rctl, args: tuple[str, ...], error: str
) -> None:
    outcome = rctl(*args)
    assert outcome.code == 2 and outcome.err.count("\n") == 1 and error in outcome.err


def test_values_reach_the_commands_as_typed(rctl: Rctl) -> None:
    """Coerced without pydantic: a list of refs, an enum choice, a number, a flag."""
    assert rctl("delete", "agent", "ag-none-1", "ag-none-2").err.count("not found") == 2
    assert rctl("-o", "json", "get", "users").out.lstrip().startswith("[")
    assert len(json.loads(rctl.ok("logs", "-n", "2", "-o", "json"))) <= 2
    assert rctl("--insecure", "get", "users", "-o", "name").out.startswith("user/")
