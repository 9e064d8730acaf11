"""The one error rctl shows: a line (or, for field problems, a few) on stderr, exit 1."""

from __future__ import annotations


class RctlError(Exception):
    """Something the user can act on; ``main`` prints it without a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(RctlError):
    """The server answered with an error status; ``reason`` is its sentence."""

    def __init__(self, status: int, message: str, reason: str, data: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.data = data
