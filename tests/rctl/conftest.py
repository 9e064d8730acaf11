"""rctl against a real routr-server: one server for the session, a config file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rctl_kit import Rctl, domain_doc, unique_domain
from support.api import ADMIN_SECRET, Api, start_server, token
from support.server import RoutrProcess

SPEC = {"registrar": {"minExpires": 1, "defaultExpires": 60}}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutrProcess]:
    proc = start_server(tmp_path_factory.mktemp("rctl-server"), SPEC)
    yield proc
    proc.stop()
    proc.assert_no_tracebacks()


@pytest.fixture(scope="session")
def api(server: RoutrProcess) -> Iterator[Api]:
    client = Api(server.api, token(server.api))
    yield client
    client.close()


@pytest.fixture
def rctl_out(tmp_path: Path, server: RoutrProcess) -> Rctl:
    """rctl, not logged in yet."""
    return Rctl(tmp_path / "rctl" / "config.yaml", server.api)


@pytest.fixture
def rctl(rctl_out: Rctl) -> Rctl:
    """rctl logged in to the session's server as admin."""
    rctl_out.ok("login", rctl_out.server, "-u", "admin", "-p", ADMIN_SECRET)
    return rctl_out


@pytest.fixture
def domain_uri(api: Api) -> str:
    """A Domain of the test's own, so tests sharing the server do not meet."""
    uri = unique_domain()
    api.create("/domains", domain_doc(uri))
    return uri
