"""``GET /metrics`` against the real server process (issue 12): real SIP over UDP moves the
counters, read back the way Prometheus reads them.

Domain ``sip.local`` with Agents 1001 and 1002. Nothing else talks to the server, so the
counts are exact; each expectation is polled until it holds (or times out), not slept on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.data import agent, domain, write_resources
from support.server import RoutrProcess
from support.sip import UdpClient, options, register
from support.ua import UA, Call, is_request

DOMAIN = "sip.local"
SECRET = "s3cret"
ADMIN_SECRET = "metrics-admin-secret"
NOAUTH = {"security": {"authenticateRequests": False}}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
Factory = Callable[..., RoutrProcess]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Factory]:
    """Start routr (UDP) with the given spec; stopped and checked at teardown."""
    data = write_resources(
        tmp_path / "data", domain(DOMAIN), agent("1001", SECRET, [DOMAIN]),
        agent("1002", SECRET, [DOMAIN]),
    )  # fmt: skip
    procs: list[RoutrProcess] = []

    def factory(spec: dict[str, Any] | None = None) -> RoutrProcess:
        env = {"INITIAL_API_SECRET": ADMIN_SECRET}
        proc = RoutrProcess(tmp_path, ("udp",), spec, env=env, data=data).start()
        procs.append(proc)
        return proc

    yield factory
    for proc in procs:
        assert proc.stop() == 0
        proc.assert_no_tracebacks()


def scrape(proc: RoutrProcess, **kw: Any) -> Samples:
    r = httpx.get(f"{proc.api}/metrics", timeout=10, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    """``{label value: sample value}`` of every sample of ``name``."""
    return {dict(key)[label]: v for (n, key), v in samples.items() if n == name}


def eventually(
    proc: RoutrProcess, check: Callable[[Samples], bool], timeout: float = 5.0
) -> Samples:
    """Scrape until ``check`` holds; the last scrape either way (the asserts that follow say
    what is missing)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(proc)
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def udp(proc: RoutrProcess) -> UdpClient:
    return UdpClient(("127.0.0.1", proc.ports["udp"]))


def contact(client: UdpClient, user: str) -> str:
    host, port = client.local
    return f"<sip:{user}@{host}:{port}>"


# -- what SIP traffic moves -------------------------------------------------------------


def test_register_options_and_a_bad_message_move_their_counters(start: Factory) -> None:
    routr = start()
    before = scrape(routr)
    assert value(before, "routr_sip_requests_total", method="REGISTER") == 0
    assert value(before, "routr_auth_failures_total") == 0
    assert value(before, "routr_bindings") == 0
    assert value(before, "routr_sip_handling_seconds_count") == 0

    with closing(udp(routr)) as client:
        # 401 then 200: two REGISTERs, one binding
        assert register(client, "1001", DOMAIN, SECRET, contact(client, "1001")).status == 200
        # 401 then 401 again: the wrong answer to the challenge is an auth failure
        assert register(client, "1002", DOMAIN, "wrong", contact(client, "1002")).status == 401
        target = f"127.0.0.1:{routr.ports['udp']}"
        assert client.request(options(target, local=client.local)).status == 200
        bad = options(target, local=client.local).replace(b" OPTIONS\r\n", b" OPTIONS x\r\n")
        assert client.request(bad).status == 400

    # the bindings are counted at most every 5 s (metrics.BINDINGS_EVERY)
    after = eventually(
        routr,
        lambda s: (
            value(s, "routr_sip_handling_seconds_count") == 6 and value(s, "routr_bindings") == 1
        ),
        timeout=12,
    )
    assert value(after, "routr_sip_requests_total", method="REGISTER") == 4
    assert value(after, "routr_sip_requests_total", method="OPTIONS") == 2
    assert value(after, "routr_sip_requests_total", method="INVITE") == 0
    assert labelled(after, "routr_sip_responses_total", "class") == {
        "1xx": 0, "2xx": 2, "3xx": 0, "4xx": 4, "5xx": 0, "6xx": 0,
    }  # fmt: skip
    assert value(after, "routr_sip_parse_errors_total", status="400") == 1
    assert value(after, "routr_sip_rejected_total") == 1
    assert value(after, "routr_auth_failures_total") == 1
    assert value(after, "routr_bindings") == 1
    assert value(after, "routr_sip_handling_seconds_count") == 6
    assert value(after, "routr_sip_handling_seconds_bucket", le="+Inf") == 6
    seconds = value(after, "routr_sip_handling_seconds_sum")
    assert seconds is not None and seconds > 0
    assert value(after, "routr_bans") == 0
    buckets = labelled(after, "routr_sip_handling_seconds_bucket", "le")
    cumulative = [n for _, n in sorted(buckets.items(), key=lambda item: float(item[0]))]
    assert cumulative == sorted(cumulative) and cumulative[-1] == 6, buckets


