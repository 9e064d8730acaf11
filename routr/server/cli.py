"""``routr-server``: the command line of the server."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from routr import __version__
from routr.models.config import ConfigError, config_path, load_config
from routr.server.app import Server, StartError
from routr.server.logs import setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="routr-server",
        description="routr: SIP proxy, registrar and location server. Runs in the "
        "foreground; SIGTERM or SIGINT stops it gracefully.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config.yml (Routr v1 format). Default: $CONFIG_FILE, else config/config.yml "
        "when it exists, else the embedded defaults (UDP/TCP 5060, WS 5062).",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="folder of the YAML resource files (files data provider), relative to the "
        "current directory; it must exist. Default: dataSource of the config file, else config/",
    )
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N", help="worker processes (default 1)"
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="default: info (env LOG_LEVEL)",
    )
    parser.add_argument(
        "--log-format", default="text", choices=["text", "json"], help="text or JSON lines"
    )
    parser.add_argument("--version", action="version", version=f"routr-server {__version__}")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    path = config_path(args.config, os.environ)
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"routr-server: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.workers != 1:
        print("routr-server: --workers other than 1 is not supported yet", file=sys.stderr)
        sys.exit(2)
    server = Server(config, data_dir=args.data, config_path=path)
    try:
        _run(server.run())
    except StartError as exc:
        # once, to stderr: the log stream is stdout, and a second copy there reads as two errors
        print(f"routr-server: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        pass
    sys.exit(0)


def _run(coro: object) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(coro)  # type: ignore[arg-type]
    else:
        uvloop.run(coro)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
