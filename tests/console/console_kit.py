"""Helpers of the console tests: a browser tab on the console that records every URL it
asks for, and the settings the tests share."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from support.api import ADMIN_SECRET
from support.server import RoutrProcess

CHROMIUM = "/usr/bin/chromium"
# TESTING-NOTES.md: what works on this machine; Playwright adds --headless itself
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
SPEC = {
    "registrar": {"minExpires": 1, "defaultExpires": 60},
    "security": {"authenticateRequests": False},
}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"


class Tab:
    """One browser tab on the console, and the URLs it asked for."""

    def __init__(self, page: Any, server: RoutrProcess, out: Path) -> None:
        self.page = page
        self.server = server
        self.base = server.api
        self.out = out
        self.requests: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))

    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.base}/console/#/{route}")

    def sign_in(self, username: str = "admin", secret: str = ADMIN_SECRET) -> None:
        from playwright.sync_api import expect

        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Secret").fill(secret)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()

    def go(self, route: str) -> None:
        """Follow the side navigation's link, as a user would."""
        from playwright.sync_api import expect

        nav = self.page.get_by_role("navigation", name="Console")
        nav.get_by_role("link", name=route, exact=True).click()
        expect(self.page.get_by_role("heading", level=1, name=route)).to_be_visible()

    def shot(self, name: str, docs: bool = False) -> Path:
        """A screenshot in the test's folder; ``docs`` also puts it in docs/console/ for the
        README, when missing or with ``UPDATE_SCREENSHOTS=1``."""
        path = self.out / f"{name}.png"
        self.page.screenshot(path=str(path), scale="css")
        # rewritten only when asked: every run would otherwise leave changed images behind
        target = DOCS / f"{name}.png"
        if docs and (not target.exists() or os.environ.get("UPDATE_SCREENSHOTS") == "1"):
            DOCS.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
        return path

    def foreign(self) -> list[str]:
        origin = urlsplit(self.base)
        return [u for u in self.requests if urlsplit(u)[:2] != origin[:2]]


@contextmanager
def open_tab(browser: Any, server: RoutrProcess, out: Path) -> Iterator[Tab]:
    """A new browser context (own sessionStorage) on ``server``'s console, not signed in;
    closed with the checks every tab must pass."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    current = Tab(page, server, out)
    try:
        yield current
    finally:
        context.close()
    assert current.requests, "the tab made no request at all"
    assert current.foreign() == [], "requests left the server's origin"
    assert errors == [], errors


def sign_in_with(tab: Tab, value: str) -> None:
    """Start the tab signed in, with the token that signing in would have stored."""
    tab.page.add_init_script(
        f"sessionStorage.setItem('routr.token', {value!r});"
        "sessionStorage.setItem('routr.user', 'admin');"
    )
