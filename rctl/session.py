"""The global options of a command line, and the client they make (server, token, TLS)."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from rctl import config
from rctl.client import Client, Target
from rctl.errors import RctlError
from rctl.output import Format

LOGIN = "rctl login URL -u USER"


@dataclass
class Options:
    server: str | None = None
    context: str | None = None
    insecure: bool = False
    ca: str | None = None
    output: Format | None = None

    def format(self, given: Format | None, default: Format = Format.table) -> Format:
        """A command's ``-o`` beats the global one."""
        return given or self.output or default


def options(ctx: typer.Context) -> Options:
    found = ctx.find_object(Options)
    return found if found is not None else Options()


def verify(opts: Options, context: config.Context | None = None) -> bool | str:
    if opts.insecure or (context is not None and context.insecure and not opts.ca):
        return False
    return opts.ca or (context.ca if context is not None and context.ca else True)


def login_hint(server: str, user: str = "") -> str:
    return f"rctl login {server} -u {user or 'USER'}"


def target(opts: Options, need_token: bool = True) -> Target:
    """Where a command goes: ``--server`` (with the token of a context for that server, if
    any), else ``--context`` or the current context."""
    cfg = config.load()
    if opts.server:
        context = cfg.context(opts.context) if opts.context else cfg.for_server(opts.server)
        if context is not None and not config.same_server(context.server, opts.server):
            context = None
        token = context.token if context is not None else ""
        user = context.user if context is not None else ""
        return Target(opts.server, token, verify(opts, context), login_hint(opts.server, user))
    context = cfg.context(opts.context)
    if context is None:
        if opts.context:
            names = ", ".join(sorted(cfg.contexts)) or "none"
            raise RctlError(f"no context named {opts.context!r} (contexts: {names})")
        raise RctlError(f"not logged in: run {LOGIN} first (or pass --server URL)")
    if need_token and not context.token:
        raise RctlError(f"not logged in to {context.server}: run {login_hint(context.server)}")
    hint = login_hint(context.server, context.user)
    return Target(context.server, context.token, verify(opts, context), hint)


def client(ctx: typer.Context, need_token: bool = True) -> Client:
    made = Client(target(options(ctx), need_token))
    ctx.call_on_close(made.close)
    return made
