"""The web console (issue 15) in a real browser against a real server: sign in, write
resources through the form and the YAML editor, read the server's refusals in words, and
watch registrations and calls made by real SIP clients arrive without a reload.

Waits are on what the page shows (Playwright's expectations), never on time."""

from __future__ import annotations

import re
from contextlib import closing
from pathlib import Path
from typing import Any

from console_kit import SPEC, Tab, open_tab, sign_in_with
from playwright.sync_api import Locator, Page, expect
from support.api import ADMIN_SECRET, Api, start_server, token
from support.binaries import free_port
from support.data import agent, domain
from support.server import RoutrProcess
from support.sip import UdpClient, register
from support.ua import UA, Call, is_request

SECRET = "s3cret-pw"


def dialog(page: Page) -> Locator:
    return page.get_by_role("dialog")


def ensure_domain(api: Api, uri: str) -> None:
    if not api.data("/domains", params={"filter": f"@.spec.context.domainUri == '{uri}'"}):
        api.create("/domains", domain(uri))


def ensure_agent(api: Api, username: str, uri: str) -> str:
    ensure_domain(api, uri)
    found = api.data("/agents", params={"filter": f"@.spec.credentials.username == '{username}'"})
    if found:
        ref: str = found[0]["metadata"]["ref"]
        return ref
    created: str = api.create("/agents", agent(username, SECRET, [uri]))
    return created


def udp(server: RoutrProcess) -> UdpClient:
    return UdpClient(("127.0.0.1", server.ports["udp"]))


# -- signing in and out -----------------------------------------------------------------


def test_sign_in_keeps_only_the_token(tab: Tab) -> None:
    page = tab.page
    tab.open("agents")
    expect(page.get_by_role("heading", name="Sign in to routr")).to_be_visible()
    tab.shot("login")
    page.get_by_label("Username", exact=True).fill("admin")
    page.get_by_label("Secret", exact=True).fill("not-the-secret")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or secret.")
    # by keyboard alone: the secret is selected after a refusal, Enter submits
    expect(page.get_by_label("Secret")).to_be_focused()
    page.keyboard.type(ADMIN_SECRET)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    # back where the user was going, and nothing but the token kept
    expect(page.get_by_role("heading", level=1, name="Agents")).to_be_visible()
    stored = page.evaluate("JSON.stringify({...sessionStorage, ...localStorage})")
    assert "admin-secret" not in stored and stored.count(".") >= 2, stored
    # the side navigation is reachable and usable from the keyboard
    page.get_by_role("link", name="Location").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name=re.compile("^Location"))).to_be_focused()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to routr")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_refused_token_returns_to_sign_in(console: Tab) -> None:
    page = console.page
    page.evaluate("sessionStorage.setItem('routr.token', 'expired.or.forged')")
    page.get_by_role("link", name="Domains", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in to routr")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Signed out")
    console.sign_in()
    expect(page.get_by_role("heading", level=1, name="Domains")).to_be_visible()


# -- resources --------------------------------------------------------------------------


def test_create_a_domain_and_an_agent_by_form_with_field_errors(console: Tab) -> None:
    page = console.page
    console.go("Domains")
    page.get_by_role("button", name="New domain").click()
    form = dialog(page)
    form.get_by_label("Name", exact=True).fill("Form Domain")
    form.get_by_label("Domain URI", exact=True).fill("form.local")
    form.get_by_label("ACL allow").fill("192.168.0.0/16, 10.0.0.0/8")
    form.get_by_role("button", name="Create").click()
    expect(form).to_be_hidden()
    expect(page.get_by_role("row", name=re.compile("form.local"))).to_be_visible()

    console.go("Agents")
    page.get_by_role("button", name="New agent").click()
    form = dialog(page)
    form.get_by_label("Name", exact=True).fill("Form Agent")
    form.get_by_label("Username", exact=True).fill("1")  # too short: the server says so
    form.get_by_label("Domains", exact=True).fill("form.local")
    form.get_by_role("button", name="Create").click()
    username = form.get_by_label("Username", exact=True)
    expect(username).to_have_attribute("aria-invalid", "true")
    expect(username).to_have_accessible_description(re.compile("at least 3 characters"))
    expect(form.get_by_label("Secret", exact=True)).to_have_accessible_description(
        re.compile("required")
    )
    console.shot("agent-form-errors", docs=True)

    username.fill("1001")
    form.get_by_label("Secret", exact=True).fill(SECRET)
    form.get_by_role("button", name="Create").click()
    expect(form).to_be_hidden()
    row = page.get_by_role("row", name=re.compile("Form Agent"))
    expect(row).to_contain_text("form.local")


