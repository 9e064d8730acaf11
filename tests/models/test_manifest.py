"""YAML manifests: shapes, line numbers in errors, round trips."""

from __future__ import annotations

import pytest

from routr.models import (
    Agent,
    Gateway,
    ManifestError,
    dump_manifest,
    keep_secrets,
    load_manifest,
    public_dict,
    resource_to_dict,
)
from routr.models.manifest import read_entries

SPEC_SAMPLE = r"""
- {apiVersion: v1beta1, kind: Domain, metadata: {name: Local, ref: dm-local},
   spec: {context: {domainUri: sip.local,
          egressPolicy: {rule: '\+?1?[2-9]\d{9}', numberRef: dd-pstn},
          accessControlList: {allow: [192.168.0.0/16], deny: [0.0.0.0/0]}}}}
- {apiVersion: v1beta1, kind: Agent, metadata: {name: John Doe},
   spec: {credentials: {username: '1001', secret: '1234'}, domains: [sip.local],
          privacy: None, ex_maxContact: 3}}
- {apiVersion: v1beta1, kind: Peer, metadata: {name: Asterisk},
   spec: {credentials: {username: ast, secret: astsecret}, device: astserver,
          contactAddr: '192.168.1.2:6060', ex_maxContact: 4,
          loadBalancing: {algorithm: round-robin}}}
- {apiVersion: v1beta1, kind: Gateway, metadata: {name: Provider, ref: gw-prov},
   spec: {host: sip.provider.net, port: 5060, transport: udp, sendRegister: true, expires: 600,
          credentials: {username: pbx-1, secret: '1234'}}}
- {apiVersion: v1beta1, kind: Number, metadata: {ref: dd-pstn, gwRef: gw-prov,
   geoInfo: {city: Columbus, country: USA, countryISOCode: US}},
   spec: {location: {telUrl: 'tel:+17066041487', aorLink: 'sip:1001@sip.local'}}}
- {apiVersion: v1beta1, kind: User, metadata: {name: Admin},
   spec: {credentials: {username: admin, secret: changeit}}}
"""


def test_spec_sample_loads_and_round_trips() -> None:
    resources = load_manifest(SPEC_SAMPLE)
    assert [r.kind for r in resources] == ["Domain", "Agent", "Peer", "Gateway", "Number", "User"]
    text = dump_manifest(resources)
    assert load_manifest(text) == resources
    assert "'1001'" in text  # a number-looking string stays quoted for v1 readers


def test_one_resource_list_and_documents() -> None:
    one = "kind: User\nmetadata: {name: Admin}\nspec: {credentials: {username: admin, secret: x}}\n"
    assert len(load_manifest(one)) == 1
    assert len(load_manifest(f"---\n{one}---\n{one.replace('admin', 'root')}")) == 2
    assert len(load_manifest("- " + one.replace("\n", "\n  "))) == 1
    assert load_manifest("") == [] and load_manifest("# nothing\n") == []


def test_number_looking_scalars_are_kept_as_written() -> None:
    text = """
kind: Agent
metadata: {name: Jane Doe}
spec:
  credentials: {username: 1002, secret: 0123}
  domains: [sip.local]
  ex_maxContact: 2
"""
    (a,) = load_manifest(text)
    assert isinstance(a, Agent)
    assert a.spec.credentials.username == "1002"
    assert a.spec.credentials.secret == "0123"  # YAML 1.1 would have read octal 83
    assert a.spec.ex_maxContact == 2


def test_validation_error_names_source_line_path_problem() -> None:
    text = """- kind: Agent
  metadata: {name: John Doe}
  spec:
    credentials: {username: 1001, secret: x}
    domains: [sip.local]
- kind: Agent
  metadata: {name: Jane Doe}
  spec:
    credentials:
      username: '10'
      secret: x
    domains: [sip.local]
"""
    with pytest.raises(ManifestError) as info:
        load_manifest(text, "config/agents.yml")
    err = info.value
    assert err.line == 10
    assert str(err) == "config/agents.yml:10: [1].spec.credentials.username: at least 3 characters"


