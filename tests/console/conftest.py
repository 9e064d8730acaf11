"""The web console in Debian's chromium (headless, driven by Playwright) against a real
routr-server: one server and one browser for the module, a fresh signed-in tab per test.

Every tab records each request it makes; a request that leaves the server's origin fails
the test (the console must work on a machine without internet, and leak nothing)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_kit import CHROMIUM, FLAGS, SPEC, Tab, open_tab, sign_in_with
from support.api import Api, start_server, token
from support.binaries import missing
from support.server import RoutrProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutrProcess]:
    proc = start_server(tmp_path_factory.mktemp("console"), SPEC)
    yield proc
    proc.stop()
    proc.assert_no_tracebacks()


@pytest.fixture(scope="module")
def api(server: RoutrProcess) -> Iterator[Api]:
    client = Api(server.api, token(server.api))
    yield client
    client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (the test extras have it)")
        raise
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def tab(browser: Any, server: RoutrProcess, tmp_path: Path) -> Iterator[Tab]:
    with open_tab(browser, server, tmp_path) as current:
        yield current


@pytest.fixture(scope="module")
def admin_token(server: RoutrProcess) -> str:
    return token(server.api)


@pytest.fixture
def console(tab: Tab, admin_token: str) -> Tab:
    """Signed in as admin. Signing in is tested once; here the tab starts with the token
    that signing in would have stored (the secret's hash check takes a second each time)."""
    from playwright.sync_api import expect

    sign_in_with(tab, admin_token)
    tab.open()
    expect(tab.page.get_by_role("button", name="Sign out")).to_be_visible()
    return tab