def test_an_unknown_domain_is_explained_and_yaml_creates(console: Tab, api: Api) -> None:
    page = console.page
    console.go("Users")
    page.get_by_role("button", name="New user").click()
    form = dialog(page)
    form.get_by_role("button", name="YAML").click()
    manifest = form.get_by_label("Manifest (YAML)")
    expect(manifest).to_have_value(re.compile("kind: User"))
    manifest.fill(
        "apiVersion: v1beta1\nkind: User\nmetadata: {name: Operator}\n"
        "spec: {credentials: {username: operator, secret: op-secret}}\n"
    )
    console.shot("user-yaml")
    form.get_by_role("button", name="Create").click()
    expect(form).to_be_hidden()
    expect(page.get_by_role("row", name=re.compile("operator"))).to_be_visible()

    console.go("Agents")
    page.get_by_role("button", name="New agent").click()
    form = dialog(page)
    form.get_by_label("Name", exact=True).fill("Lost Agent")
    form.get_by_label("Username", exact=True).fill("1999")
    form.get_by_label("Secret", exact=True).fill(SECRET)
    form.get_by_label("Domains", exact=True).fill("nowhere.local")
    form.get_by_role("button", name="Create").click()
    expect(form.get_by_role("alert").first).to_contain_text("Something it refers to does not exist")
    expect(form.get_by_role("alert").first).to_contain_text("nowhere.local not found")
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_be_hidden()


