"""get KIND REF: one resource by its ref or by what names it (an Agent's username, a
Domain's domainUri, a Number as dialled, a Gateway's name or host), in every format; the
same lookup serves describe and edit."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from rctl_kit import Rctl, domain_doc, register, unique_domain, unique_user
from support.api import Api
from support.server import RoutrProcess


def _doc(kind: str, name: str, spec: dict[str, Any], **meta: str) -> dict[str, Any]:
    return {"apiVersion": "v1beta1", "kind": kind, "metadata": {"name": name, **meta}, "spec": spec}


def _credentials(username: str) -> dict[str, Any]:
    return {"credentials": {"username": username, "secret": f"secret-{username}"}}


@pytest.fixture(scope="module")
def made(api: Api) -> dict[str, str]:
    """One resource of each kind, named as no other test names its own: the names and refs."""
    n = unique_user()[1:]  # four digits of this session's own
    names = {
        "domain": unique_domain(),
        "agent": unique_user(),
        "peer": unique_user(),
        "user": unique_user(),
        "gateway": f"Trunk {n}",
        "host": f"trunk{n}.rctl.test",
        "tel": f"+1555000{n}",
    }
    refs = {
        "domain": api.create("/domains", domain_doc(names["domain"])),
        "agent": api.create(
            "/agents",
            _doc(
                "Agent", "An agent", {**_credentials(names["agent"]), "domains": [names["domain"]]}
            ),
        ),
        "peer": api.create("/peers", _doc("Peer", "A peer", _credentials(names["peer"]))),
        "user": api.create("/users", _doc("User", "A user", _credentials(names["user"]))),
        "gateway": api.create(
            "/gateways",
            _doc(
                "Gateway",
                names["gateway"],
                {"host": names["host"], "port": 5070, "sendRegister": False},
            ),
        ),
    }
    location = {
        "telUrl": f"tel:{names['tel']}",
        "aorLink": f"sip:{names['agent']}@{names['domain']}",
    }
    refs["number"] = api.create(
        "/numbers", _doc("Number", "A number", {"location": location}, gwRef=refs["gateway"])
    )
    return {**names, **{f"{kind}Ref": ref for kind, ref in refs.items()}}


@pytest.mark.parametrize(
    ("kind", "text", "which"),
    [
        ("agent", "{agent}", "agent"),
        ("agents", "{agent}@{domain_upper}", "agent"),
        ("ag", "{agentRef}", "agent"),
        ("domain", "{domain_upper}", "domain"),
        ("peer", "{peer}", "peer"),
        ("user", "{user}", "user"),
        ("gateway", "{gateway}", "gateway"),
        ("gw", "{host}:5070", "gateway"),
        ("gw", "{host}", "gateway"),
        ("number", "{tel}", "number"),
        ("dd", "tel:{tel_spaced}", "number"),
    ],
)
def test_one_resource_by_what_names_it(
    rctl: Rctl, made: dict[str, str], kind: str, text: str, which: str
) -> None:
    words = {**made, "domain_upper": made["domain"].upper(),
             "tel_spaced": f"{made['tel'][:2]} {made['tel'][2:5]} {made['tel'][5:]}"}  # fmt: skip
    wanted = made[f"{which}Ref"]
    assert rctl.ok("get", kind, text.format(**words), "-o", "name").split() == [f"{which}/{wanted}"]


def test_the_real_program_finds_a_number_as_dialled(rctl: Rctl, made: dict[str, str]) -> None:
    outcome = rctl.process("get", "number", made["tel"])
    assert outcome.code == 0, outcome
    header, row = outcome.out.splitlines()
    assert header.split()[:3] == ["REF", "NAME", "TEL"] and row.split()[0] == made["numberRef"]


def test_not_found_names_the_kind_and_the_ref(rctl: Rctl) -> None:
    for outcome in (rctl.process("get", "number", "+19990000001"),
                    rctl("describe", "gw", "no such trunk")):  # fmt: skip
        assert outcome.code == 1 and outcome.out == ""
        assert outcome.err in (
            "error: number '+19990000001' not found\n",
            "error: gateway 'no such trunk' not found\n",
        )


def test_a_name_shared_by_two_is_refused_naming_both(rctl: Rctl, api: Api) -> None:
    user = unique_user()
    refs = []
    for domain in (unique_domain(), unique_domain()):
        api.create("/domains", domain_doc(domain))
        spec = {**_credentials(user), "domains": [domain]}
        refs.append(api.create("/agents", _doc("Agent", "Twin", spec)))
    refs.sort()
    outcome = rctl("get", "agent", user)
    assert outcome.code == 1 and outcome.err.count("\n") == 1
    assert f"agent {user!r} names 2 agents ({refs[0]}, {refs[1]}); give a ref" in outcome.err


@pytest.mark.parametrize("fmt", ["table", "wide", "json", "yaml", "name"])
def test_every_format_shows_the_one_item(rctl: Rctl, made: dict[str, str], fmt: str) -> None:
    ref = made["gatewayRef"]
    out = rctl.ok("get", "gateway", made["gateway"], "-o", fmt)
    if fmt in ("table", "wide"):
        header, row = out.splitlines()
        assert row.split()[0] == ref and (("USERNAME" in header) == (fmt == "wide"))
        assert row.split()[1:3] == made["gateway"].split()
    elif fmt == "name":
        assert out == f"gateway/{ref}\n"
    else:
        item = json.loads(out) if fmt == "json" else yaml.safe_load(out)
        assert item["kind"] == "Gateway" and item["metadata"]["ref"] == ref  # bare, no list
        assert item["spec"]["host"] == made["host"]


def test_yaml_of_one_item_applies_back_unchanged(
    rctl: Rctl, made: dict[str, str], server: RoutrProcess
) -> None:
    before = rctl.process("get", "agent", made["agent"], "-o", "yaml")
    assert before.code == 0 and "secret" not in before.out
    applied = rctl.process("apply", "-f", "-", input=before.out)
    assert applied.code == 0, applied
    assert applied.out == f"agent/{made['agentRef']} configured\n"
    after = yaml.safe_load(rctl.ok("get", "agent", made["agentRef"], "-o", "yaml"))
    kept = yaml.safe_load(before.out)
    assert after["spec"] == kept["spec"] and after["metadata"]["name"] == kept["metadata"]["name"]
    # the secret the manifest left out is still the stored one
    assert register(server, made["agent"], f"secret-{made['agent']}", made["domain"]) == 200


def test_describe_and_edit_take_the_same_names(
    rctl: Rctl, made: dict[str, str], tmp_path: Path
) -> None:
    described = rctl.ok("describe", "domain", made["domain"])
    assert f"Ref:         {made['domainRef']}" in described
    assert f"{made['agentRef']} {made['agent']}" in described.split("Agents:")[1]
    editor = tmp_path / "rename.py"
    editor.write_text(
        "import pathlib, sys\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "path.write_text(path.read_text().replace('name: A peer', 'name: Renamed peer'))\n"
    )
    edited = rctl.process(
        "edit", "peer", made["peer"], env={"EDITOR": f"{sys.executable} {editor}"}
    )
    assert edited.code == 0, edited
    assert edited.out == f"peer/{made['peerRef']} edited\n"  # the ref, not the name given
    shown = json.loads(rctl.ok("get", "peer", made["peer"], "-o", "json"))
    assert shown["metadata"]["name"] == "Renamed peer"
