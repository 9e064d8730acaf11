"""HTTP specifics: the v1 REST contract, Basic auth, a service that goes away."""

from __future__ import annotations

import logging

import pytest
from routr_data_testkit import HTTP_SECRET, HTTP_USER, StubService, domain, wait_until

from routr.data import AlreadyExists, ProviderUnavailable
from routr.data.http_provider import HttpProvider


async def test_speaks_the_v1_contract(stub_service: StubService) -> None:
    async with HttpProvider(stub_service.base_url, HTTP_USER, HTTP_SECRET, ttl=60) as p:
        await p.create(domain(ref="dm-local"))
        await p.update(domain(ref="dm-local", accessControlList={"deny": ["0.0.0.0/0"]}))
        await p.delete("Domain", "dm-local")
    calls = [(m, path.split("?")[0]) for m, path, _ in stub_service.requests]
    assert ("POST", "/v1/domains") in calls
    assert ("PUT", "/v1/domains/dm-local") in calls
    assert ("DELETE", "/v1/domains/dm-local") in calls
    assert ("GET", "/v1/agents") in calls
    assert all(auth and auth.startswith("Basic ") for _, _, auth in stub_service.requests)


async def test_service_errors_are_typed(stub_service: StubService) -> None:
    async with HttpProvider(stub_service.base_url, HTTP_USER, HTTP_SECRET, ttl=60) as p:
        stub_service.store["domains"] = {}
        await p.create(domain(ref="dm-local"))
        # the service says 409 even though our cache (and its checks) missed the first one
        stub_service.store["domains"]["dm-two"] = stub_service.store["domains"]["dm-local"]
        with pytest.raises(AlreadyExists):
            await p.create(domain("sip.two", ref="dm-local"))
    bad = HttpProvider(stub_service.base_url, HTTP_USER, "wrong")
    with pytest.raises(ProviderUnavailable, match="refused our credentials"):
        await bad.start()
    await bad.close()


async def test_outage_keeps_last_good_data_and_logs_once(
    stub_service: StubService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="routr.data")
    async with HttpProvider(stub_service.base_url, HTTP_USER, HTTP_SECRET, ttl=0.05) as p:
        await p.create(domain())
        good = await p.snapshot()
        stub_service.down = True
        outage_logs = lambda: [r for r in caplog.records if "stays in force" in r.getMessage()]  # noqa: E731
        await wait_until(lambda: len(outage_logs()) == 1, what="the outage to be logged")
        for _ in range(5):
            assert await p.snapshot() == good
        requests_seen = len(stub_service.requests)
        await wait_until(
            lambda: len(stub_service.requests) > requests_seen + 6, what="a few more polls"
        )
        assert len(outage_logs()) == 1
        with pytest.raises(ProviderUnavailable):
            await p.create(domain("sip.two"))
        stub_service.down = False
        await wait_until(
            lambda: any("reachable again" in r.getMessage() for r in caplog.records),
            what="the recovery",
        )


async def test_unreachable_at_start(stub_service: StubService) -> None:
    stub_service.down = True
    p = HttpProvider("http://127.0.0.1:1/v1", HTTP_USER, HTTP_SECRET)
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        await p.start()
    await p.close()
