"""locate, registry, calls, bans, logs, config, reload: live tables after real SIP."""

from __future__ import annotations

import json

import yaml
from rctl_kit import Follower, Rctl, Terminal, create_agents, register, unique_user
from support.server import RoutrProcess


def _registered(rctl: Rctl, server: RoutrProcess, domain: str) -> str:
    user = unique_user()
    create_agents(rctl, domain, user)
    assert register(server, user, f"secret-{user}", domain) == 200
    return f"sip:{user}@{domain}"


def test_locate_shows_a_binding_after_a_register(
    rctl: Rctl, server: RoutrProcess, domain_uri: str
) -> None:
    aor = _registered(rctl, server, domain_uri)
    outcome = rctl.process("locate", "--filter", f"@.aor == '{aor}'")
    assert outcome.code == 0, outcome
    header, row = outcome.out.splitlines()
    assert header.split()[:3] == ["AOR", "CONTACT", "TRANSPORT"] and "EXPIRES" in header
    assert row.split()[0] == aor and row.split()[2] == "udp"
    expires = row.split()[-1]
    assert expires.endswith(("s", "m")) and expires != "0s"
    items = json.loads(rctl.ok("locate", "-o", "json", "--filter", f"@.aor == '{aor}'"))
    assert [i["aor"] for i in items] == [aor]


def test_locate_watch_prints_each_registration_when_piped(
    rctl: Rctl, server: RoutrProcess, domain_uri: str
) -> None:
    user = unique_user()
    create_agents(rctl, domain_uri, user)
    watcher = Follower(rctl, "locate", "--watch")
    try:
        assert watcher.wait_for("EVENT", "AOR").split()[:2] == ["EVENT", "AOR"]
        assert register(server, user, f"secret-{user}", domain_uri) == 200
        line = watcher.wait_for(f"sip:{user}@{domain_uri}")
        assert line.split()[0] == "ADDED"
    finally:
        watcher.stop()


def test_get_watch_sees_a_new_resource(rctl: Rctl, domain_uri: str) -> None:
    watcher = Follower(rctl, "get", "agents", "--watch", "-o", "json")
    try:
        user = unique_user()
        ref = create_agents(rctl, domain_uri, user)[user]
        event = json.loads(watcher.wait_for(ref))
        assert event["type"] == "ADDED" and event["object"]["metadata"]["ref"] == ref
    finally:
        watcher.stop()


def test_logs_and_logs_follow(rctl: Rctl, server: RoutrProcess, domain_uri: str) -> None:
    recent = rctl.process("logs", "--level", "info", "-n", "5")
    assert recent.code == 0, recent
    lines = recent.out.splitlines()
    assert 1 <= len(lines) <= 5
    assert all(line.split()[1] in ("INFO", "WARNING", "ERROR", "CRITICAL") for line in lines)
    user = unique_user()
    create_agents(rctl, domain_uri, user)
    follower = Follower(rctl, "logs", "-f", "--level", "debug", "-n", "1")
    try:
        assert register(server, user, f"secret-{user}", domain_uri) == 200
        line = follower.wait_for("endpoint.registered", f"sip:{user}@{domain_uri}")
        assert line.split()[1] == "DEBUG"
    finally:
        follower.stop()
    as_json = json.loads(rctl.ok("logs", "-n", "2", "-o", "json"))
    assert {"time", "level", "logger", "msg"} <= set(as_json[0])


def test_registry_calls_and_bans_tables(rctl: Rctl) -> None:
    for command, word in (("registry", "gateway registrations"), ("calls", "calls")):
        outcome = rctl.process(command)
        assert outcome.code == 0, outcome
        if not outcome.out:
            assert outcome.err == f"No {word} found.\n"
    bans = rctl.process("bans", "-o", "json")
    assert bans.code == 0 and isinstance(json.loads(bans.out), list)
    unban = rctl.process("unban", "192.0.2.77")
    assert unban.code == 1 and unban.err == "error: 192.0.2.77 is not banned\n"


def test_config_describe_and_reload(rctl: Rctl) -> None:
    described = rctl.process("config", "describe")
    assert described.code == 0, described
    config = yaml.safe_load(described.out)
    assert "transport" in config["spec"]
    assert json.loads(rctl.ok("config", "describe", "-o", "json")) == config
    reloaded = rctl.process("reload")
    assert reloaded.code == 0 and reloaded.out.startswith("reloaded")


def test_locate_watch_on_a_terminal_is_a_live_table(
    rctl: Rctl, server: RoutrProcess, domain_uri: str
) -> None:
    user = unique_user()
    create_agents(rctl, domain_uri, user)
    terminal = Terminal(rctl, "locate", "--watch")
    try:
        terminal.wait_for("AOR", "CONTACT", "EXPIRES")
        assert register(server, user, f"secret-{user}", domain_uri) == 200
        shown = terminal.wait_for(f"sip:{user}@{domain_uri}")
        assert "EVENT" not in shown and "ADDED" not in shown  # a table, not event lines
        assert "\x1b[" in shown  # drawn in place with cursor moves
    finally:
        terminal.stop()
