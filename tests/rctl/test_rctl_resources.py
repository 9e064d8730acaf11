"""get (every format, paging), describe, create, apply, delete, edit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from rctl_kit import Rctl, agent_yaml, create_agents, register, unique_user
from support.api import Api
from support.server import RoutrProcess


def _filter(domain: str) -> str:
    return f"'{domain}' in @.spec.domains"


def test_get_table_is_kubectl_like(rctl: Rctl, domain_uri: str) -> None:
    refs = create_agents(rctl, domain_uri, "1001", "1002")
    lines = rctl.ok("get", "agents", "--filter", _filter(domain_uri)).splitlines()
    assert lines[0].split() == ["REF", "NAME", "USERNAME", "DOMAINS", "AGE"]
    assert "|" not in "".join(lines) and "─" not in "".join(lines)  # no borders
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(refs.values())
    assert rows[refs["1001"]].split()[-1].endswith("s")  # AGE in seconds, just made
    # every column starts where its header does
    start = lines[0].index("USERNAME")
    assert rows[refs["1002"]][start:].startswith("1002")


def test_get_wide_adds_columns(rctl: Rctl, domain_uri: str) -> None:
    create_agents(rctl, domain_uri, unique_user())
    header = rctl.ok("get", "ag", "-o", "wide", "--filter", _filter(domain_uri)).splitlines()[0]
    assert "PRIVACY" in header and "MAX CONTACTS" in header


def test_get_json_yaml_and_name_parse_back(rctl: Rctl, domain_uri: str) -> None:
    user = unique_user()
    ref = create_agents(rctl, domain_uri, user)[user]
    flt = _filter(domain_uri)
    as_json = json.loads(rctl.ok("get", "agent", "--filter", flt, "-o", "json"))
    as_yaml = yaml.safe_load(rctl.ok("get", "agent", "--filter", flt, "-o", "yaml"))
    assert as_json == as_yaml
    (item,) = as_json
    assert item["kind"] == "Agent" and item["metadata"]["ref"] == ref
    assert item["spec"]["credentials"] == {"username": user}  # the secret is never shown
    assert rctl.ok("get", "agents", "--filter", flt, "-o", "name").split() == [f"agent/{ref}"]
    one = yaml.safe_load(rctl.ok("get", "agent", ref, "-o", "yaml"))
    assert one == item  # one ref: the bare resource, not a list
    # the global -o works too
    assert json.loads(rctl.ok("-o", "json", "get", "agent", ref)) == item


def test_get_pages_through_the_api(
    rctl: Rctl, domain_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [unique_user() for _ in range(5)]
    refs = create_agents(rctl, domain_uri, *users)
    seen: list[int] = []
    import rctl.client as client_module

    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)
    real = client_module.Client.envelope

    def counting(self: client_module.Client, method: str, path: str, **kw: object) -> object:
        seen.append(1)
        return real(self, method, path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(client_module.Client, "envelope", counting)
    names = rctl.ok("get", "agents", "--filter", _filter(domain_uri), "-o", "name").split()
    assert sorted(names) == sorted(f"agent/{r}" for r in refs.values())
    assert len(seen) == 3  # 2 + 2 + 1


def test_get_unknown_ref_and_kind(rctl: Rctl) -> None:
    missing = rctl("get", "agent", "ag-nope")
    assert missing.code == 1 and missing.err == "error: agent 'ag-nope' not found\n"
    kind = rctl("get", "phones")
    assert kind.code == 1 and kind.err.count("\n") == 1 and "unknown kind 'phones'" in kind.err


def test_create_from_a_file_and_the_kind_check(rctl: Rctl, domain_uri: str, tmp_path: Path) -> None:
    user = unique_user()
    manifest = tmp_path / "agents.yaml"
    manifest.write_text(agent_yaml(user, "s3cret", domain_uri))
    refused = rctl.process("create", "domain", "-f", str(manifest))
    assert refused.code == 1
    assert refused.err.count("\n") == 1 and "an Agent, not a Domain" in refused.err
    assert f"{manifest}:1" in refused.err
    made = rctl.process("create", "agent", "-f", str(manifest))
    assert made.code == 0, made
    assert made.out.startswith("agent/") and made.out.strip().endswith(" created")
    again = rctl("create", "-f", str(manifest))
    assert again.code == 1 and "already exist" in again.err


def test_create_in_file_order_across_kinds(rctl: Rctl, api: Api) -> None:
    text = """
