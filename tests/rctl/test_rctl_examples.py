"""The README's walkthrough: examples/company-pbx.yml into a fresh server with rctl only,
two phones calling each other and a call out explained."""

from __future__ import annotations

import json
from pathlib import Path

from e2e.registrar_kit import Registration, challenges
from rctl_kit import Rctl
from support.api import ADMIN_SECRET, start_server
from support.sip import UdpClient
from support.ua import UA, Call, is_request

from routr.sip.digest import make_credentials

PBX = Path(__file__).resolve().parents[2] / "examples" / "company-pbx.yml"
DOMAIN = "sip.acme.local"


def _register(port: int, ua: UA, user: str) -> None:
    with UdpClient(("127.0.0.1", port)) as client:
        reg = Registration(client, user, f"phone-{user}-change-me", DOMAIN)
        assert reg.send([ua.contact(user)], expires=300).status == 200


def test_the_company_pbx_walkthrough(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        rctl = Rctl(tmp_path / "rctl.yaml", server.api)
        rctl.ok("login", server.api, "-u", "admin", "-p", ADMIN_SECRET)
        created = rctl.ok("create", "-f", str(PBX))
        assert len(created.splitlines()) == 15, created
        assert len(rctl.ok("get", "agents", "-o", "name").splitlines()) == 10
        port = server.ports["udp"]
        with UA("udp") as ana, UA("udp") as ben:
            _register(port, ana, "1001")
            _register(port, ben, "1002")
            assert "sip:1002@sip.acme.local" in rctl.ok("locate")
            inside = rctl.ok("route", f"sip:1001@{DOMAIN}", f"sip:1002@{DOMAIN}")
            assert "INTRA_DOMAIN" in inside and f"127.0.0.1:{ben.port}" in inside
            out = json.loads(rctl.ok("route", f"sip:1001@{DOMAIN}", f"sip:+13055550123@{DOMAIN}",
                                     "-o", "json"))  # fmt: skip
            assert out["decision"]["strategy"] == "DOMAIN_EGRESS"
            assert out["decision"]["gatewayRef"] == "gw-trunk"
            # Ana calls Ben: challenged, answered, seen in rctl calls
            call = Call(ana, ("127.0.0.1", port), f"sip:1002@{DOMAIN}", f"sip:1001@{DOMAIN}")
            call.invite()
            challenge = call.final()
            assert challenge.status == 407
            call.ack_non_2xx()
            offered = challenges(challenge, "proxy-authenticate")[0]
            auth = make_credentials(offered, "INVITE", call.to_uri, "1001",
                                    "phone-1001-change-me", "c0ffee")  # fmt: skip
            call.cseq += 1
            call.invite([("Proxy-Authorization", auth)])
            rx = ben.wait(lambda m: is_request("INVITE")(m) and m.call_id == call.call_id)
            ben.reply(rx, 200)
            assert call.final().status == 200
            assert call.call_id in rctl.ok("calls", "-o", "json")
    finally:
        server.stop()
    server.assert_no_tracebacks()
