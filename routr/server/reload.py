"""``POST /system/reload``: re-read resources and the config file without a restart.

Resources always reload. Of the config file, the settings read per request are applied
at once (below); every other change is listed as needing a restart and not applied, so
the running configuration stays one consistent whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from routr.api.errors import BadRequest
from routr.events import ConfigReloaded
from routr.models import KINDS
from routr.models.config import ConfigError, load_config

if TYPE_CHECKING:
    from routr.server.app import Server

_log = logging.getLogger("routr.server")

Apply = Callable[["Server", Any], None]


def _guard(attr: str) -> Apply:
    def apply(server: Server, value: Any) -> None:
        assert server.sip is not None
        setattr(server.sip.guard, attr, value)

    return apply


def _registrar(server: Server, value: Any) -> None:
    assert server.sip is not None
    server.sip.registrar.config = value


#: Config paths (by alias) applied to the running server, and how.
RELOADABLE: dict[str, tuple[tuple[str, ...], Apply]] = {
    "spec.security.blockScanners": (
        ("spec", "security", "block_scanners"), _guard("block_scanners")),
    "spec.security.floodBan.requests": (
        ("spec", "security", "flood_ban", "requests"), _guard("flood_requests")),
    "spec.security.floodBan.seconds": (
        ("spec", "security", "flood_ban", "seconds"), _guard("flood_seconds")),
    "spec.security.floodBan.banSeconds": (
        ("spec", "security", "flood_ban", "ban_seconds"), _guard("flood_ban")),
    "spec.security.authFailureBan.banSeconds": (
        ("spec", "security", "auth_failure_ban", "ban_seconds"), _guard("auth_ban")),
    "spec.registrar": (("spec", "registrar"), _registrar),
}  # fmt: skip


def changed_paths(old: Any, new: Any, path: str = "") -> list[str]:
    """Alias paths whose values differ (``spec.security.floodBan.requests``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted({*old, *new}):
            out += changed_paths(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return out
    return [] if old == new else [path]


def _get(model: Any, attrs: tuple[str, ...]) -> Any:
    for attr in attrs:
        model = getattr(model, attr)
    return model


def _with(model: BaseModel, attrs: tuple[str, ...], value: Any) -> Any:
    """A copy of frozen ``model`` with the field at ``attrs`` replaced."""
    if not attrs:
        return value
    head, rest = attrs[0], attrs[1:]
    return model.model_copy(update={head: _with(getattr(model, head), rest, value)})


async def reload_server(server: Server) -> dict[str, Any]:
    assert server.provider is not None and server.sip is not None
    new = None
    if server.config_path is not None:
        # read first: a config file that does not load leaves everything as it was
        try:
            new = await asyncio.to_thread(load_config, server.config_path)
        except ConfigError as exc:
            raise BadRequest(f"nothing reloaded: {exc}") from None
    await server.provider.refresh()
    snapshot = server.provider.current()
    counts = {kind: len(snapshot.items(kind)) for kind in KINDS}
    applied: list[str] = []
    restart: list[str] = []
    if new is not None:
        old = server.config
        diff = changed_paths(old.model_dump(mode="json", by_alias=True),
                             new.model_dump(mode="json", by_alias=True))  # fmt: skip
        running = old
        for path in diff:
            key = next((k for k in RELOADABLE if path == k or path.startswith(k + ".")), None)
            if key is None:
                restart.append(path)
                continue
            if key in applied:
                continue
            attrs, apply = RELOADABLE[key]
            value = _get(new, attrs)
            apply(server, value)
            running = _with(running, attrs, value)
            applied.append(key)
        server.config = running
        if server.api is not None:
            server.api.ctx.config = running
    source = server.data_description()
    server.bus.emit(ConfigReloaded(timestamp=server.sip.clock(), counts=counts, source=source))
    if restart:
        _log.warning("reload: %s changed; takes effect after a restart", ", ".join(restart))
    return {
        "resources": counts,
        "config": str(server.config_path) if server.config_path else None,
        "applied": applied,
        "needsRestart": restart,
    }
