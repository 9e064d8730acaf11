"""``GET /metrics``: Prometheus text, read from the running server at scrape time."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST

from .context import ApiContext


def render(ctx: ApiContext) -> tuple[bytes, str]:
    counters = ctx.sip.counters.to_dict()
    lines = [f"routr_sip_{name}_total {value}" for name, value in counters.items()]
    return ("\n".join(lines) + "\n").encode(), CONTENT_TYPE_LATEST
