"""A second routr reading its resources from the first one's API (http_data_provider)."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.registrar_kit import Registration
from support.api import BASE, Api, start_server, token
from support.data import agent, domain
from support.server import RoutrProcess
from support.sip import UdpClient

REPLICA_SECRET = "replica-secret-1"


def _replica_user() -> dict[str, object]:
    return {
        "apiVersion": "v1beta1",
        "kind": "User",
        "metadata": {"name": "Replica"},
        "spec": {"credentials": {"username": "replica", "secret": REPLICA_SECRET}},
    }


def _second(tmp_path: Path, first: RoutrProcess) -> RoutrProcess:
    parameters = f"baseUrl={first.api}{BASE},username=replica,secret={REPLICA_SECRET}"
    spec = {
        "restService": {"port": 0},
        "dataSource": {"provider": "http_data_provider", "parameters": parameters},
    }
    folder = tmp_path / "second"
    folder.mkdir()
    return RoutrProcess(folder, ("udp",), spec).start()


@pytest.fixture
def first(tmp_path: Path):
    proc = start_server(tmp_path, {"restService": {"port": 0, "secretReaders": ["replica"]}})
    yield proc
    proc.stop()
    proc.assert_no_tracebacks()


def test_a_second_routr_serves_the_first_ones_agents(tmp_path: Path, first: RoutrProcess):
    api = Api(first.api, token(first.api))
    api.create("/users", _replica_user())
    api.create("/domains", domain("sip.local"))
    api.create("/agents", agent("4001", "pw4001", ["sip.local"]))
    second = _second(tmp_path, first)
    try:
        client = UdpClient(("127.0.0.1", second.ports["udp"]))
        reg = Registration(client, "4001", "pw4001")
        contact = f"<sip:4001@{client.local[0]}:{client.local[1]}>"
        assert reg.send([contact], expires=60).status == 200  # the secret came across
        client.sock.close()
        # the first one's Users log in at the second; its view of the data is the first's
        replica_view = Api(second.api, token(second.api))
        agents = replica_view.data("/agents")
        assert [a["spec"]["credentials"]["username"] for a in agents] == ["4001"]
        assert "secret" not in agents[0]["spec"]["credentials"]
        # a write at the second lands at the first
        replica_view.create("/agents", agent("4002", "pw", ["sip.local"]))
        assert len(api.data("/agents")) == 2
        replica_view.close()
    finally:
        second.stop()
        api.close()
    second.assert_no_tracebacks()


def test_secrets_are_refused_to_users_not_named_readers(first: RoutrProcess) -> None:
    api = Api(first.api, token(first.api))
    refused = api.get("/agents", params={"secrets": "true"})
    assert refused.status_code == 403
    assert "secretReaders" in refused.json()["reason"]
    api.create("/users", _replica_user())
    reader = Api(first.api, token(first.api, "replica", REPLICA_SECRET))
    api.create("/domains", domain("sip.local"))
    api.create("/agents", agent("4003", "pw4003", ["sip.local"]))
    shown = reader.data("/agents", params={"secrets": "true"})
    assert shown[0]["spec"]["credentials"]["secret"] == "pw4003"
    api.close()
    reader.close()
