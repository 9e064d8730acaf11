from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from support.server import RoutrProcess


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def cert_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A server certificate for 127.0.0.1 and localhost, as PEM files."""
    folder = tmp_path_factory.mktemp("certs")
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    cert_path, key_path = folder / "sip.pem", folder / "sip.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_path), append=True)
    cert.private_key_pem.write_to_path(str(key_path))
    return {"certFile": str(cert_path), "keyFile": str(key_path)}


@pytest.fixture(scope="session")
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def routr(tmp_path: Path) -> Iterator[RoutrProcess]:
    """The server on UDP and TCP loopback ports."""
    proc = RoutrProcess(tmp_path, ("udp", "tcp")).start()
    yield proc
    proc.stop()
    proc.assert_no_tracebacks()
