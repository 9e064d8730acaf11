"""``rctl``: kubectl-style client of the routr REST API (see docs/rctl.md)."""

from __future__ import annotations

from rctl.app import app
from rctl.commands import auth, edit, live, resources, system

__all__ = ["app", "auth", "edit", "live", "main", "resources", "system"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
