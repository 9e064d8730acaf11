"""The hot-path Index and the LiveIndex that follows a provider."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from routr_data_testkit import agent, domain, gateway, number, peer, user

from routr.data import FilesProvider, Index, LiveIndex, Snapshot


def sample() -> Snapshot:
    return Snapshot.of(
        [
            gateway("127.0.0.5", 5060, ref="gw-prov"),
            gateway("127.0.0.6", None, ref="gw-any-port"),
            gateway("gw.example.test", 5080, ref="gw-named"),
            number("tel:+17066041487", ref="dd-pstn"),
            number("tel:17066041488", gw_ref="gw-named", ref="dd-two"),
            domain(
                "SIP.Local",
                ref="dm-local",
                egressPolicies=[
                    {"rule": r"\+?1?[2-9]\d{9}", "numberRef": "dd-pstn"},
                    {"rule": r"9\d+", "numberRef": "dd-two"},
                ],
                accessControlList={"allow": ["192.168.0.0/16", "::1"], "deny": ["0.0.0.0/0"]},
            ),
            agent("1001", ("sip.local", "sip.other")),
            peer("ast"),
            user("admin"),
        ]
    )


async def fake_resolver(host: str) -> Sequence[str]:
    if host == "gw.example.test":
        return ["127.0.0.7", "::ffff:127.0.0.8"]
    raise OSError(f"cannot resolve {host}")


def test_lookups() -> None:
    idx = Index(sample(), {"gw.example.test": ["127.0.0.7"]})
    assert idx.domain("sip.local") is idx.domain("SIP.LOCAL") is not None
    assert idx.is_local_domain("sip.local") and not idx.is_local_domain("sip.remote")
    assert idx.agent("1001", "sip.other") is idx.agent("1001", "Sip.Local") is not None
    assert idx.agent("1002", "sip.local") is None
    assert idx.peer("ast") is not None and idx.user("admin") is not None
    for key in ("tel:+17066041487", "+17066041487", "17066041487", "tel:1-706-604-1487"):
        found = idx.number(key)
        assert found is not None and found.ref == "dd-pstn", key
    assert idx.number("7066041487") is None
    assert idx.number_by_ref("dd-two") is not None and idx.gateway_by_ref("gw-prov") is not None


def test_gateway_by_source_address() -> None:
    idx = Index(sample(), {"gw.example.test": ["127.0.0.7"]})
    prov = idx.gateway_from("127.0.0.5", 5060)
    assert prov is not None and prov.ref == "gw-prov"
    assert idx.gateway_from("127.0.0.5", 5061) is None  # it sets a port: the port must match
    any_port = idx.gateway_from("127.0.0.6", 40000)
    assert any_port is not None and any_port.ref == "gw-any-port"
    named = idx.gateway_from("::ffff:127.0.0.7", 5080)
    assert named is not None and named.ref == "gw-named"
    assert idx.gateway_from("127.0.0.9", 5060) is None


async def test_build_resolves_host_names_with_the_given_resolver() -> None:
    snap = sample().with_kind(
        "Gateway", [*sample().items("Gateway"), gateway("nowhere.invalid", 5060, ref="gw-bad")]
    )
    idx = await Index.build(snap, fake_resolver)
    assert idx.gateway_from("127.0.0.8", 5080) is not None  # the IPv4-mapped answer
    assert idx.gateway_from("127.0.0.7", 5080) is not None
    assert len(idx.gateways) == 4  # the unresolvable one is kept, just not by address


def test_egress_rules_match_the_whole_user() -> None:
    idx = Index(sample())
    first = idx.egress_number("sip.local", "+17853178060")
    assert first is not None and first.ref == "dd-pstn"
    second = idx.egress_number("SIP.LOCAL", "9123")
    assert second is not None and second.ref == "dd-two"
    assert idx.egress_number("sip.local", "17853178060999") is None  # prefix match is no match
    assert idx.egress_number("sip.local", "x9123") is None
    assert idx.egress_number("sip.remote", "17853178060") is None
    assert [r.number_ref for r in idx.egress_rules("sip.local")] == ["dd-pstn", "dd-two"]


async def test_live_index_follows_the_provider(tmp_path: Path) -> None:
    async with FilesProvider(tmp_path, poll_interval=0.05) as p:
        live = LiveIndex(p, fake_resolver)
        await live.start()
        try:
            assert live.index.domain("sip.local") is None
            await p.create(domain())
            await p.create(agent("1001"))
            idx = await live.wait_for(lambda i: i.agent("1001", "sip.local") is not None)
            assert idx.domain("sip.local") is not None
            (tmp_path / "peers.yml").write_text(
                "- kind: Peer\n  metadata: {name: Asterisk}\n"
                "  spec: {credentials: {username: ast, secret: x}}\n"
            )
            await live.wait_for(lambda i: i.peer("ast") is not None)
            with pytest.raises(TimeoutError):
                await live.wait_for(lambda i: i.peer("nobody") is not None, timeout=0.2)
        finally:
            await live.close()
