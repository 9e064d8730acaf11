"""login, logout, contexts, use-context, ping, version."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import typer

from rctl import config
from rctl.app import command_set
from rctl.client import API_VERSION, Client, Target
from rctl.errors import ApiError, RctlError
from rctl.output import emit, table_lines
from rctl.session import client, options, target, verify
from rctl.views import duration

commands = command_set()


def _normal_url(url: str) -> str:
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RctlError(f"{url}: not an http(s) URL, e.g. https://routr.example.com:4567")
    return f"{parts.scheme}://{parts.netloc}".rstrip("/")


def _fingerprint(url: str) -> str:
    """SHA-256 of the server's certificate, for a person to compare with the server's."""
    import hashlib
    import ssl

    parts = urlsplit(url)
    try:
        pem = ssl.get_server_certificate((parts.hostname or "", parts.port or 443), timeout=10)
    except OSError:
        return "unknown"
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _password(given: str | None) -> str:
    if given == "-":
        return sys.stdin.readline().rstrip("\r\n")
    if given is not None:
        return given
    value: str = typer.prompt("Password", hide_input=True)
    return value


@commands.command()
def login(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="the API's URL, e.g. https://routr:4567"),
    user: str = typer.Option(..., "--user", "-u", help="an API User's username"),
    password: str | None = typer.Option(
        None, "--password", "-p", help="its secret; '-' reads it from stdin; else a prompt"
    ),
    name: str | None = typer.Option(
        None, "--name", help="the context to save it as (default: the URL's host:port)"
    ),
) -> None:
    """Log in: keep the URL and a token (never the password) in the config file."""
    opts = options(ctx)
    server = _normal_url(url)
    secret = _password(password)
    if server.startswith("https://") and (opts.insecure or opts.ca):
        sys.stderr.write(f"server certificate SHA-256 fingerprint: {_fingerprint(server)}\n")
    tls = verify(opts)
    api = Client(Target(server, verify=tls))
    ctx.call_on_close(api.close)
    try:
        token = api.data("GET", "/token", auth=(user, secret))
    except ApiError as exc:
        if exc.status == 401:
            raise RctlError(f"login to {server} failed: {exc.reason}") from None
        raise
    except RctlError as exc:
        if "certificate" not in exc.message:
            raise
        # the fingerprint lets a person check, against the server's log, what --insecure trusts
        raise RctlError(f"{exc.message}; its SHA-256 fingerprint: {_fingerprint(server)}") from None
    if not isinstance(token, str) or not token:
        raise RctlError(f"{server} did not answer a token: is it routr?")
    cfg = config.load()
    context_name = name or opts.context or urlsplit(server).netloc
    cfg.contexts[context_name] = config.Context(
        context_name,
        server,
        user,
        token,
        insecure=tls is False,
        ca=os.path.abspath(opts.ca) if opts.ca else None,  # the next command runs elsewhere
    )
    cfg.current = context_name
    path = config.save(cfg)
    emit(f"logged in to {server} as {user} (context {context_name!r}, saved in {path})")


@commands.command()
def logout(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="the context to forget (default: current)"),
) -> None:
    """Forget a context and its token."""
    cfg = config.load()
    wanted = name or options(ctx).context or cfg.current
    if not wanted or wanted not in cfg.contexts:
        raise RctlError(f"no context named {wanted!r}" if wanted else "not logged in")
    server = cfg.contexts.pop(wanted).server
    if cfg.current == wanted:
        cfg.current = next(iter(cfg.contexts), None)
    config.save(cfg)
    emit(f"logged out of {server} (context {wanted!r} removed)")


@commands.command()
def contexts() -> None:
    """List the login contexts; the current one is starred."""
    cfg = config.load()
    if not cfg.contexts:
        raise RctlError("no contexts: run rctl login URL -u USER")
    rows = [
        ["*" if c.name == cfg.current else "", c.name, c.server, c.user]
        for c in cfg.contexts.values()
    ]
    emit("\n".join(table_lines(["CURRENT", "NAME", "SERVER", "USER"], rows)))


@commands.command("use-context")
def use_context(name: str = typer.Argument(..., help="a context from rctl contexts")) -> None:
    """Make a context the current one."""
    cfg = config.load()
    if name not in cfg.contexts:
        names = ", ".join(sorted(cfg.contexts)) or "none"
        raise RctlError(f"no context named {name!r} (contexts: {names})")
    cfg.current = name
    config.save(cfg)
    emit(f"switched to context {name!r} ({cfg.contexts[name].server})")


@commands.command()
def ping(ctx: typer.Context) -> None:
    """Check that the server answers (no token needed)."""
    api = client(ctx, need_token=False)
    status = api.get("/system/status") or {}
    emit(
        f"{api.target.server} is {status.get('status', 'up')}: routr {status.get('version')}, "
        f"up {duration(status.get('uptime'))}"
    )


@commands.command()
def version(ctx: typer.Context) -> None:
    """Print rctl's version and, when a server is known, the server's."""
    from routr import __version__

    emit(f"Client: rctl {__version__} (API {API_VERSION})")
    try:
        where = target(options(ctx), need_token=False)
    except RctlError:
        return  # no server known: the client's version is all there is to say
    api = Client(where)
    ctx.call_on_close(api.close)
    status = api.get("/system/status") or {}
    server_api = status.get("apiVersion")
    emit(f"Server: routr {status.get('version')} (API {server_api}) at {where.server}")
    if server_api != API_VERSION:
        sys.stderr.write(
            f"warning: the server speaks API {server_api}, this rctl {API_VERSION}: "
            "some commands may fail; use an rctl of the server's version\n"
        )