- kind: Gateway
  metadata: {name: Trunk, ref: gw-rctl-order}
  spec: {host: trunk.rctl.test, sendRegister: false}
- kind: Number
  metadata: {ref: dd-rctl-order, gwRef: gw-rctl-order}
  spec: {location: {telUrl: 'tel:+15550001111', aorLink: 'sip:1001@order.rctl.test'}}
- kind: Domain
  metadata: {name: Order}
  spec: {context: {domainUri: order.rctl.test,
         egressPolicy: {rule: '.*', numberRef: dd-rctl-order}}}
"""
    out = rctl.ok("create", "-f", "-", input=text).splitlines()
    assert [line.split("/")[0] for line in out] == ["gateway", "number", "domain"]
    described = rctl.ok("describe", "number", "dd-rctl-order")
    assert "gw-rctl-order (Trunk, trunk.rctl.test)" in described
    assert "not registered" in described
    gw = rctl.ok("describe", "gw", "gw-rctl-order")
    assert "dd-rctl-order tel:+15550001111" in gw


def test_invalid_fields_are_listed_with_their_paths(rctl: Rctl, domain_uri: str) -> None:
    text = "kind: Agent\nmetadata: {name: x}\nspec: {credentials: {username: ab}}\n"
    outcome = rctl("create", "-f", "-", input=text)
    assert outcome.code == 1
    lines = outcome.err.splitlines()
    assert lines[0] == "error: invalid:"
    assert "  <stdin>:3: spec.domains: required" in lines[1:]
    assert any(line.startswith("  <stdin>:2: metadata.name:") for line in lines[1:])
    assert domain_uri  # the Domain exists; only the manifest is wrong


def test_apply_creates_then_updates_by_natural_key(rctl: Rctl, domain_uri: str) -> None:
    user = unique_user()
    first = rctl.ok("apply", "-f", "-", input=agent_yaml(user, "one", domain_uri, "First Name"))
    assert first.strip().endswith(" created")
    ref = first.split()[0].split("/")[1]
    second = rctl.ok("apply", "-f", "-", input=agent_yaml(user, "two", domain_uri, "New Name"))
    assert second.strip() == f"agent/{ref} configured"
    item = yaml.safe_load(rctl.ok("get", "agent", ref, "-o", "yaml"))
    assert item["metadata"]["name"] == "New Name"


def test_yaml_round_trip_through_apply_keeps_the_secret(
    rctl: Rctl, domain_uri: str, server: RoutrProcess
) -> None:
    user = unique_user()
    ref = create_agents(rctl, domain_uri, user)[user]
    dumped = rctl.process("get", "agent", "--filter", _filter(domain_uri), "-o", "yaml")
    assert dumped.code == 0 and "secret" not in dumped.out
    edited = dumped.out.replace(f"Agent {user}", "Renamed Agent")
    applied = rctl.process("apply", "-f", "-", input=edited)
    assert applied.code == 0, applied
    assert applied.out.strip() == f"agent/{ref} configured"
    assert rctl.ok("get", "agent", ref, "-o", "json").count("Renamed Agent") == 1
    # the stored secret survived the update: the phone still registers with it
    assert register(server, user, f"secret-{user}", domain_uri) == 200


def test_delete_refused_while_used_says_by_what(rctl: Rctl, domain_uri: str, api: Api) -> None:
    user = unique_user()
    agent_ref = create_agents(rctl, domain_uri, user)[user]
    (domain,) = api.data(
        "/domains", params={"filter": f"@.spec.context.domainUri == '{domain_uri}'"}
    )
    dm_ref = domain["metadata"]["ref"]
    refused = rctl.process("delete", "domain", dm_ref)
    assert refused.code == 1
    assert refused.err.count("\n") == 1 and agent_ref in refused.err and "dependent" in refused.err
    assert f"{agent_ref} {user}" in rctl.ok("describe", "domain", dm_ref).split("Agents:")[1]
    assert rctl.ok("delete", "agent", agent_ref).strip() == f"agent/{agent_ref} deleted"
    assert rctl("get", "agent", agent_ref).code == 1
    missing = rctl("delete", "agent", agent_ref)
    assert missing.code == 1 and "not found" in missing.err


def test_describe_agent_shows_domain_and_bindings(
    rctl: Rctl, domain_uri: str, server: RoutrProcess
) -> None:
    user = unique_user()
    ref = create_agents(rctl, domain_uri, user)[user]
    assert register(server, user, f"secret-{user}", domain_uri) == 200
    text = rctl.process("describe", "agent", ref)
    assert text.code == 0, text
    assert f"Ref:         {ref}" in text.out
    assert "Domains:" in text.out and domain_uri in text.out
    bindings = text.out.split("Bindings:")[1]
    assert f"sip:{user}@{domain_uri} -> sip:{user}@127.0.0.1" in bindings


def test_edit_offers_a_refused_edit_again(rctl: Rctl, domain_uri: str, tmp_path: Path) -> None:
    user = unique_user()
    ref = create_agents(rctl, domain_uri, user)[user]
    editor = tmp_path / "editor.py"
    seen = tmp_path / "second-round.yaml"
    editor.write_text(
        "import pathlib, sys\n"
        "path = pathlib.Path(sys.argv[1]); text = path.read_text()\n"
        f"second = pathlib.Path({str(seen)!r})\n"
        "if 'ex_maxContact: 1' in text:\n"
        "    path.write_text(text.replace('ex_maxContact: 1', 'ex_maxContact: 0'))\n"
        "else:\n"
        "    second.write_text(text)\n"
        "    path.write_text(text.replace('ex_maxContact: 0', 'ex_maxContact: 4'))\n"
    )
    env = {"EDITOR": f"{sys.executable} {editor}"}
    outcome = rctl.process("edit", "agent", ref, env=env)
    assert outcome.code == 0, outcome
    assert outcome.out.strip() == f"agent/{ref} edited"
    assert "# error:" in seen.read_text() and "spec.ex_maxContact" in seen.read_text()
    assert yaml.safe_load(rctl.ok("get", "agent", ref, "-o", "yaml"))["spec"]["ex_maxContact"] == 4


def test_edit_unchanged_is_cancelled(rctl: Rctl, domain_uri: str) -> None:
    user = unique_user()
    ref = create_agents(rctl, domain_uri, user)[user]
    outcome = rctl.process("edit", "agent", ref, env={"EDITOR": "true"})
    assert outcome.code == 0 and "cancelled" in outcome.out


def test_number_looking_scalars_stay_as_written_through_apply(rctl: Rctl, tmp_path: Path) -> None:
    username = "0" + unique_user()[1:]  # e.g. 00042: YAML 1.1 would read an octal number
    manifest = (
        "kind: User\n"
        f"metadata: {{name: Octal {username}}}\n"
        f"spec: {{credentials: {{username: {username}, secret: 0123}}}}\n"
    )
    assert rctl.ok("apply", "-f", "-", input=manifest).strip().endswith(" created")
    updated = rctl.ok("apply", "-f", "-", input=manifest.replace("Octal", "Still octal"))
    assert updated.strip().endswith(" configured")  # found again by its username, as written
    other = Rctl(tmp_path / "other.yaml", rctl.server)
    login = other("login", rctl.server, "-u", username, "-p", "0123")
    assert login.code == 0, login
