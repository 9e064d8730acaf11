"""Typed data errors; ``status`` is the HTTP status the REST layer answers with."""

from __future__ import annotations

from routr.models import FieldProblem


class DataError(Exception):
    """Base of every data source error."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DataError):
    status = 404


class AlreadyExists(DataError):
    """Same ref or same natural key (domainUri, username, telUrl, host:port) as another."""

    status = 409


class UnfulfilledDependency(DataError):
    """The resource points at something that does not exist (a Domain, a Gateway, a Number)."""

    status = 409


class DependentObjects(DataError):
    """The change would leave other resources pointing at nothing."""

    status = 409


class InvalidResource(DataError):
    status = 422

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class InvalidFilter(DataError):
    status = 400


class ProviderUnavailable(DataError):
    """The backing store (Redis, the HTTP service) cannot be reached or refused us."""

    status = 503


class BrokenSource(DataError):
    """A write to a resource file that currently holds a broken hand edit."""

    status = 409