def test_a_call_counts_as_active_then_as_ended_by_strategy(start: Factory) -> None:
    routr = start(NOAUTH)
    with UA() as caller, UA() as callee, closing(udp(routr)) as client:
        assert register(client, "1002", DOMAIN, SECRET, callee.contact("1002")).status == 200
        # The REGISTERs' transactions linger (Timer J), so the INVITE's is counted on top.
        registered = scrape(routr)
        servers = value(registered, "routr_transactions_active", side="server")
        assert servers is not None
        call = Call(caller, ("127.0.0.1", routr.ports["udp"]), f"sip:1002@{DOMAIN}",
                    f"sip:1001@{DOMAIN}")  # fmt: skip
        call.invite()
        rx = callee.wait(is_request("INVITE"))
        callee.reply(rx, 180, to_tag="ringing")

        ringing = eventually(
            routr, lambda s: sum(labelled(s, "routr_calls_active", "strategy").values()) == 1
        )
        active = labelled(ringing, "routr_calls_active", "strategy")
        assert list(active.values()) == [1], active
        (strategy,) = active
        assert labelled(ringing, "routr_calls_total", "strategy") == {strategy: 1}
        assert value(ringing, "routr_transactions_active", side="server") == servers + 1
        assert value(ringing, "routr_transactions_active", side="client") == 1

        callee.reply(rx, 486, to_tag="ringing")
        assert call.final().status == 486
        call.ack_non_2xx()
        ended = eventually(routr, lambda s: value(s, "routr_calls_active", strategy=strategy) == 0)
    assert value(ended, "routr_calls_active", strategy=strategy) == 0
    assert value(ended, "routr_calls_total", strategy=strategy) == 1
    assert value(ended, "routr_sip_requests_total", method="INVITE") == 1
    assert value(ended, "routr_sip_requests_total", method="ACK") == 1
    # 180 and 486 from the callee; relayed to the caller after routr's own 100 Trying
    received = labelled(ended, "routr_sip_responses_received_total", "class")
    assert received == {"1xx": 1, "2xx": 0, "3xx": 0, "4xx": 1, "5xx": 0, "6xx": 0}
    sent = labelled(ended, "routr_sip_responses_total", "class")
    sent_before = labelled(registered, "routr_sip_responses_total", "class")
    assert {k: n - sent_before[k] for k, n in sent.items()} == {
        "1xx": 2, "2xx": 0, "3xx": 0, "4xx": 1, "5xx": 0, "6xx": 0,
    }  # fmt: skip


# -- who may read them -------------------------------------------------------------------


def test_metrics_need_no_token_by_default(start: Factory) -> None:
    routr = start()
    r = httpx.get(f"{routr.api}/metrics", timeout=10)
    assert r.status_code == 200
    assert "# TYPE routr_sip_handling_seconds histogram" in r.text
    assert "# TYPE routr_sip_requests_total counter" in r.text


def test_metrics_auth_asks_for_a_token(start: Factory) -> None:
    routr = start({"restService": {"port": 0, "metricsAuth": True}})
    url = f"{routr.api}/metrics"
    assert httpx.get(url, timeout=10).status_code == 401
    bad = httpx.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=10)
    assert bad.status_code == 401
    login = httpx.get(f"{routr.api}/api/v1beta1/token", auth=("admin", ADMIN_SECRET), timeout=10)
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['data']}"}
    assert value(scrape(routr, headers=headers), "routr_bans") == 0
