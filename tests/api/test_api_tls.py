"""The API over HTTPS: a configured certificate, or a self-signed one made at first start."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import trustme
import yaml
from support.api import BASE, start_server

UDP = [{"protocol": "udp", "port": 0}]


def _fingerprint(port: int) -> str:
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _plain_http_answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{BASE}/system/status").status_code == 200
    except httpx.HTTPError:
        return False  # the TLS port hangs up on plain HTTP


def test_off_loopback_the_api_is_https_with_a_self_signed_certificate(tmp_path: Path) -> None:
    spec = {"restService": {"bindAddr": "0.0.0.0", "port": 0}}
    proc = start_server(tmp_path, spec)
    try:
        assert proc.api.startswith("https://")
        port = int(proc.api.rsplit(":", 1)[1])
        made = proc.wait_for("self-signed certificate")
        logged = re.search(r"fingerprint ([0-9A-F:]+)", made)
        assert logged is not None and logged.group(1) == _fingerprint(port)
        r = httpx.get(f"https://127.0.0.1:{port}{BASE}/system/status", verify=False)
        assert r.status_code == 200
        assert not _plain_http_answers(port)
    finally:
        proc.stop()
    first = logged.group(1)
    again = start_server(tmp_path, spec)  # the same data folder: the same certificate
    try:
        assert not any("self-signed certificate" in line for line in again.lines)
        assert _fingerprint(int(again.api.rsplit(":", 1)[1])) == first
    finally:
        again.stop()
    again.assert_no_tracebacks()


def test_a_configured_certificate_is_used_even_on_loopback(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "api.pem", tmp_path / "api.key"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    rest = {"port": 0, "certFile": str(cert_path), "keyFile": str(key_path)}
    proc = start_server(tmp_path, {"restService": rest})
    try:
        assert proc.api.startswith("https://127.0.0.1:")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        r = httpx.get(f"{proc.api}{BASE}/system/status", verify=context)
        assert r.status_code == 200
    finally:
        proc.stop()
    proc.assert_no_tracebacks()


def _refused(tmp_path: Path, rest: dict[str, object]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"spec": {"bindAddr": "127.0.0.1", "transport": UDP,
                                             "restService": rest}}))  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "routr.server.cli", "--config", str(path), "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_an_api_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _refused(tmp_path, {"port": port})
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"routr-server: restService 127.0.0.1:{port}: address already in use"
    ]
    assert "Traceback" not in result.stdout


def test_an_unusable_certificate_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    rest = {"port": 0, "certFile": str(tmp_path / "bad.pem"), "keyFile": str(tmp_path / "bad.pem")}
    result = _refused(tmp_path, rest)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("routr-server: restService certFile/keyFile")
    assert "Traceback" not in result.stdout + result.stderr
