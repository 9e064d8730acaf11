"""Session-wide: every server's whole log is kept, and at the end no log may hold a secret.

``support.server.RoutrProcess`` (which ``support.api.start_server`` uses) writes each
server's output to a file in a folder of the session's base temporary directory. When the
session ends, every kept log is searched for the tests' secrets (``TEST_SECRETS``), the API
tokens issued through ``support.api.token`` and each server's master secret; any found
fails the session, naming the file, the test that started the server and the secret.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import support.server

#: Tests whose servers are given a secret to log on purpose: node-id prefix -> why.
#: (None today; an entry here keeps that test's logs out of the check, and says so.)
LOGS_ALLOWED_SECRETS: dict[str, str] = {}

_found: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _keep_server_logs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Before any server starts (autouse fixtures of a scope come first)."""
    support.server.LOG_DIR = tmp_path_factory.mktemp("server-logs")


def _excluded(log: Path) -> str | None:
    with log.open(encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    for prefix, why in LOGS_ALLOWED_SECRETS.items():
        if first.startswith(f"# started by {prefix}"):
            return why
    return None


def secrets_in_logs(folder: Path) -> list[str]:
    """One line per (log file, secret) found."""
    wanted = {**support.server.TEST_SECRETS, **support.server.RUN_SECRETS}
    found = []
    for log in sorted(folder.glob("*.log")):
        if _excluded(log) is not None:
            continue
        text = log.read_text(encoding="utf-8", errors="replace")
        for secret, what in wanted.items():
            if secret in text:
                line = next(n for n, row in enumerate(text.splitlines(), 1) if secret in row)
                started = text.split("\n", 1)[0].removeprefix("# started by ")
                found.append(f"{log}:{line} ({started}): {secret[:12]}... ({what})")
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    folder = support.server.LOG_DIR
    if folder is None or not folder.is_dir():
        return
    _found[:] = secrets_in_logs(folder)
    if _found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _found:
        terminalreporter.section("secrets in server logs", sep="=", red=True, bold=True)
        for line in _found:
            terminalreporter.line(line)
        terminalreporter.line(f"{len(_found)} secrets found in the kept server logs: failing")