def test_yaml_syntax_error_has_line() -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest("- kind: Agent\n  metadata: {name: x\n", "agents.yml")
    assert info.value.line is not None and "invalid YAML" in str(info.value)


def test_not_a_mapping() -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest("- just a string\n")
    assert "expected a mapping" in str(info.value)


def test_kind_from_context() -> None:
    text = "- metadata: {name: Admin}\n  spec: {credentials: {username: admin, secret: x}}\n"
    assert load_manifest(text, kind="User")[0].kind == "User"
    with pytest.raises(ManifestError):
        load_manifest(text)


def test_dump_without_secrets_and_short_files() -> None:
    resources = load_manifest(SPEC_SAMPLE)
    assert "changeit" not in dump_manifest(resources, secrets=False)
    gw = next(r for r in resources if isinstance(r, Gateway))
    short = resource_to_dict(gw, defaults=False)
    assert "registries" not in short["spec"]  # not written, not dumped
    assert public_dict(gw)["spec"]["registries"] == []


def test_keep_secrets() -> None:
    (a,) = load_manifest(
        "kind: Agent\nmetadata: {name: John Doe}\n"
        "spec: {credentials: {username: '1001', secret: s3cret}, domains: [sip.local]}\n"
    )
    edited = public_dict(a)
    edited["spec"]["ex_maxContact"] = 5
    restored = keep_secrets(edited, a)
    assert restored["spec"]["credentials"]["secret"] == "s3cret"
    assert "secret" not in edited["spec"]["credentials"]  # input untouched


AGENTS_WITH_BAD_ENTRIES = """\
- kind: Agent
  metadata: {name: John Doe}
  spec: {credentials: {username: '1001', secret: x}, domains: [sip.local]}
- kind: Agent
  metadata: {name: No Name}
  spec:
    credentials: {secret: x}
    domains: [sip.local]
- just a string
- kind: Agent
  metadata: {name: Jane Doe}
  spec: {credentials: {username: '1001', secret: y}, domains: [sip.local]}
- kind: Agent
  metadata: {name: Other, ref: ag-one}
  spec: {credentials: {username: '1004', secret: y}, domains: [sip.local]}
- kind: Agent
  metadata: {name: Again, ref: ag-one}
  spec: {credentials: {username: '1005', secret: y}, domains: [sip.local]}
- !!python/name:os.system
"""


def test_read_entries_keeps_the_valid_ones_and_names_the_others() -> None:
    entries = read_entries(AGENTS_WITH_BAD_ENTRIES, "agents.yml", "Agent")
    assert [r.metadata.name for r in entries.resources] == ["John Doe", "Other"]
    assert [str(r) for r in entries.rejected] == [
        "agents.yml:7: Agent 'No Name': spec.credentials.username: required; not loaded",
        "agents.yml:9: Agent: expected a mapping (one resource); not loaded",
        "agents.yml:10: Agent 'Jane Doe': username 1001@sip.local is already defined at line 1;"
        " not loaded",
        "agents.yml:16: Agent 'Again': ref ag-one is already defined at line 13; not loaded",
        "agents.yml:19: Agent: invalid YAML: could not determine a constructor for the tag"
        " 'tag:yaml.org,2002:python/name:os.system'; not loaded",
    ]


def test_read_entries_names_a_bad_entry_by_its_natural_key() -> None:
    text = "- kind: Domain\n  metadata: {name: x}\n  spec: {context: {domainUri: sip.local}}\n"
    (rejected,) = read_entries(text, "domains.yml", "Domain").rejected
    assert rejected.subject == "Domain 'x' (domainUri sip.local)"
    assert rejected.problem == "metadata.name: at least 3 characters"


def test_read_entries_raises_only_for_text_that_is_not_yaml() -> None:
    with pytest.raises(ManifestError, match="invalid YAML"):
        read_entries("- kind: Agent\n  metadata: {name: x\n", "agents.yml", "Agent")
