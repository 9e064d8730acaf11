"""rctl route and rctl trace against the real server."""

from __future__ import annotations

import json
from pathlib import Path

from rctl_kit import Rctl, create_agents
from support.ua import UA, Call


def test_route_explains_in_words_and_as_json(rctl: Rctl, domain_uri: str) -> None:
    create_agents(rctl, domain_uri, "7001", "7002")
    text = rctl.ok("route", f"sip:7001@{domain_uri}", f"sip:7002@{domain_uri}")
    lines = text.splitlines()
    assert lines[0].startswith("INVITE from Agent")
    assert "INTRA_DOMAIN" in lines[0] and "480" in lines[0]  # 7002 is not registered
    assert any(line.strip().startswith("caller:") for line in lines)
    answer = json.loads(rctl.ok("route", f"sip:7001@{domain_uri}", "sip:bob@example.net",
                                "--source", "127.0.0.9:5060", "-o", "json"))  # fmt: skip
    assert answer["caller"]["kind"] == "Agent" and answer["decision"]["status"] == 403
    bad = rctl("route", "sip:a@b", "sip:c@d", "--source", "nowhere")
    assert bad.code == 1 and "source" in bad.err and len(bad.err.strip().splitlines()) == 1


def test_trace_prints_a_ladder_and_writes_a_pcap(rctl: Rctl, server, tmp_path: Path) -> None:
    with UA("udp") as caller:
        call = Call(caller, ("127.0.0.1", server.ports["udp"]), "sip:x@example.net",
                    "sip:y@example.org")  # fmt: skip
        call.invite()
        assert call.final().status == 407  # a stranger to a foreign domain: no relay
    ladder = rctl.ok("trace", call.call_id)
    assert ladder.splitlines()[0] == f"call {call.call_id}"
    assert "INVITE sip:x@example.net" in ladder and "407" in ladder
    path = tmp_path / "call.pcap"
    assert rctl.ok("trace", call.call_id, "--pcap", str(path)).strip() == f"wrote {path}"
    assert path.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"  # pcap, little-endian
    missing = rctl("trace", "no-such-call")
    assert missing.code == 1 and "no trace" in missing.err
