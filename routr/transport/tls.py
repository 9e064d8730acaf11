"""TLS server contexts from PEM files or a PKCS#12 keystore."""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)

from routr.models.config import SecurityContext

_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


class TlsConfigError(Exception):
    """Certificates that cannot be loaded; the text names the file and the problem."""


def server_context(sec: SecurityContext) -> ssl.SSLContext:
    """A server-side context for the TLS and WSS listeners."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = [_VERSIONS[v] for v in sec.client.protocols if v in _VERSIONS]
    if versions:
        ctx.minimum_version = min(versions)
        ctx.maximum_version = max(versions)
    try:
        if sec.key_store:
            _load_pkcs12(ctx, Path(sec.key_store), sec.key_store_password)
        elif sec.cert_file and sec.key_file:
            ctx.load_cert_chain(sec.cert_file, sec.key_file)
        else:
            raise TlsConfigError("securityContext: no certFile/keyFile or keyStore")
        if sec.ca_file:
            ctx.load_verify_locations(sec.ca_file)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise TlsConfigError(f"securityContext: cannot load certificates: {exc}") from None
    if sec.client.auth_type in ("Required", "Needed"):
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif sec.client.auth_type in ("Optional", "Wanted"):
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _load_pkcs12(ctx: ssl.SSLContext, path: Path, password: str | None) -> None:
    key, cert, extra = pkcs12.load_key_and_certificates(
        path.read_bytes(), password.encode() if password else None
    )
    if key is None or cert is None:
        raise ValueError(f"{path}: keystore holds no key and certificate")
    # ssl loads chains from files only: write a private PEM copy and remove it at once.
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    pem += cert.public_bytes(Encoding.PEM)
    for extra_cert in extra:
        pem += extra_cert.public_bytes(Encoding.PEM)
    fd, name = tempfile.mkstemp(suffix=".pem")
    try:
        os.write(fd, pem)
        os.close(fd)
        ctx.load_cert_chain(name)
    finally:
        os.unlink(name)
