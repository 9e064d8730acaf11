"""The server's own keys (Record-Route tokens, digest nonces), shared by every process and
node of one deployment so that each accepts what another issued.

One master secret is kept where the deployment's data is: a ``.routr-secret`` file in the
files provider's folder (mode 0600), a Redis key with the Redis provider, or given in the
config (``spec.security.secret``, env ``ROUTR_SECRET``). Each use gets its own key derived
from it, so a key learnt from one use says nothing of the other.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .provider import DataProvider

log = logging.getLogger(__name__)

SECRET_FILE = ".routr-secret"
_MASTER_BYTES = 32


@dataclass(frozen=True, slots=True)
class Secrets:
    """Keys derived from one master secret; ``source`` says where the master lives."""

    # repr=False: a Secrets in a log line or a traceback's locals shows where, never what
    route_key: bytes = field(repr=False)
    nonce_key: bytes = field(repr=False)
    source: str
    #: signs the REST API's tokens (so every node accepts every node's tokens)
    token_key: bytes = field(default=b"", repr=False)

    @classmethod
    def derive(cls, master: bytes, source: str) -> Secrets:
        def key(label: bytes) -> bytes:
            return hmac.new(master, b"routr " + label, hashlib.sha256).digest()

        return cls(key(b"record-route"), key(b"nonce"), source, key(b"api-token"))


def folder_secret(folder: Path) -> bytes:
    """The master secret in ``folder``, created on first use. It is written whole to a
    temporary file and linked into place, so it is never seen half-written (a crash leaves
    no empty file behind) and, of several processes starting together, the first link wins
    and the others read that one."""
    path = folder / SECRET_FILE
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".routr-secret.")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(_MASTER_BYTES) + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    try:
        value = path.read_bytes().strip()
    except OSError as exc:
        raise OSError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(value) < 16:
        raise OSError(f"{path}: not a secret (too short); delete it to have a new one made")
    return value


async def load_secrets(provider: DataProvider, configured: str | None = None) -> Secrets:
    """The deployment's keys: from the config, else from the data source, else (a data
    source that cannot keep one) random for this process alone, which is logged."""
    if configured:
        return Secrets.derive(configured.encode(), "config")
    master = await provider.shared_secret()
    if master is not None:
        return Secrets.derive(master, provider.name)
    log.warning(
        "%s keeps no shared secret: nonces and Record-Routes of this process are not "
        "accepted by others (set spec.security.secret to share them)",
        provider.name,
    )
    return Secrets.derive(secrets.token_bytes(_MASTER_BYTES), "this process")
