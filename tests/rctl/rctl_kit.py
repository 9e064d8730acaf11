"""Helpers of the rctl tests: rctl run in process or as a real program, manifests."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from rctl.cli import app

_serial = itertools.count(1)


@dataclass
class Outcome:
    code: int
    out: str
    err: str


class Rctl:
    """Runs rctl with its own config file: in process (CliRunner) or as the installed
    program (a real process, as an operator runs it)."""

    def __init__(self, config: Path, server: str) -> None:
        self.config = config
        self.server = server
        self.env = {"RCTL_CONFIG": str(config), "NO_COLOR": "1"}

    def __call__(self, *args: str, input: str | None = None) -> Outcome:
        result = CliRunner(env=self.env).invoke(app, list(args), input=input)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def process(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Outcome:
        done = subprocess.run(
            [sys.executable, "-m", "rctl.cli", *args],
            input=input,
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, **(env or {})},
            timeout=60,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, input: str | None = None) -> str:
        outcome = self(*args, input=input)
        assert outcome.code == 0, outcome
        return outcome.out


def unique_domain() -> str:
    return f"t{next(_serial)}.rctl.test"


def unique_user() -> str:
    return f"u{next(_serial):04d}"


def domain_doc(uri: str) -> dict[str, object]:
    return {
        "apiVersion": "v1beta1",
        "kind": "Domain",
        "metadata": {"name": f"Domain {uri}"},
        "spec": {"context": {"domainUri": uri}},
    }


def agent_yaml(username: str, secret: str, domain: str, name: str = "") -> str:
    return (
        "- apiVersion: v1beta1\n"
        "  kind: Agent\n"
        f"  metadata: {{name: {name or 'Agent ' + username}}}\n"
        f"  spec: {{credentials: {{username: '{username}', secret: '{secret}'}}, "
        f"domains: [{domain}]}}\n"
    )
