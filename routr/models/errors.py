"""Turn pydantic validation errors into ``path: problem`` lines a person can act on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One invalid field: ``path`` like ``spec.credentials.username``."""

    path: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "problem": self.problem}

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem


def format_path(loc: tuple[int | str, ...]) -> str:
    """``('spec', 'domains', 0)`` -> ``spec.domains[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _count(n: Any, kind: str) -> str:
    unit = "character" if kind.startswith("string") else "item"
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _problem(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("string_too_short", "too_short"):
        return f"at least {_count(ctx.get('min_length'), kind)}"
    if kind in ("string_too_long", "too_long"):
        return f"at most {_count(ctx.get('max_length'), kind)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return "has an invalid format"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"][0].lower() + err["msg"][1:] if err["msg"] else kind


def problems(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[FieldProblem]:
    """Each error of ``exc`` as a path and a short problem."""
    return [FieldProblem(format_path(prefix + tuple(e["loc"])), _problem(e)) for e in exc.errors()]


def describe(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> str:
    """All problems on one line, ``; `` separated."""
    return "; ".join(str(p) for p in problems(exc, prefix))


class ManifestError(ValueError):
    """A YAML manifest that cannot be read or holds an invalid resource."""

    def __init__(
        self,
        source: str,
        problems: list[FieldProblem],
        line: int | None = None,
    ) -> None:
        self.source = source
        self.problems = problems
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: " + "; ".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    """One entry of a resource file left out while the others load: ``line`` is where the
    problem is, ``subject`` names the entry the way its author knows it."""

    source: str
    line: int
    subject: str  # e.g. "Agent 'John Doe' (username 1003)"
    problem: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.subject}: {self.problem}; not loaded"
