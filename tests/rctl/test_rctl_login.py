"""login, logout, contexts, ping, version: the config file and the token in it."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import yaml
from rctl_kit import Rctl
from support.api import ADMIN_SECRET, start_server, wait_until

from rctl.client import API_VERSION


def test_login_keeps_the_token_in_a_private_file_and_never_the_password(rctl_out: Rctl) -> None:
    outcome = rctl_out.process("login", rctl_out.server, "-u", "admin", "-p", ADMIN_SECRET)
    assert outcome.code == 0, outcome
    assert stat.S_IMODE(rctl_out.config.stat().st_mode) == 0o600
    text = rctl_out.config.read_text()
    assert ADMIN_SECRET not in text
    saved = yaml.safe_load(text)
    (context,) = saved["contexts"]
    assert context["server"] == rctl_out.server
    assert context["user"] == "admin"
    assert context["token"].count(".") == 2  # a JWT
    assert saved["current-context"] == context["name"]
    assert rctl_out("get", "users").code == 0


def test_login_reads_the_password_from_stdin(rctl_out: Rctl) -> None:
    outcome = rctl_out("login", rctl_out.server, "-u", "admin", "-p", "-",
                       input=ADMIN_SECRET + "\n")  # fmt: skip
    assert outcome.code == 0, outcome
    assert ADMIN_SECRET not in rctl_out.config.read_text()


def test_wrong_password_is_one_line_and_saves_nothing(rctl_out: Rctl) -> None:
    outcome = rctl_out("login", rctl_out.server, "-u", "admin", "-p", "not-it")
    assert outcome.code == 1
    assert outcome.err.startswith("error: login to ") and outcome.err.count("\n") == 1
    assert "wrong username or secret" in outcome.err
    assert not rctl_out.config.exists()


def test_without_login_commands_name_the_login_command(rctl_out: Rctl) -> None:
    outcome = rctl_out.process("get", "agents")
    assert outcome.code == 1
    assert "not logged in" in outcome.err and "rctl login" in outcome.err
    assert "Traceback" not in outcome.err


def test_contexts_switch_and_logout(rctl: Rctl, tmp_path: Path) -> None:
    rctl.ok("login", rctl.server, "-u", "admin", "-p", ADMIN_SECRET, "--name", "second")
    shown = rctl.process("contexts")
    assert shown.code == 0, shown
    listing = shown.out
    current = [line for line in listing.splitlines() if line.startswith("*")]
    assert len(current) == 1 and "second" in current[0]
    assert len(listing.splitlines()) == 3  # header and two contexts
    first = yaml.safe_load(rctl.config.read_text())["contexts"][0]["name"]
    assert "switched" in rctl.ok("use-context", first)
    assert yaml.safe_load(rctl.config.read_text())["current-context"] == first
    assert rctl("use-context", "nope").code == 1
    rctl.ok("logout")
    left = yaml.safe_load(rctl.config.read_text())
    assert [c["name"] for c in left["contexts"]] == ["second"]
    assert rctl("--context", "second", "get", "users").code == 0


def test_an_expired_token_says_so_and_how_to_log_in(tmp_path: Path) -> None:
    proc = start_server(tmp_path, {"restService": {"port": 0, "tokenLifetime": 1}})
    try:
        rctl = Rctl(tmp_path / "rctl.yaml", proc.api)
        rctl.ok("login", proc.api, "-u", "admin", "-p", ADMIN_SECRET)

        def refused() -> str:
            outcome = rctl("get", "agents")
            return outcome.err if outcome.code == 1 else ""

        message = wait_until(refused, timeout=10)
        assert "expired" in message and f"rctl login {proc.api} -u admin" in message
    finally:
        proc.stop()


def test_ping_and_version_name_the_server(rctl: Rctl) -> None:
    ping = rctl.process("ping")
    assert ping.code == 0 and f"{rctl.server} is up" in ping.out
    version = rctl.process("version")
    assert version.code == 0, version
    client_line, server_line = version.out.splitlines()
    assert client_line.startswith("rctl ") is False and client_line.startswith("Client: rctl")
    assert f"(API {API_VERSION})" in server_line and rctl.server in server_line
    assert "warning" not in version.err


def test_version_without_a_server_prints_the_client_only(rctl_out: Rctl) -> None:
    outcome = rctl_out("version")
    assert outcome.code == 0
    assert outcome.out.startswith("Client: rctl") and len(outcome.out.splitlines()) == 1


def test_login_to_a_self_signed_server_shows_its_fingerprint(tmp_path: Path) -> None:
    proc = start_server(tmp_path, {"restService": {"bindAddr": "0.0.0.0", "port": 0}})
    try:
        url = "https://127.0.0.1:" + proc.api.rsplit(":", 1)[1]
        made = re.search(r"fingerprint ([0-9A-F:]+)", proc.wait_for("self-signed certificate"))
        assert made is not None
        rctl = Rctl(tmp_path / "rctl.yaml", url)
        refused = rctl.process("login", url, "-u", "admin", "-p", ADMIN_SECRET)
        assert refused.code == 1 and refused.err.count("\n") == 1
        assert "not trusted" in refused.err and "--insecure" in refused.err
        assert made.group(1) in refused.err
        trusted = rctl.process("--insecure", "login", url, "-u", "admin", "-p", ADMIN_SECRET)
        assert trusted.code == 0, trusted
        assert made.group(1) in trusted.err
        # the choice is kept with the context
        listed = rctl.process("get", "users", "-o", "name")
        assert listed.code == 0 and listed.out.startswith("user/"), listed
    finally:
        proc.stop()
