"""``rctl``: kubectl-style client of the routr REST API..

The REST API is not built yet; until it is, rctl only knows ``version``.
"""

from __future__ import annotations

import typer

from routr import __version__

app = typer.Typer(
    name="rctl",
    help="Command-line client of the routr REST API.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def version() -> None:
    """Print rctl's version."""
    typer.echo(f"rctl {__version__}")


@app.callback()
def main_options() -> None:
    """rctl talks to routr-server's REST API (not available yet)."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
