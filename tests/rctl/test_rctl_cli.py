"""What rctl does before and around the API: arguments, unreachable servers, colour,
completion, and the tables it shares with routr.models (start-up cost: test_rctl_startup)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from rctl_kit import Rctl, Terminal

from rctl import client as rctl_client
from rctl import kinds as rctl_kinds
from rctl.commands import auth as auth_commands
from routr.models import KINDS, PLURALS, kind_of
from routr.models.api import API_VERSION


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_is_named(rctl_out: Rctl) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    for outcome in (rctl_out.process("--server", url, "ping"),
                    rctl_out("login", url, "-u", "admin", "-p", "x")):  # fmt: skip
        assert outcome.code == 1
        assert outcome.err.startswith(f"error: cannot reach the server at {url}")
        assert outcome.err.count("\n") == 1 and "Traceback" not in outcome.err


@pytest.mark.parametrize(
    "args",
    [
        ("get",),
        ("get", "agents", "-o", "xml"),
        ("get", "agents", "--bogus"),
        ("completion", "tcsh"),
        ("nosuchcommand",),
    ],
)
def test_bad_arguments_are_one_line(rctl: Rctl, args: tuple[str, ...]) -> None:
    outcome = rctl(*args)
    assert outcome.code == 2
    assert outcome.err.startswith("error: ") and outcome.err.count("\n") == 1
    assert "--help" in outcome.err


def test_bad_arguments_of_the_real_program(rctl: Rctl) -> None:
    outcome = rctl.process("delete", "agent")
    assert outcome.code == 2 and outcome.err.count("\n") == 1 and "REF" in outcome.err


def test_no_colour_in_a_pipe_or_with_no_color(rctl: Rctl) -> None:
    piped = rctl.process("get", "users", env={"NO_COLOR": ""})
    assert piped.code == 0 and "\x1b[" not in piped.out and piped.out.startswith("REF")


def test_completion_scripts(rctl_out: Rctl) -> None:
    for shell, marker in (("bash", "complete -o default -F"), ("zsh", "#compdef rctl"),
                          ("fish", "complete --command rctl")):  # fmt: skip
        outcome = rctl_out.process("completion", shell)
        assert outcome.code == 0 and marker in outcome.out and "_RCTL_COMPLETE" in outcome.out
    # and the program answers the script's questions
    done = subprocess.run(
        [sys.executable, "-m", "rctl.cli"],
        env={
            **os.environ,
            "_RCTL_COMPLETE": "complete_bash",
            "COMP_WORDS": "rctl lo",
            "COMP_CWORD": "1",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert {"locate", "login", "logout", "logs"} <= set(done.stdout.split())


def test_kind_names_agree_with_routr_models() -> None:
    assert tuple(k.name for k in rctl_kinds.KINDS) == KINDS
    for kind in rctl_kinds.KINDS:
        assert PLURALS[kind.name] == kind.plural
        for alias in (kind.lower, kind.plural):
            assert kind_of(alias) == kind.name == rctl_kinds.kind_named(alias).name
    assert rctl_client.API_VERSION == API_VERSION


def test_colour_on_a_terminal_unless_no_color(rctl: Rctl) -> None:
    coloured = Terminal(rctl, "get", "users", env={"NO_COLOR": ""}).finish()
    assert "\x1b[1mREF" in coloured
    plain = Terminal(rctl, "get", "users", env={"NO_COLOR": "1"}).finish()
    assert "REF" in plain and "\x1b[" not in plain


def test_version_warns_when_the_api_versions_differ(
    rctl: Rctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth_commands, "API_VERSION", "v9")
    outcome = rctl("version")
    assert outcome.code == 0
    assert outcome.err.startswith("warning: the server speaks API v1beta1, this rctl v9")
