"""Starting the server: config errors, certificates, keystores, bind failures."""

from __future__ import annotations

import json
import shutil
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
from support.data import domain, write_resources
from support.server import RoutrProcess
from support.sip import StreamClient, options

from routr.models.config import ConfigError, key_notices, load_config


def run_server(
    tmp_path: Path, config: object, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run routr-server (config in ``tmp_path``, started from ``cwd``) expecting it to refuse
    to start."""
    path = tmp_path / "config.yml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "routr.server.cli", "--config", str(path), *args],
        capture_output=True, text=True, timeout=30, cwd=cwd or tmp_path, check=False,
    )  # fmt: skip


def assert_one_line(result: subprocess.CompletedProcess[str], exit_code: int, line: str) -> None:
    """The start failed with exactly ``line`` on stderr, printed once, and no traceback."""
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"routr-server: {line}"]
    assert line not in result.stdout  # not logged a second time
    assert "Traceback" not in result.stderr + result.stdout


UDP_ONLY = {
    "bindAddr": "127.0.0.1",
    "transport": [{"protocol": "udp", "port": 0}],
    "restService": {"port": 0},
}


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
        ("spec:\n  dataSource: {parameters: garbage}\n", "spec.dataSource.parameters"),
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


def test_relative_paths_resolve_against_the_file_and_env_values_do_not(tmp_path):
    path = tmp_path / "conf" / "config.yml"
    path.parent.mkdir()
    path.write_text(
        "spec:\n  securityContext: {caFile: ca.pem, keyStore: /abs/ks.p12}\n"
        "  restService: {certFile: api.pem, keyFile: ../api.key}\n"
        "  dataSource: {parameters: 'path=data, pollInterval=2'}\n"
    )
    spec = load_config(path, {}).spec
    folder = tmp_path / "conf"
    assert spec.security_context.ca_file == str(folder / "ca.pem")
    assert spec.security_context.key_store == "/abs/ks.p12"
    assert (spec.rest_service.cert_file, spec.rest_service.key_file) == (
        str(folder / "api.pem"),
        str(folder / "../api.key"),
    )
    assert spec.data_source.params == {"path": str(folder / "data"), "pollInterval": "2"}
    from_env = load_config(path, {"DATA_SOURCE_PARAMETERS": "path=data"}).spec.data_source
    assert from_env.params == {"path": "data"}


def test_a_routr_v1_layout_keeps_its_data_folder(tmp_path, monkeypatch, caplog):
    # Routr v1: config/config.yml says path=config, read from the current folder.
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "config.yml"
    path.write_text("spec:\n  dataSource: {parameters: path=config}\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(path, {}).spec.data_source.params == {"path": "config"}
    assert "as Routr v1 did" in caplog.text
    (tmp_path / "config" / "config").mkdir()  # a folder beside the file wins
    assert load_config(path, {}).spec.data_source.params == {"path": str(path.parent / "config")}


def test_key_notices_name_each_ignored_key_once():
    data = {
        "spec": {
            "recordRoutes": True,
            "transport": [{"protocol": "udp", "port": 0, "bindadr": "127.0.0.1"}],
            "security": {"zzz": 1},
            "ex_newThing": 1,
            "securityContext": {"trustStore": "t.jks"},
            "keepAlive": {"interval": 30},
            "dataSource": {"parameters": {"anything": "goes"}},  # free-form: not checked
        }
    }
    assert [text for _, text in key_notices(data, "c.yml")] == [
        "c.yml: unknown key spec.recordRoutes (did you mean spec.recordRoute?)",
        "c.yml: unknown key spec.transport[0].bindadr (did you mean spec.transport[0].bindAddr?)",
        "c.yml: unknown key spec.security.zzz; ignored",
        "c.yml: unknown extension key spec.ex_newThing; ignored",
        "c.yml: spec.securityContext.trustStore is a Routr v1 key routr does not use; ignored: "
        "use securityContext.caFile (PEM)",
        "c.yml: spec.keepAlive is not supported yet; ignored",
    ]


@pytest.mark.parametrize(
    ("protocol", "kind"), [("udp", socket.SOCK_DGRAM), ("tcp", socket.SOCK_STREAM)]
)
def test_port_in_use_is_one_line_and_exit_1(tmp_path, protocol, kind):
    busy = socket.socket(socket.AF_INET, kind)
    busy.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        busy.listen()
    port = busy.getsockname()[1]
    try:
        result = run_server(
            tmp_path,
            {
                "spec": {
                    "bindAddr": "127.0.0.1",
                    "transport": [{"protocol": protocol, "port": port}],
                }
            },
        )
    finally:
        busy.close()
    assert_one_line(result, 1, f"{protocol} 127.0.0.1:{port}: address already in use")


def test_missing_certificate_file_is_named_in_one_line_and_exit_2(tmp_path, cert_files):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "certs").mkdir(parents=True)  # a cwd-relative match must not be used
    shutil.copy(cert_files["certFile"], elsewhere / "certs" / "sip.pem")
    context = {"certFile": "certs/sip.pem", "keyFile": cert_files["keyFile"]}
    spec = {**UDP_ONLY, "transport": [{"protocol": "tls", "port": 0}], "securityContext": context}
    result = run_server(tmp_path, {"spec": spec}, cwd=elsewhere)
    assert_one_line(result, 2, f"securityContext.certFile: {tmp_path}/certs/sip.pem: no such file")


@pytest.mark.parametrize("given", ["--data", "dataSource"])
def test_data_folder_that_does_not_exist_is_one_line_and_exit_2(tmp_path, given):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if given == "--data":
        (tmp_path / "nowhere").mkdir()  # beside the config file: not where --data looks
        result = run_server(tmp_path, {"spec": UDP_ONLY}, "--data", "nowhere", cwd=elsewhere)
        expected = f"--data: {elsewhere}/nowhere: no such folder"
    else:
        source = {"provider": "files_data_provider", "parameters": "path=data"}
        result = run_server(tmp_path, {"spec": {**UDP_ONLY, "dataSource": source}}, cwd=elsewhere)
        expected = f"dataSource.parameters.path: {tmp_path}/data: no such folder"
    assert_one_line(result, 2, expected)


def test_the_default_data_folder_may_be_missing_and_is_created_on_first_write(tmp_path):
    # no --data and no dataSource path: config/ of the current directory, not there yet
    proc = RoutrProcess(tmp_path, ("udp",)).start()
    try:
        proc.wait_for("created API user 'admin'")
    finally:
        assert proc.stop() == 0
    assert (tmp_path / "config" / "users.yml").is_file()


def test_relative_paths_in_the_config_file_are_relative_to_its_folder(
    tmp_path, cert_files, client_ssl
):
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    (site / "certs").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(cert_files["certFile"], site / "certs" / "sip.pem")
    shutil.copy(cert_files["keyFile"], site / "certs" / "sip.key")
    write_resources(site / "data", domain("sip.local"))
    spec = {
        "securityContext": {"certFile": "certs/sip.pem", "keyFile": "certs/sip.key"},
        "dataSource": {"provider": "files_data_provider", "parameters": "path=data"},
    }
    # started from another folder: env -C changes the directory, then runs the server
    proc = RoutrProcess(site, ("udp", "tls"), spec, launcher=("env", "-C", str(elsewhere)))
    proc.start()
    try:
        proc.wait_for(f"{site}/data/domains.yml loaded: 1 domain")
        port = proc.ports["tls"]
        with StreamClient(("127.0.0.1", port), client_ssl) as c:
            assert c.request(options(f"127.0.0.1:{port}", "TLS", c.local)).status == 200
    finally:
        assert proc.stop() == 0
    assert not (elsewhere / "config").exists()


def test_unknown_config_keys_are_warned_with_the_closest_known_key(tmp_path):
    spec = {
        "recordRoutes": True,  # a typo of recordRoute
        "ex_rtpEngine": {"enabled": False},  # a Routr v1 key
        "keepAlive": {"interval": 30},  # in the product spec, not built yet
        "security": {"floodBann": {"requests": 10}},
    }
    proc = RoutrProcess(tmp_path, ("udp",), spec).start()
    try:
        source = proc.config_path
        for line in (
            f"{source}: unknown key spec.recordRoutes (did you mean spec.recordRoute?)",
            f"{source}: unknown key spec.security.floodBann (did you mean spec.security.floodBan?)",
            f"{source}: spec.ex_rtpEngine is a Routr v1 key routr does not use; ignored",
            f"{source}: spec.keepAlive is not supported yet; ignored",
        ):
            proc.wait_for(line)
    finally:
        assert proc.stop() == 0
    assert not [line for line in proc.lines if "ex_rtpEngine" in line and "did you mean" in line]


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
    assert_one_line(
        result,
        2,
        f"securityContext.keyStore: {store}: wrong keyStorePassword, or not a PKCS#12 keystore",
    )


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


def test_a_broken_secret_file_is_one_line_and_exit_1(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / ".routr-secret").write_text("")  # left by hand, or by an old crash
    result = run_server(tmp_path, {"spec": UDP_ONLY}, "--data", str(data))
    assert_one_line(
        result, 1, f"secret: {data}/.routr-secret: not a secret (too short); delete it to "
        "have a new one made",
    )  # fmt: skip
