"""Login contexts: ``~/.config/rctl/config.yaml`` (mode 0600), or the file ``$RCTL_CONFIG``.

Each context holds a server URL, the user, the token and the TLS choices made at login;
never a password. ``RCTL_CONFIG`` lets scripts and tests keep their own file, away from the
operator's.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rctl.errors import RctlError

CONFIG_ENV = "RCTL_CONFIG"


def config_path() -> Path:
    given = os.environ.get(CONFIG_ENV)
    if given:
        return Path(given)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rctl" / "config.yaml"


@dataclass
class Context:
    name: str
    server: str
    user: str = ""
    token: str = ""
    insecure: bool = False
    ca: str | None = None


@dataclass
class Config:
    current: str | None = None
    contexts: dict[str, Context] = field(default_factory=dict)

    def context(self, name: str | None = None) -> Context | None:
        wanted = name or self.current
        return self.contexts.get(wanted) if wanted else None

    def for_server(self, server: str) -> Context | None:
        return next((c for c in self.contexts.values() if same_server(c.server, server)), None)


def same_server(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def _context(name: str, raw: Any) -> Context:
    if not isinstance(raw, dict) or not isinstance(raw.get("server"), str):
        raise RctlError(f"{config_path()}: context {name!r} has no server; log in again")
    return Context(
        name=name,
        server=raw["server"],
        user=str(raw.get("user") or ""),
        token=str(raw.get("token") or ""),
        insecure=bool(raw.get("insecure", False)),
        ca=str(raw["ca"]) if raw.get("ca") else None,
    )


def load() -> Config:
    path = config_path()
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise RctlError(f"{path}: {exc.strerror}") from None
    import yaml  # here: without a file (`rctl version` before any login) no YAML to read

    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise RctlError(f"{path}: not YAML; fix it or remove it and log in again") from None
    if not isinstance(raw, dict):
        raise RctlError(f"{path}: expected a mapping; remove it and log in again")
    contexts = {}
    for entry in raw.get("contexts") or []:
        if isinstance(entry, dict) and entry.get("name"):
            name = str(entry["name"])
            contexts[name] = _context(name, entry)
    current = raw.get("current-context")
    return Config(str(current) if current else None, contexts)


def save(config: Config) -> Path:
    """Write atomically, readable by its owner only: the file holds tokens."""
    import yaml

    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {
        "current-context": config.current,
        "contexts": [
            {k: v for k, v in asdict(c).items() if v not in (None, "")}
            for c in config.contexts.values()
        ],
    }
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()  # a leftover, or a link planted there: never written through
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.safe_dump(data, out, sort_keys=False)
    os.chmod(temp, 0o600)  # a umask cannot widen it, but an existing temp file could be wider
    os.replace(temp, path)
    return path
