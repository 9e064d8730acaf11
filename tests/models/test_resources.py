"""Field rules of every resource kind, good and bad."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from routr.models import (
    Agent,
    Domain,
    Gateway,
    Number,
    Peer,
    User,
    describe,
    make_ref,
    normalize_key,
    parse_resource,
    problems,
    public_dict,
)
from routr.models.xxh32 import xxh32


def agent(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "credentials": {"username": "1001", "secret": "1234"},
        "domains": ["sip.local"],
    }
    return {
        "apiVersion": "v1beta1",
        "kind": "Agent",
        "metadata": {"name": "John Doe"},
        "spec": {**base, **spec},
    }


def domain(**context: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1beta1",
        "kind": "Domain",
        "metadata": {"name": "Local"},
        "spec": {"context": {"domainUri": "sip.local", **context}},
    }


def gateway(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1beta1",
        "kind": "Gateway",
        "metadata": {"name": "Provider"},
        "spec": {"host": "sip.provider.net", **spec},
    }


def number(**location: Any) -> dict[str, Any]:
    loc = {"telUrl": "tel:+17066041487", "aorLink": "sip:1001@sip.local", **location}
    return {
        "apiVersion": "v1beta1",
        "kind": "Number",
        "metadata": {"gwRef": "gw-prov"},
        "spec": {"location": loc},
    }


def peer(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1beta1",
        "kind": "Peer",
        "metadata": {"name": "Asterisk"},
        "spec": {"credentials": {"username": "ast", "secret": "s"}, **spec},
    }


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        parse_resource(data)
    return {p.path: p.problem for p in problems(info.value)}


def test_agent_defaults_and_numbers_as_strings() -> None:
    a = parse_resource(agent(credentials={"username": 1001, "secret": 1234}))
    assert isinstance(a, Agent)
    assert a.spec.credentials.username == "1001" and a.spec.credentials.secret == "1234"
    assert a.spec.privacy == "None" and a.spec.ex_maxContact == 1
    assert a.natural_keys() == ("1001@sip.local",)


@pytest.mark.parametrize(
    ("spec", "path", "problem"),
    [
        (
            {"credentials": {"username": "10", "secret": "x"}},
            "spec.credentials.username",
            "at least 3 characters",
        ),
        (
            {"credentials": {"username": "u" * 101, "secret": "x"}},
            "spec.credentials.username",
            "at most 100 characters",
        ),
        (
            {"credentials": {"username": "a b c", "secret": "x"}},
            "spec.credentials.username",
            "must not contain",
        ),
        ({"credentials": {"username": "1001"}}, "spec.credentials.secret", "required"),
        ({"domains": []}, "spec.domains", "at least 1 item"),
        ({"domains": ["sip.local", "SIP.local"]}, "spec.domains", "must not repeat"),
        ({"domains": ["not a host"]}, "spec.domains[0]", "not a host name"),
        ({"privacy": "Public"}, "spec.privacy", "must be one of"),
        ({"ex_maxContact": 0}, "spec.ex_maxContact", "greater than or equal to 1"),
        ({"color": "red"}, "spec.color", "unknown field"),
    ],
)
def test_agent_rules(spec: dict[str, Any], path: str, problem: str) -> None:
    found = errors_of(agent(**spec))
    assert path in found, found
    assert problem in found[path]


def test_metadata_name_and_api_version() -> None:
    bad = agent()
    bad["metadata"] = {"name": "JD"}
    bad["apiVersion"] = "v2"
    found = errors_of(bad)
    assert found["metadata.name"] == "at least 3 characters"
    assert "must be one of" in found["apiVersion"]
    for version in ("v1beta1", "v1", "v1.0"):
        assert parse_resource({**agent(), "apiVersion": version}).apiVersion == version


def test_kind_is_required_and_known() -> None:
    assert "kind" in errors_of({"metadata": {"name": "abc"}})
    assert errors_of({**agent(), "kind": "Robot"})["kind"].startswith("must be one of")
    # v1 spellings of kinds
    assert isinstance(parse_resource({**agent(), "kind": "agent"}), Agent)
    assert isinstance(parse_resource({**number(), "kind": "DID"}), Number)
    with pytest.raises(ValidationError):
        parse_resource(agent(), kind="Peer")


def test_describe_is_one_line() -> None:
    with pytest.raises(ValidationError) as info:
        parse_resource(agent(credentials={"username": "10", "secret": "x"}, ex_maxContact=0))
    line = describe(info.value)
    assert "\n" not in line
    assert "spec.credentials.username: at least 3 characters" in line
    assert "; spec.ex_maxContact: " in line


def test_domain_single_and_list_egress_policies() -> None:
    one = parse_resource(domain(egressPolicy={"rule": r"\+?1?[2-9]\d{9}", "numberRef": "dd-1"}))
    assert isinstance(one, Domain)
    assert [p.numberRef for p in one.spec.context.policies] == ["dd-1"]
    many = parse_resource(
        domain(
            egressPolicies=[
                {"rule": "1.*", "numberRef": "dd-1"},
                {"rule": ".*", "numberRef": "dd-2"},
            ]
        )
    )
    assert isinstance(many, Domain)
    assert [p.numberRef for p in many.spec.context.policies] == ["dd-1", "dd-2"]
    legacy = parse_resource(domain(egressPolicy={"rule": ".*", "didRef": "dd-3"}))
    assert isinstance(legacy, Domain) and legacy.spec.context.policies[0].numberRef == "dd-3"
    none = parse_resource(domain())
    assert isinstance(none, Domain) and none.spec.context.policies == []


def test_domain_bad_regex_and_both_styles() -> None:
    found = errors_of(domain(egressPolicy={"rule": "([0-9", "numberRef": "dd-1"}))
    assert "not a valid regular expression" in found["spec.context.egressPolicy.rule"]
    found = errors_of(
        domain(
            egressPolicy={"rule": ".*", "numberRef": "dd-1"},
            egressPolicies=[{"rule": ".*", "numberRef": "dd-1"}],
        )
    )
    assert "not both" in found["spec.context"]
    assert "spec.context.domainUri" in errors_of(domain(domainUri="bad uri"))


@pytest.mark.parametrize(
    "entry",
    [
        "192.168.0.0/16",
        "10.0.0.1",
        "192.168.1.0/255.255.255.0",
        "0.0.0.0/0",
        "2001:db8::/32",
        "::1",
        "fe80::1/128",
    ],
)
def test_acl_accepts(entry: str) -> None:
    parse_resource(domain(accessControlList={"allow": [entry], "deny": [entry]}))


@pytest.mark.parametrize("entry", ["192.168.0.0/33", "300.1.1.1", "host.example", "10.0.0.0/x"])
def test_acl_refuses(entry: str) -> None:
    found = errors_of(domain(accessControlList={"deny": [entry]}))
    assert "not an IP address, CIDR or IP/mask" in found["spec.context.accessControlList.deny[0]"]


def test_peer() -> None:
    p = parse_resource(
        peer(
            device="astserver",
            contactAddr="192.168.1.2:6060",
            ex_maxContact=4,
            loadBalancing={"algorithm": "least-sessions"},
        )
    )
    assert isinstance(p, Peer)
    assert p.spec.loadBalancing.algorithm == "least-sessions"
    default = parse_resource(peer())
    assert isinstance(default, Peer) and default.spec.loadBalancing.algorithm == "round-robin"
    assert "spec.loadBalancing.algorithm" in errors_of(peer(loadBalancing={"algorithm": "random"}))
    assert "spec.contactAddr" in errors_of(peer(contactAddr="1.2.3.4:99999"))
    parse_resource(peer(contactAddr="[2001:db8::1]:5060"))


def test_gateway() -> None:
    g = parse_resource(
        gateway(
            port=5060,
            transport="TCP",
            credentials={"username": "pbx-1", "secret": "1234"},
            registries=["sip2.provider.net:5080"],
        )
    )
    assert isinstance(g, Gateway)
    assert g.spec.transport == "tcp" and g.registers
    assert g.natural_keys() == ("sip.provider.net:5060",)
    plain = parse_resource(gateway())
    assert isinstance(plain, Gateway) and not plain.registers and plain.spec.port is None
    off = parse_resource(
        gateway(sendRegister=False, credentials={"username": "pbx", "secret": "s"})
    )
    assert isinstance(off, Gateway) and not off.registers
    assert "spec.transport" in errors_of(gateway(transport="sctp"))
    assert "spec.port" in errors_of(gateway(port=70000))
    assert "spec.host" in errors_of({**gateway(), "spec": {}})


def test_number() -> None:
    n = parse_resource(
        {
            **number(),
            "metadata": {
                "gwRef": "gw-prov",
                "geoInfo": {"city": "Columbus", "country": "USA", "countryISOCode": "US"},
            },
        }
    )
    assert isinstance(n, Number) and n.digits == "17066041487"
    assert n.metadata.geoInfo is not None and n.metadata.geoInfo.city == "Columbus"
    assert "spec.location.telUrl" in errors_of(number(telUrl="17066041487"))
    assert "spec.location.aorLink" in errors_of(number(aorLink="1001@sip.local"))
    assert errors_of({**number(), "metadata": {}})["metadata.gwRef"] == "required"


def test_user_and_secret_is_write_only() -> None:
    u = parse_resource(
        {
            "kind": "User",
            "metadata": {"name": "Admin"},
            "spec": {"credentials": {"username": "admin", "secret": "changeit"}},
        }
    )
    assert isinstance(u, User)
    out = public_dict(u)
    assert out["spec"]["credentials"] == {"username": "admin"}
    assert "changeit" not in str(out)
    assert u.model_dump()["spec"]["credentials"]["secret"] == "changeit"


def test_xxh32_known_values() -> None:
    assert xxh32(b"") == 0x02CC5D05
    assert xxh32(b"abc") == 0x32D153FF
    assert xxh32(b"Nobody inspects the spammish repetition") == 0xE2293B2F


def test_refs_are_stable_and_follow_v1() -> None:
    a1, a2 = parse_resource(agent()), parse_resource(agent())
    assert a1.ref == a2.ref == make_ref("Agent", "1001sip.local")
    assert a1.ref.startswith("ag")
    prefixes = {
        "Domain": parse_resource(domain()).ref[:2],
        "Gateway": parse_resource(gateway()).ref[:2],
        "Number": parse_resource(number()).ref[:2],
        "Peer": parse_resource(peer()).ref[:2],
        "User": parse_resource(
            {
                "kind": "User",
                "metadata": {"name": "Admin"},
                "spec": {"credentials": {"username": "admin", "secret": "x"}},
            }
        ).ref[:2],
    }
    assert prefixes == {"Domain": "dm", "Gateway": "gw", "Number": "dd", "Peer": "pr", "User": "ur"}
    assert parse_resource(gateway()).ref == "gw50a1a4ca"  # XXH32('sip.provider.net', 0xABCD)
    given = parse_resource({**agent(), "metadata": {"name": "John", "ref": "ag-john"}})
    assert given.ref == "ag-john"
    assert "metadata.ref" in errors_of({**agent(), "metadata": {"name": "John", "ref": "a b"}})


def test_normalize_key() -> None:
    assert normalize_key("Number", "tel:+1-706-604-1487") == "17066041487"
    assert normalize_key("Domain", "SIP.Local") == "sip.local"
    assert normalize_key("Agent", "John@SIP.local") == "John@sip.local"


def test_models_are_immutable() -> None:
    a = parse_resource(agent())
    with pytest.raises(ValidationError):
        a.spec.credentials.username = "x"  # type: ignore[misc]
