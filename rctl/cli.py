"""``rctl``: kubectl-style client of the routr REST API (see docs/rctl.md)."""

from __future__ import annotations

import os

from rctl.app import COMPLETE_VAR, app

__all__ = ["app", "main"]


def main() -> None:
    if os.environ.get(COMPLETE_VAR):
        # typer registers its shell classes only with add_completion, whose two extra
        # options cost every start; a completion request registers them itself
        from typer._completion_classes import completion_init

        completion_init()
    app(prog_name="rctl")


if __name__ == "__main__":
    main()
