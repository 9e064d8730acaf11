"""Starting the server: config errors, certificates, keystores, bind failures."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    load_pem_private_key,
    pkcs12,
)
from cryptography.x509 import load_pem_x509_certificate
from support.server import RoutrProcess
from support.sip import StreamClient, options

from routr.models.config import ConfigError, load_config


def run_server(tmp_path: Path, config: object, *args: str) -> subprocess.CompletedProcess[str]:
    """Run routr-server expecting it to refuse to start."""
    path = tmp_path / "config.yml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "routr.server.cli", "--config", str(path), *args],
        capture_output=True, text=True, timeout=30, cwd=tmp_path, check=False,
    )  # fmt: skip


def test_missing_config_file_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "routr.server.cli", "--config", str(tmp_path / "nope.yml")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope.yml" in lines[0] and "cannot read" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("spec: [1, 2", "line"),
        ("spec:\n  registrar: {minExpires: soon}\n", "spec.registrar.minExpires"),
        ("spec:\n  transport:\n    - {protocol: tls, port: 5061}\n", "certFile"),
        ("spec:\n  transport:\n    - {protocol: carrier-pigeon, port: 1}\n", "protocol"),
        ("spec:\n  bindAddr: not-an-ip\n", "spec.bindAddr"),
        ("spec:\n  security: {digestAlgorithms: [SHA-1]}\n", "spec.security.digestAlgorithms"),
        ("spec:\n  security: {digestAlgorithms: []}\n", "spec.security.digestAlgorithms"),
        ("spec:\n  security: {digestAlgorithms: [MD5, md5]}\n", "listed twice"),
        ("spec:\n  proxy: {timerC: 0}\n", "spec.proxy.timerC"),
        (
            "spec:\n  securityContext: {keyStore: ks.jks, keyStoreType: jks}\n",
            "keytool -importkeystore",
        ),
    ],
)
def test_bad_config_names_file_key_and_problem(tmp_path, text, needle):
    result = run_server(tmp_path, text)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "config.yml" in lines[0] and needle in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_digest_nonce_and_timer_c_keys(tmp_path):
    assert load_config(None, {}).spec.security.digest_algorithms == ["MD5"]
    path = tmp_path / "config.yml"
    path.write_text(
        "spec:\n  security: {digestAlgorithms: [sha256, MD5], nonceLifetime: 30}\n"
        "  proxy: {timerC: 90}\n"
    )
    spec = load_config(path, {}).spec
    assert spec.security.digest_algorithms == ["SHA-256", "MD5"]
    assert spec.security.nonce_lifetime == 30
    assert spec.proxy.timer_c == 90


def test_env_beats_file(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"spec": {"recordRoute": False, "bindAddr": "127.0.0.1"}}))
    config = load_config(path, {"RECORD_ROUTE": "true", "LOCALNETS": "10.0.0.0/8, ::1/128"})
    assert config.spec.record_route is True
    assert config.spec.localnets == ["10.0.0.0/8", "::1/128"]
    assert config.spec.bind_addr == "127.0.0.1"
    with pytest.raises(ConfigError, match=r"spec\.restService\.port"):
        load_config(path, {"REST_SERVICE_PORT": "many"})


def test_port_in_use_is_one_line_and_exit_1(tmp_path):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        result = run_server(
            tmp_path,
            {"spec": {"bindAddr": "127.0.0.1", "transport": [{"protocol": "tcp", "port": port}]}},
        )
    finally:
        busy.close()
    assert result.returncode == 1
    assert f"cannot bind tcp 127.0.0.1:{port}: address already in use" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def write_pkcs12(folder: Path, cert_files: dict[str, str], password: bytes) -> Path:
    """The PEM test certificate and key as a PKCS#12 keystore."""
    key = load_pem_private_key(Path(cert_files["keyFile"]).read_bytes(), None)
    cert = load_pem_x509_certificate(Path(cert_files["certFile"]).read_bytes())
    store = folder / "sip.p12"
    encryption = BestAvailableEncryption(password)
    store.write_bytes(pkcs12.serialize_key_and_certificates(b"sip", key, cert, None, encryption))  # type: ignore[arg-type]
    return store


def test_pkcs12_keystore_serves_tls(tmp_path, cert_files, client_ssl):
    store = write_pkcs12(tmp_path, cert_files, b"changeit")
    context = {"keyStore": str(store), "keyStorePassword": "changeit", "keyStoreType": "pkcs12"}
    proc = RoutrProcess(tmp_path, ("tls",), {"securityContext": context}).start()
    try:
        port = proc.ports["tls"]
        with StreamClient(("127.0.0.1", port), client_ssl) as c:
            assert c.request(options(f"127.0.0.1:{port}", "TLS", c.local)).status == 200
    finally:
        assert proc.stop() == 0


def test_wrong_keystore_password_is_refused(tmp_path, cert_files):
    store = write_pkcs12(tmp_path, cert_files, b"right")
    config = {
        "spec": {
            "bindAddr": "127.0.0.1",
            "transport": [{"protocol": "tls", "port": 0}],
            "securityContext": {"keyStore": str(store), "keyStorePassword": "wrong",
                                "keyStoreType": "pkcs12"},
        }
    }  # fmt: skip
    result = run_server(tmp_path, config)
    assert result.returncode == 1
    assert "securityContext: cannot load certificates" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_log_format_json_writes_json_lines(tmp_path):
    path = tmp_path / "config.yml"
    spec = {"bindAddr": "127.0.0.1", "transport": [{"protocol": "udp", "port": 0}]}
    path.write_text(yaml.safe_dump({"spec": spec}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "routr.server.cli", "--config", str(path), "--log-format", "json"],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        records = []
        for line in proc.stdout:  # ends when the server does; it is stopped below
            records.append(json.loads(line))
            if "listening on" in records[-1]["msg"]:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert {"ts", "level", "logger", "msg"} <= set(records[-1])
