"""WebSocket callers and callees: their dialogs go through routr even with recordRoute off."""

from __future__ import annotations

import uuid

from registrar_kit import (
    DOMAIN,
    Registration,
    answer,
    build,
    expect_request,
    final,
    hostport,
    running,
)
from support.sip import UdpClient, WsClient

from routr.sip.message import Response, parse_message

AOR_1001 = f"sip:1001@{DOMAIN}"


def test_websocket_callee_dialog_is_record_routed_and_bye_reaches_it(tmp_path):
    with running(tmp_path, ("udp", "ws")) as proc:  # recordRoute is off by default
        phone = WsClient(f"ws://127.0.0.1:{proc.ports['ws']}")
        try:
            host = f"{uuid.uuid4().hex[:10]}.invalid"
            reg = Registration(phone, "1001", "1234", transport="WS", via_host=(host, 0))
            assert reg.send([f"<sip:abc@{host};transport=ws>"], expires=600).status == 200
            with UdpClient((proc.host, proc.ports["udp"])) as caller:
                here = hostport(*caller.local)
                call_id = f"{uuid.uuid4().hex}@e2e"
                invite_bytes = build(
                    "INVITE", AOR_1001, via=f"SIP/2.0/UDP {here}",
                    from_uri="sip:stranger@outside.example", to_uri=AOR_1001,
                    call_id=call_id, cseq=1, contacts=[f"<sip:s@{here}>"],
                )  # fmt: skip
                caller.send(invite_bytes)
                invite = expect_request(phone, "INVITE")
                routes = invite.get_all("record-route")
                assert routes and ";r=" in routes[0], invite.to_bytes()
                # A UAS copies Record-Route into its 2xx (RFC 3261 §12.1.1).
                contact = ("Contact", f"<sip:abc@{host};transport=ws>")
                answer(
                    phone, invite, 200, headers=[contact, *(("Record-Route", r) for r in routes)]
                )
                ok = final(caller)
                assert isinstance(ok, Response) and ok.status == 200
                # The callee's Contact now names its flow, and the Route set goes through us.
                target = ok.contacts[0].uri
                assert ".invalid" not in str(target)
                route = list(reversed(ok.get_all("record-route")))  # the UAC's route set
                bye_bytes = build(
                    "BYE", str(target), via=f"SIP/2.0/UDP {here}",
                    from_uri="sip:stranger@outside.example", to_uri=AOR_1001,
                    call_id=call_id, cseq=2, to_tag=ok.to.tag,
                    headers=[("Route", r) for r in route],
                )  # fmt: skip
                # The dialog's From tag is the INVITE's (build makes a new one each time).
                new_tag = parse_message(bye_bytes).from_.tag
                caller.send(bye_bytes.replace(f";tag={new_tag}".encode(),
                                              f";tag={ok.from_.tag}".encode()))  # fmt: skip
                bye = expect_request(phone, "BYE")
                answer(phone, bye)
                assert final(caller).status == 200
        finally:
            phone.close()
