"""``GET /metrics``: Prometheus text, read from the running server at scrape time.

The SIP core keeps plain int counters (:mod:`routr.core.stats`, the auth failures, the
calls started); everything else is the current state (transactions, bindings, calls,
gateway registrations, bans, the event bus' drops). A :class:`RoutrCollector` turns both
into metric families when scraped, in one registry per API context: never the process'
default one, since several servers may run in one process (tests do).
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector

from routr import gcwatch

from .context import ApiContext

_log = logging.getLogger("routr.api")

#: The states of an outbound registration (``routr.core.gateways.Registration``), each
#: a series of ``routr_gateway_registration_state`` so that a change moves a value
#: rather than creating a series.
GATEWAY_STATES = ("idle", "registering", "registered", "failed", "unregistering", "unregistered")


class RoutrCollector:
    """The metric families of one server, built on each scrape."""

    def __init__(self, ctx: ApiContext) -> None:
        # Weak: the module's table of registries must not keep a stopped server alive.
        self._ctx = weakref.ref(ctx)
        #: Counted by :func:`render` before the scrape (the location store is async).
        self.bindings: int | None = None
        self.counted_at = float("-inf")

    def collect(self) -> Iterator[Metric]:
        ctx = self._ctx()
        if ctx is None:
            return
        yield from _sip(ctx)
        yield from _state(ctx, self.bindings)
        yield from _collector()


def _collector() -> Iterator[Metric]:
    """The cyclic collector's pauses, by generation (the process' watch, when installed)."""
    watch = gcwatch.installed()
    if watch is None:
        return
    pauses = HistogramMetricFamily(
        "routr_gc_pause_seconds",
        "Pauses of the cyclic garbage collector (the event loop stands still meanwhile), "
        "by generation.",
        labels=["generation"],
    )
    longest = GaugeMetricFamily(
        "routr_gc_longest_pause_seconds",
        "The longest collector pause since the process started, by generation.",
        labels=["generation"],
    )
    for generation in range(3):
        counts, total = watch.counts[generation], 0
        buckets: list[tuple[str, float]] = []
        for bound, n in zip((*gcwatch.PAUSE_BUCKETS, math.inf), counts, strict=True):
            total += n
            buckets.append((_le(bound), total))
        label = [str(generation)]
        pauses.add_metric(label, buckets, watch.seconds[generation])
        longest.add_metric(label, watch.longest[generation])
    yield pauses
    yield longest


def _sip(ctx: ApiContext) -> Iterator[Metric]:
    sip = ctx.sip
    stats = sip.stats
    requests = CounterMetricFamily(
        "routr_sip_requests", "SIP requests received, by method.", labels=["method"]
    )
    for method, n in stats.requests.items():
        requests.add_metric([method], n)
    yield requests
    for name, counts, doc in (
        ("routr_sip_responses", stats.responses_sent,
         "SIP responses sent, routr's own and relayed (retransmissions too), by status "
         "class."),
        ("routr_sip_responses_received", stats.responses_received,
         "SIP responses received, by status class."),
    ):  # fmt: skip
        family = CounterMetricFamily(name, doc, labels=["class"])
        for status_class, n in stats.classes(counts).items():
            family.add_metric([status_class], n)
        yield family
    parse_errors = CounterMetricFamily(
        "routr_sip_parse_errors",
        "SIP messages that did not parse or check, by the status they were answered with.",
        labels=["status"],
    )
    for status, n in sorted(stats.parse_errors.items()):
        parse_errors.add_metric([str(status)], n)
    yield parse_errors
    hits = CounterMetricFamily(
        "routr_limit_hits",
        "Times a limit of spec.security.limits (and maxMessageSize, "
        "maxConnectionsPerSource, ex_maxContact) was hit, by limit (docs/limits.md).",
        labels=["limit"],
    )
    for limit, n in stats.limit_hits.counts.items():
        hits.add_metric([limit], n)
    yield hits
    counters = sip.counters
    yield CounterMetricFamily(
        "routr_sip_rejected",
        "SIP requests answered with an error before dispatch (parse errors, ACL).",
        value=counters.rejected,
    )
    yield CounterMetricFamily(
        "routr_sip_dropped",
        "SIP messages dropped unanswered (banned sources, scanners, no way back).",
        value=counters.dropped,
    )
    yield CounterMetricFamily(
        "routr_log_lines_suppressed",
        "Lines about refused or dropped messages not written: counted into the next line "
        "for the same source and reason.",
        value=ctx.suppressed(),
    )
    buckets, _, seconds = stats.histogram()
    yield HistogramMetricFamily(
        "routr_sip_handling_seconds",
        "Time to handle a SIP message, its synchronous part (routing and location "
        "lookups run after it).",
        buckets=[(_le(bound), n) for bound, n in buckets],
        sum_value=seconds,
    )
    yield CounterMetricFamily(
        "routr_auth_failures",
        "Digest challenges answered with wrong credentials (REGISTER and other requests).",
        value=sip.auth_failures.total,
    )
    aors = sip.aor_limit
    yield CounterMetricFamily(
        "routr_aor_locks",
        "AORs locked by authFailureBan.perAor: too many failed authentications against one "
        "AOR from any addresses.",
        value=aors.locks,
    )
    yield CounterMetricFamily(
        "routr_aor_lock_refusals",
        "Authentications from new addresses refused (answered as a wrong password) while "
        "their AOR was locked.",
        value=aors.refused,
    )
    yield GaugeMetricFamily(
        "routr_aors_locked", "AORs locked now (authFailureBan.perAor).",
        aors.locked_now(sip.clock()),
    )  # fmt: skip


def _state(ctx: ApiContext, bindings: int | None) -> Iterator[Metric]:
    sip = ctx.sip
    transactions = GaugeMetricFamily(
        "routr_transactions_active",
        "SIP transactions of the proxy and registrar, by side.",
        labels=["side"],
    )
    transactions.add_metric(["server"], len(sip.proxy.servers))
    transactions.add_metric(["client"], len(sip.proxy.branches.clients))
    yield transactions
    if bindings is not None:
        yield GaugeMetricFamily("routr_bindings", "Bindings in the location store.", bindings)
    started = sip.calls.started
    active = dict.fromkeys(started, 0)
    for call in sip.calls.in_progress():
        active[call.strategy] = active.get(call.strategy, 0) + 1
    calls = GaugeMetricFamily(
        "routr_calls_active", "Calls in progress, by routing strategy.", labels=["strategy"]
    )
    for strategy, n in sorted(active.items()):
        calls.add_metric([strategy], n)
    yield calls
    calls_total = CounterMetricFamily(
        "routr_calls", "Calls started, by routing strategy.", labels=["strategy"]
    )
    for strategy, n in sorted(started.items()):
        calls_total.add_metric([strategy], n)
    yield calls_total
    registered = GaugeMetricFamily(
        "routr_gateway_registered",
        "1 when routr is registered at the Gateway's registrar, else 0.",
        labels=["ref", "registrar"],
    )
    states = GaugeMetricFamily(
        "routr_gateway_registration_state",
        "1 for the state the registration at the Gateway's registrar is in, 0 for others.",
        labels=["ref", "registrar", "state"],
    )
    for status in sip.gateways.status():
        labels = [str(status["ref"]), str(status["registrar"])]
        registered.add_metric(labels, 1 if status["registered"] else 0)
        for state in GATEWAY_STATES:
            states.add_metric([*labels, state], 1 if status["state"] == state else 0)
    yield registered
    yield states
    yield GaugeMetricFamily(
        "routr_bans", "Source addresses banned now.", len(sip.guard.banned(sip.clock()))
    )
    dropped = CounterMetricFamily(
        "routr_events_dropped",
        "Events dropped by full subscriber queues, by queue name.",
        labels=["queue"],
    )
    for queue, n in sorted(ctx.bus.dropped.items()):
        dropped.add_metric([queue], n)
    yield dropped


def _le(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(bound)


#: One registry per API context, by ``id`` (contexts are not hashable), forgotten when
#: its context is.
_registries: dict[int, tuple[CollectorRegistry, RoutrCollector]] = {}


def _registry(ctx: ApiContext) -> tuple[CollectorRegistry, RoutrCollector]:
    key = id(ctx)
    found = _registries.get(key)
    if found is None:
        registry = CollectorRegistry()
        collector = RoutrCollector(ctx)
        registry.register(collector)
        ProcessCollector(registry=registry)
        found = _registries[key] = (registry, collector)
        weakref.finalize(ctx, _registries.pop, key, None)
    return found


BINDINGS_EVERY = 5.0  # seconds between two counts of the bindings


async def render(ctx: ApiContext) -> tuple[bytes, str]:
    """The Prometheus text exposition of ``ctx``'s server and its media type."""
    registry, collector = _registry(ctx)
    sip = ctx.sip
    now = time.monotonic()
    # Counting reads every binding (all of Redis with that store): at most once in a while
    # however often, and by whom, /metrics is asked.
    if now - collector.counted_at >= BINDINGS_EVERY:
        collector.counted_at = now
        try:
            collector.bindings = len(await sip.location.list(sip.clock()))
        except Exception as exc:  # an unreachable store must not take the other metrics along
            _log.warning("metrics: cannot count the bindings: %s", exc)
            collector.bindings = None
    # No await from here on: a concurrent scrape cannot change ``bindings`` meanwhile.
    return generate_latest(registry), CONTENT_TYPE_LATEST
