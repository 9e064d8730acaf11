"""``GET /calls/{call_id}/trace``: a call's SIP messages as JSON, a text ladder or pcap."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from routr.core.trace import CallTrace, Record, redact

from .errors import DOCUMENTED, NotFound, envelope
from .pcap import pcap
from .resources import ctx_of

router = APIRouter(tags=["live"])
PCAP = "application/vnd.tcpdump.pcap"


def _address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _first_line(record: Record) -> str:
    return record.data.split(b"\r\n", 1)[0].decode("utf-8", "replace")


def _record(record: Record) -> dict[str, Any]:
    return {
        "time": datetime.fromtimestamp(record.time, UTC).isoformat(timespec="milliseconds"),
        "direction": record.direction,
        "transport": record.transport,
        "from": _address(record.origin),
        "to": _address(record.destination),
        "firstLine": _first_line(record),
        "message": redact(record.data).decode("utf-8", "replace"),
    }


def ladder(trace: CallTrace) -> str:
    """One line per message: time since the first, who to whom, and what."""
    lines = [f"call {trace.call_id}"]
    for record in trace.records:
        offset = record.time - trace.started
        lines.append(f"{offset:9.3f}s  {_address(record.origin):>21} --> "
                     f"{_address(record.destination):<21} {record.transport:<4} "
                     f"{_first_line(record)}")  # fmt: skip
    if trace.dropped:
        lines.append(f"({trace.dropped} more messages not kept: spec.trace.messages)")
    return "\n".join(lines) + "\n"


@router.get("/calls/{call_id}/trace", summary="A call's SIP messages", responses=DOCUMENTED)
async def call_trace(
    request: Request, call_id: str, format: Literal["json", "text", "pcap"] = "json"
) -> Response:
    ctx = ctx_of(request)
    trace = ctx.sip.traces.get(call_id)
    if trace is None:
        mode = ctx.sip.traces.mode
        why = (
            "tracing is off (spec.trace.mode)" if mode == "off" else "not traced or no longer kept"
        )
        raise NotFound(f"no trace of call {call_id}: {why}")
    if format == "text":
        return PlainTextResponse(ladder(trace))
    if format == "pcap":
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in call_id)[:64]
        headers = {"Content-Disposition": f'attachment; filename="{name}.pcap"'}
        return Response(pcap(trace.records), media_type=PCAP, headers=headers)
    call = next((c for c in ctx.sip.calls_in_progress() + ctx.sip.recent_calls()
                 if c["callId"] == call_id), None)  # fmt: skip
    body = {
        "callId": call_id,
        "call": call,  # the routing decision: strategy, refs, state, cause
        "messages": [_record(r) for r in trace.records],
        "dropped": trace.dropped,
    }
    return JSONResponse(envelope(200, body))
