"""Developer sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``bench``, ``fuzz``."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, against real sockets (and Redis/NATS when present)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "-ra", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    paths = ("routr", "rctl", "tests", "bench", "fuzz", "noxfile.py")
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[lint,test]")
    session.run("mypy")
    session.run("mypy", "fuzz")  # scripts, not a package: checked on their own


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: parser micro-benchmarks and SIPp against the real server."""
    session.install("-e", ".")
    session.run("python", "-m", "bench", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """Ten minutes of calls and registrations with memory watched (bench/soak.py)."""
    session.install("-e", ".")
    session.run("python", "-m", "bench.soak", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Atheris on the message, URI, digest and framing targets, one after the other:
    ``nox -s fuzz -- [--minutes M] [TARGET ...]`` (8 minutes each by default)."""
    session.install("-e", ".", "atheris>=2.3")
    session.run("python", "fuzz/run.py", *session.posargs)