def test_search_and_edit_keep_the_secret(console: Tab, api: Api) -> None:
    ensure_agent(api, "4001", "search.local")
    ensure_agent(api, "4002", "search.local")
    page = console.page
    console.go("Agents")
    page.get_by_label("Search agents").fill("4002")
    expect(page.get_by_role("row", name=re.compile("Agent 4002"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Agent 4001"))).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="of 1")).to_be_visible()
    page.get_by_role("button", name="Edit Agent 4002").click()
    form = dialog(page)
    form.get_by_label("Name", exact=True).fill("Agent 4002 edited")
    form.get_by_label("Privacy", exact=True).select_option("Private")
    form.get_by_role("button", name="Save").click()
    expect(form).to_be_hidden()
    expect(page.get_by_role("row", name=re.compile("Agent 4002 edited"))).to_contain_text("Private")
    with closing(udp(console.server)) as client:
        contact = f"<sip:4002@{client.local[0]}:{client.local[1]}>"
        assert register(client, "4002", "search.local", SECRET, contact).status == 200
        assert register(client, "4002", "search.local", SECRET, contact, expires=0).status == 200


def test_delete_with_confirmation_and_a_409_in_words(console: Tab, api: Api) -> None:
    ensure_agent(api, "3001", "used.local")
    page = console.page
    console.go("Domains")
    page.get_by_role("button", name="Delete Domain used.local").click()
    confirm = dialog(page)
    confirm.get_by_role("button", name="Delete domain").click()
    expect(confirm.get_by_role("alert")).to_contain_text("It is still in use")
    expect(confirm.get_by_role("alert")).to_contain_text("Agent 3001")
    console.shot("domain-in-use")
    confirm.get_by_role("button", name="Cancel").click()

    console.go("Agents")
    page.get_by_role("button", name="Delete Agent 3001").click()
    dialog(page).get_by_role("button", name="Delete agent").click()
    expect(page.get_by_role("row", name=re.compile("Agent 3001"))).to_have_count(0)

    console.go("Domains")
    page.get_by_role("button", name="Delete Domain used.local").click()
    dialog(page).get_by_role("button", name="Delete domain").click()
    expect(page.get_by_role("row", name=re.compile("used.local"))).to_have_count(0)


# -- live -------------------------------------------------------------------------------


def test_a_registration_appears_and_leaves_without_a_reload(console: Tab, api: Api) -> None:
    ensure_agent(api, "2001", "sip.local")
    page = console.page
    console.go("Location")
    expect(page.get_by_text("live", exact=True)).to_be_visible()
    binding = page.get_by_role("row", name=re.compile("sip:2001@sip.local"))
    expect(binding).to_have_count(0)
    with closing(udp(console.server)) as client:
        contact = f"<sip:2001@{client.local[0]}:{client.local[1]}>"
        assert register(client, "2001", "sip.local", SECRET, contact).status == 200
        expect(binding).to_be_visible()
        expect(binding).to_contain_text("udp")
        console.shot("location", docs=True)
        assert register(client, "2001", "sip.local", SECRET, contact, expires=0).status == 200
        expect(binding).to_have_count(0)


def test_a_call_appears_in_calls_then_in_recent(console: Tab, api: Api) -> None:
    ensure_agent(api, "2101", "sip.local")
    ensure_agent(api, "2102", "sip.local")
    page = console.page
    console.go("Calls")
    expect(page.get_by_text("No calls in progress.")).to_be_visible()
    in_progress = page.get_by_role("table", name="Calls in progress")
    recent = page.get_by_role("table", name="Recent calls")
    sip = ("127.0.0.1", console.server.ports["udp"])
    with UA() as caller, UA() as callee, closing(udp(console.server)) as client:
        assert register(client, "2102", "sip.local", SECRET, callee.contact("2102")).status == 200
        call = Call(caller, sip, "sip:2102@sip.local", "sip:2101@sip.local")
        call.invite()
        rx = callee.wait(is_request("INVITE"))
        callee.reply(rx, 180, to_tag="ringing")
        ringing = in_progress.get_by_role("row", name=re.compile("sip:2102@sip.local"))
        expect(ringing).to_contain_text("ringing")
        expect(ringing).to_contain_text("INTRA_DOMAIN")
        console.shot("calls", docs=True)
        callee.reply(rx, 486, to_tag="ringing")
        assert call.final().status == 486
        call.ack_non_2xx()
        expect(ringing).to_have_count(0)
        expect(recent.get_by_role("row", name=re.compile("sip:2102@sip.local"))).to_contain_text(
            "busy"
        )
        # its trace: the ladder and every message, from the call's row
        recent.get_by_role("button", name="Trace of the call from sip:2101@sip.local").first.click()
        trace = page.get_by_role("dialog")
        expect(trace.get_by_role("img", name=re.compile("messages between"))).to_be_visible()
        expect(trace).to_contain_text("INVITE sip:2102@sip.local")
        expect(trace).to_contain_text("486")
        console.shot("trace")
        trace.get_by_role("button", name="Close").click()
        expect(trace).to_have_count(0)
        assert register(client, "2102", "sip.local", SECRET, callee.contact("2102"), expires=0)


def test_logs_follow_filter_and_pause(console: Tab, api: Api) -> None:
    page = console.page
    console.go("Logs")
    log = page.get_by_role("list", name="Log records")
    expect(log.get_by_role("listitem").first).to_be_visible()
    page.get_by_role("button", name="Pause").click()
    api.create("/domains", domain("paused.local"))
    expect(page.get_by_text("1 new while paused")).to_be_visible()
    expect(log).not_to_contain_text("paused.local")
    page.get_by_role("button", name="Resume").click()
    expect(log).to_contain_text("resource.created Domain")
    expect(log).to_contain_text("paused.local")
    page.get_by_label("Level at least").select_option("error")
    expect(log).not_to_contain_text("paused.local")


def test_every_page_and_the_dashboard(console: Tab, api: Api) -> None:
    ensure_agent(api, "2201", "sip.local")
    page = console.page
    with closing(udp(console.server)) as client:
        contact = f"<sip:2201@{client.local[0]}:{client.local[1]}>"
        assert register(client, "2201", "sip.local", SECRET, contact).status == 200
        console.go("Dashboard")
        registrations = page.locator(".tile").filter(has_text="Registrations")
        expect(registrations).to_contain_text(re.compile(r"[1-9]"))
        expect(page.get_by_role("img", name=re.compile("Last 10 minutes"))).to_be_visible()
        console.shot("dashboard", docs=True)
        assert register(client, "2201", "sip.local", SECRET, contact, expires=0).status == 200
    for name in ("Domains", "Agents", "Peers", "Gateways", "Numbers", "Users", "Registry",
                 "Bans", "Logs", "Location", "Calls"):  # fmt: skip
        console.go(name)
        console.shot(name.lower())
    console.go("System")
    expect(page.get_by_role("definition").filter(has_text="files_data_provider")).to_be_visible()
    expect(page.get_by_label("Running configuration")).to_contain_text("restService")
    page.get_by_role("button", name="Reload resources and config").click()
    expect(page.get_by_text(re.compile("^Reloaded: "))).to_be_visible()
    console.shot("system")
    page.emulate_media(color_scheme="dark")
    console.go("Dashboard")
    console.shot("dashboard-dark")


def test_a_server_restart_is_shown_and_the_streams_come_back(browser: Any, tmp_path: Path) -> None:
    """The server goes away under an open Location page and comes back on the same
    address: the page says so, reconnects by itself and is live again, no reload."""
    spec = {**SPEC, "restService": {"port": free_port()}}
    data = tmp_path / "data"
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
    first = start_server(tmp_path / "first", spec, data=data)
    admin = token(first.api)
    Api(first.api, admin).create("/domains", domain("back.local"))
    Api(first.api, admin).create("/agents", agent("5001", SECRET, ["back.local"]))
    second = None
    try:
        with open_tab(browser, first, tmp_path) as tab:
            sign_in_with(tab, admin)
            tab.open("location")
            page = tab.page
            badge = page.get_by_role("heading", level=1, name=re.compile("^Location"))
            expect(badge).to_contain_text("live")
            first.stop()
            banner = page.get_by_role("status").filter(has_text="Connection to the server lost")
            expect(banner).to_be_visible()
            expect(badge).to_contain_text("reconnecting")
            tab.shot("connection-lost")
            second = start_server(tmp_path / "second", spec, data=data)
            expect(banner).to_be_hidden(timeout=20_000)
            expect(badge).to_contain_text("live")
            with closing(udp(second)) as client:
                contact = f"<sip:5001@{client.local[0]}:{client.local[1]}>"
                assert register(client, "5001", "back.local", SECRET, contact).status == 200
                expect(
                    page.get_by_role("row", name=re.compile("sip:5001@back.local"))
                ).to_be_visible()
                assert register(client, "5001", "back.local", SECRET, contact, expires=0)
    finally:
        first.stop()
        if second is not None:
            second.stop()
            second.assert_no_tracebacks()
