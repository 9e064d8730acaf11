"""TLS server contexts from PEM files or a PKCS#12 keystore."""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
from collections.abc import Iterator
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
    files = _named_files(sec)
    if not files:
        raise TlsConfigError("securityContext: no certFile/keyFile or keyStore")
    for key, name in files.items():
        _check_readable(key, name)
    if sec.key_store:
        with _naming({"keyStore": sec.key_store}):
            _load_pkcs12(ctx, Path(sec.key_store), sec.key_store_password)
    elif sec.cert_file and sec.key_file:
        with _naming({"certFile": sec.cert_file, "keyFile": sec.key_file}):
            _load_pem_chain(ctx, sec.cert_file, sec.key_file)
    if sec.ca_file:
        with _naming({"caFile": sec.ca_file}):
            ctx.load_verify_locations(sec.ca_file)
    if sec.client.auth_type in ("Required", "Needed"):
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif sec.client.auth_type in ("Optional", "Wanted"):
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _named_files(sec: SecurityContext) -> dict[str, str]:
    """The files the context is built from, by their key in config.yml."""
    if sec.key_store:
        files = {"keyStore": sec.key_store}
    elif sec.cert_file and sec.key_file:
        files = {"certFile": sec.cert_file, "keyFile": sec.key_file}
    else:
        return {}
    if sec.ca_file:
        files["caFile"] = sec.ca_file
    return files


def _check_readable(key: str, name: str) -> None:
    """Name the one file that is missing, rather than ssl's errno without a file name."""
    path = Path(name)
    if not path.exists():
        raise TlsConfigError(f"securityContext.{key}: {name}: no such file")
    if not path.is_file():
        raise TlsConfigError(f"securityContext.{key}: {name}: not a file")
    if not os.access(path, os.R_OK):
        raise TlsConfigError(f"securityContext.{key}: {name}: permission denied")


@contextlib.contextmanager
def _naming(files: dict[str, str]) -> Iterator[None]:
    """Turn a load failure into one line naming the keys and files being loaded."""
    try:
        yield
    except (OSError, ssl.SSLError, ValueError) as exc:
        keys, names = "/".join(files), ", ".join(files.values())
        raise TlsConfigError(f"securityContext.{keys}: {names}: {_reason(exc)}") from None


_SSL_REASONS = {
    "KEY_VALUES_MISMATCH": "the key does not match the certificate",
    "NO_CERTIFICATE_OR_CRL_FOUND": "no PEM certificate in it",
}


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        # "[X509: KEY_VALUES_MISMATCH] key values mismatch (_ssl.c:3926)" without the codes
        text = re.sub(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", str(exc))
        return _SSL_REASONS.get(exc.reason or "", text)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _load_pem_chain(ctx: ssl.SSLContext, cert_file: str, key_file: str) -> None:
    # ssl says only "PEM lib" when either file is not PEM: find which one it is.
    if b"-----BEGIN CERTIFICATE-----" not in Path(cert_file).read_bytes():
        raise TlsConfigError(f"securityContext.certFile: {cert_file}: no PEM certificate in it")
    if b"PRIVATE KEY-----" not in Path(key_file).read_bytes():
        raise TlsConfigError(f"securityContext.keyFile: {key_file}: no PEM private key in it")
    ctx.load_cert_chain(cert_file, key_file)


def _load_pkcs12(ctx: ssl.SSLContext, path: Path, password: str | None) -> None:
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            path.read_bytes(), password.encode() if password else None
        )
    except ValueError:
        raise ValueError("wrong keyStorePassword, or not a PKCS#12 keystore") from None
    if key is None or cert is None:
        raise ValueError("the keystore holds no key and certificate")
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
