"""route, trace: how routr would route a call, and what a call's messages were."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer

from rctl.app import OUTPUT, command_set
from rctl.output import Format, emit, to_json, to_yaml
from rctl.session import client, options

commands = command_set()


class Transport(StrEnum):
    udp = "udp"
    tcp = "tcp"
    tls = "tls"
    ws = "ws"
    wss = "wss"


TRANSPORT = typer.Option(Transport.udp, "--transport", help="udp, tcp, tls, ws, wss")
PCAP = typer.Option(None, "--pcap", help="write the messages to this pcap file")


def _explanation(answer: dict[str, Any]) -> str:
    """A few lines: the sentence, then the verdicts it rests on."""
    lines = [str(answer.get("verdict", ""))]
    caller = answer.get("caller")
    if caller:
        lines.append(f"  caller:   {caller.get('why')}")
    auth = answer.get("authentication") or {}
    if auth.get("asked"):
        lines.append(
            f"  auth:     challenged first ({auth.get('status')}, realm {auth.get('realm')})"
        )
    guard, acl = answer.get("guard") or {}, answer.get("acl")
    lines.append(
        f"  guard:    {'banned' if guard.get('banned') else 'not banned'}; global ACL {acl}"
    )
    domain_acl = answer.get("domainAcl")
    if domain_acl:
        verdict = "allows" if domain_acl.get("allowed") else "denies"
        lines.append(f"  domain:   the ACL of {domain_acl.get('domain')} {verdict} the source")
    decision = answer.get("decision") or {}
    for key, label in (("rule", "rule"), ("calleeRef", "callee"), ("gatewayRef", "gateway"),
                       ("peerRef", "peer")):  # fmt: skip
        if decision.get(key):
            lines.append(f"  {label + ':':<9} {decision[key]}")
    for target in decision.get("targets") or []:
        hop = f" via {target['hop']}" if target.get("hop") else ""
        lines.append(f"  target:   {target.get('uri')}{hop}")
    return "\n".join(lines)


@commands.command()
def route(
    ctx: typer.Context,
    caller: str = typer.Argument(..., metavar="FROM", help="the caller, e.g. sip:1001@sip.local"),
    callee: str = typer.Argument(..., metavar="TO", help="the callee, e.g. tel:+17066041487"),
    source: str = typer.Option("127.0.0.1:5060", "--source", help="the sender's IP:PORT"),
    transport: Transport = TRANSPORT,
    method: str = typer.Option("INVITE", "--method", help="the request's method"),
    output: Format | None = OUTPUT,
) -> None:
    """How routr would route a request from FROM to TO (nothing is sent)."""
    fmt = options(ctx).format(output)
    body = {"from": caller, "to": callee, "source": source, "transport": transport.value,
            "method": method.upper()}  # fmt: skip
    answer = client(ctx).data("POST", "/route", json=body) or {}
    if fmt is Format.json:
        emit(to_json(answer))
    elif fmt is Format.yaml:
        emit(to_yaml(answer).rstrip("\n"))
    else:
        emit(_explanation(answer))


@commands.command()
def trace(
    ctx: typer.Context,
    call_id: str = typer.Argument(..., metavar="CALL-ID", help="the Call-ID (see rctl calls)"),
    pcap: Path | None = PCAP,
    output: Format | None = OUTPUT,
) -> None:
    """A call's SIP messages as a ladder (who sent what to whom, when); --pcap for Wireshark."""
    fmt = options(ctx).format(output)
    api = client(ctx)
    path = f"/calls/{quote(call_id, safe='@')}/trace"
    if pcap is not None:
        pcap.write_bytes(api.send("GET", path, params={"format": "pcap"}).content)
        emit(f"wrote {pcap}")
    elif fmt is Format.json:
        emit(to_json(api.get(path)))
    elif fmt is Format.yaml:
        emit(to_yaml(api.get(path)).rstrip("\n"))
    else:
        emit(api.send("GET", path, params={"format": "text"}).text.rstrip("\n"))
