"""The REST API of a real routr-server process, over real HTTP (httpx)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e.registrar_kit import Registration
from support.api import ADMIN_SECRET, BASE, Api, start_server, token, wait_until
from support.data import agent, domain
from support.server import RoutrProcess
from support.sip import UdpClient

SPEC = {"registrar": {"minExpires": 1, "defaultExpires": 60}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutrProcess]:
    proc = start_server(tmp_path_factory.mktemp("api"), SPEC)
    yield proc
    proc.stop()
    proc.assert_no_tracebacks()


@pytest.fixture(scope="module")
def api(server: RoutrProcess) -> Iterator[Api]:
    client = Api(server.api, token(server.api))
    yield client
    client.close()


@pytest.fixture
def local_domain(api: Api) -> Iterator[str]:
    """Domain sip.local (created once; the tests share it)."""
    found = api.data("/domains", params={"filter": "@.spec.context.domainUri == 'sip.local'"})
    if not found:
        api.create("/domains", domain("sip.local"))
    yield "sip.local"


def _udp(server: RoutrProcess) -> UdpClient:
    return UdpClient(("127.0.0.1", server.ports["udp"]))


def _register(server: RoutrProcess, user: str, secret: str, expires: int = 60) -> int:
    client = _udp(server)
    try:
        reg = Registration(client, user, secret)
        contact = f"<sip:{user}@{client.local[0]}:{client.local[1]}>"
        return reg.send([contact], expires=expires).status
    finally:
        client.sock.close()


# -- auth ---------------------------------------------------------------------------------


def test_status_needs_no_token_and_everything_else_does(server: RoutrProcess) -> None:
    r = httpx.get(f"{server.api}{BASE}/system/status")
    assert r.status_code == 200
    assert r.json()["data"]["status"] == "up"
    schema = httpx.get(f"{server.api}{BASE}/openapi.json").json()
    open_paths = {f"{BASE}/system/status", f"{BASE}/token", f"{BASE}/credentials"}
    checked = 0
    for path, operations in schema["paths"].items():
        if path in open_paths:
            continue
        concrete = path.replace("{ref}", "x").replace("{aor}", "sip:a@b").replace("{ip}", "1.2.3.4")
        for method in operations:
            r = httpx.request(method.upper(), server.api + concrete)
            assert r.status_code == 401, (method, path, r.text)
            body = r.json()
            assert body["status"] == 401 and body["message"] == "Unauthorized"
            assert r.headers["www-authenticate"].startswith("Bearer")
            checked += 1
    assert checked >= 30  # six kinds x five operations, and the live and system paths


def test_a_bad_token_is_401_and_v1s_query_token_works(server: RoutrProcess) -> None:
    bad = httpx.get(f"{server.api}{BASE}/agents", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401 and "not valid" in bad.json()["reason"]
    good = httpx.get(f"{server.api}{BASE}/agents", params={"token": token(server.api)})
    assert good.status_code == 200


def test_login_with_wrong_credentials_is_401(server: RoutrProcess) -> None:
    r = httpx.get(f"{server.api}{BASE}/token", auth=("admin", "wrong"))
    assert r.status_code == 401
    assert httpx.get(f"{server.api}{BASE}/token").status_code == 401
    garbled = {"Authorization": "Basic !!!"}
    assert httpx.get(f"{server.api}{BASE}/token", headers=garbled).status_code == 401


def test_credentials_answers_the_token_alone(server: RoutrProcess) -> None:
    r = httpx.get(f"{server.api}{BASE}/credentials", auth=("admin", ADMIN_SECRET))
    assert r.status_code == 200
    raw = r.text
    assert raw.count(".") == 2  # a JWT
    assert httpx.get(f"{server.api}{BASE}/agents", params={"token": raw}).status_code == 200


def test_tokens_and_secrets_never_reach_the_log(server: RoutrProcess, api: Api) -> None:
    value = token(server.api)
    httpx.get(f"{server.api}{BASE}/agents", params={"token": value})
    log = "\n".join(server.raw)
    assert value not in log
    assert ADMIN_SECRET not in log


def test_login_attempts_are_limited_per_address(tmp_path: Path) -> None:
    proc = start_server(tmp_path, {"restService": {"port": 0, "loginLimit": {"failures": 3}}})
    try:
        url = f"{proc.api}{BASE}/token"
        for _ in range(3):
            assert httpx.get(url, auth=("admin", "guess")).status_code == 401
        refused = httpx.get(url, auth=("admin", ADMIN_SECRET))  # even the right one, for now
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["message"] == "Too Many Requests"
    finally:
        proc.stop()
    proc.assert_no_tracebacks()


def test_a_token_expires(tmp_path: Path) -> None:
    proc = start_server(tmp_path, {"restService": {"port": 0, "tokenLifetime": 1}})
    try:
        value = token(proc.api)
        url = f"{proc.api}{BASE}/agents"
        assert httpx.get(url, params={"token": value}).status_code == 200
        expired = wait_until(
            lambda: (r := httpx.get(url, params={"token": value})).status_code == 401 and r,
            timeout=5,
        )
        assert "expired" in expired.json()["reason"]
    finally:
        proc.stop()


# -- resources ---------------------------------------------------------------------------


def test_create_list_get_update_delete(api: Api, local_domain: str) -> None:
    ref = api.create("/agents", agent("2001", "s3cret", [local_domain]))
    assert isinstance(ref, str) and ref.startswith("ag")
    one = api.data(f"/agents/{ref}")
    assert one["spec"]["credentials"] == {"username": "2001"}  # secrets are write-only
    assert one["metadata"]["createdOn"]
    listed = api.get("/agents", params={"filter": "@.spec.credentials.username == '2001'"})
    body = listed.json()
    assert body["message"] == "Successful request"
    assert [a["metadata"]["ref"] for a in body["data"]] == [ref]
    assert body["meta"] == {"page": 1, "itemsPerPage": 30, "total": 1}
    one["metadata"]["name"] = "Renamed"
    updated = api.put(f"/agents/{ref}", json=one)
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"]["metadata"]["name"] == "Renamed"
    deleted = api.delete(f"/agents/{ref}")
    assert deleted.status_code == 200
    assert api.get(f"/agents/{ref}").status_code == 404


def test_an_agent_posted_registers_at_once(server: RoutrProcess, api: Api, local_domain: str):
    api.create("/agents", agent("2002", "pw2002", [local_domain]))
    assert _register(server, "2002", "pw2002") == 200


def test_a_put_without_secret_keeps_it(server: RoutrProcess, api: Api, local_domain: str):
    ref = api.create("/agents", agent("2003", "pw2003", [local_domain]))
    shown = api.data(f"/agents/{ref}")  # as `rctl get -o yaml` would show it: no secret
    shown["metadata"]["name"] = "Kept secret"
    assert api.put(f"/agents/{ref}", json=shown).status_code == 200
    assert _register(server, "2003", "pw2003") == 200


def test_a_put_naming_another_ref_is_422(api: Api, local_domain: str) -> None:
    ref = api.create("/agents", agent("2004", "pw", [local_domain]))
    body = api.data(f"/agents/{ref}")
    body["metadata"]["ref"] = "ag-other"
    r = api.put(f"/agents/{ref}", json=body)
    assert r.status_code == 422
    assert r.json()["data"][0]["path"] == "metadata.ref"


def test_validation_errors_name_each_field(api: Api, local_domain: str) -> None:
    bad = agent("1", "x", [local_domain])  # username too short
    del bad["metadata"]["name"]
    r = api.post("/agents", json=bad)
    assert r.status_code == 422
    body = r.json()
    assert body["message"] == "Unprocessable Entity"
    paths = {p["path"] for p in body["data"]}
    assert {"spec.credentials.username", "metadata.name"} <= paths
    listed = api.post("/agents", json=[agent("2005", "pw", [local_domain]), bad])
    assert listed.status_code == 422
    assert any(p["path"].startswith("[1].") for p in listed.json()["data"])
    assert not api.data("/agents", params={"filter": "@.spec.credentials.username == '2005'"})


def test_conflicts_both_ways(api: Api, local_domain: str) -> None:
    api.create("/agents", agent("2006", "pw", [local_domain]))
    duplicate = api.post("/agents", json=agent("2006", "pw", [local_domain]))
    assert duplicate.status_code == 409
    assert duplicate.json()["message"] == "Entity already exist"
    unknown = api.post("/agents", json=agent("2007", "pw", ["nowhere.example"]))
    assert unknown.status_code == 409
    assert unknown.json()["message"] == "Unfulfilled dependencies"
    assert "nowhere.example" in unknown.json()["reason"]
    ref = api.data("/domains", params={"filter": "@.spec.context.domainUri == 'sip.local'"})[0][
        "metadata"
    ]["ref"]
    used = api.delete(f"/domains/{ref}")
    assert used.status_code == 409
    assert used.json()["message"] == "Found dependent objects"
    assert "Agent" in used.json()["reason"]


@pytest.mark.parametrize(
    ("body", "media", "words"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"- [unclosed", "application/yaml", "not valid YAML"),
        (b"", "application/json", "empty"),
        (b"\xff\xfe", "application/json", "UTF-8"),
        (b"<agent/>", "application/xml", "application/yaml"),
        (b"[]", "application/json", "empty"),
    ],
)
def test_unreadable_bodies_are_400_or_415(api: Api, body: bytes, media: str, words: str) -> None:
    r = api.post("/agents", content=body, headers={"Content-Type": media})
    assert r.status_code in (400, 415), r.text
    assert words in r.json()["reason"]


def test_a_bad_filter_or_page_is_400(api: Api) -> None:
    for params in ({"filter": "@.spec =="}, {"page": "0"}, {"itemsPerPage": "abc"},
                   {"itemsPerPage": "100000"}):  # fmt: skip
        r = api.get("/agents", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["message"] == "Bad Request"


def test_pages(api: Api, local_domain: str) -> None:
    refs = api.create("/agents", [agent(f"30{i:02}", "pw", [local_domain]) for i in range(7)])
    assert len(refs) == 7
    query = "@.spec.credentials.username =~ /30\\d\\d/"
    seen: list[str] = []
    for page in (1, 2, 3):
        body = api.get("/agents", params={"filter": query, "page": page, "itemsPerPage": 3}).json()
        assert body["meta"] == {"page": page, "itemsPerPage": 3, "total": 7}
        seen += [a["metadata"]["ref"] for a in body["data"]]
    assert sorted(seen) == sorted(refs)
    beyond = api.get("/agents", params={"filter": query, "page": 4, "itemsPerPage": 3}).json()
    assert beyond["data"] == [] and beyond["meta"]["total"] == 7


def test_a_yaml_list_and_a_multipart_file(api: Api, local_domain: str) -> None:
    manifest = yaml.safe_dump(
        [agent("2010", "pw", [local_domain]), agent("2011", "pw", [local_domain])]
    )
    r = api.post("/agents", content=manifest, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert len(r.json()["data"]) == 2
    text = "- {apiVersion: v1beta1, kind: Agent, metadata: {name: Unquoted},\n"
    text += "   spec: {credentials: {username: 2012, secret: 1234}, domains: [sip.local]}}\n"
    r = api.post("/agents", files={"file": ("agents.yml", text, "application/yaml")})
    assert r.status_code == 201, r.text
    shown = api.data(f"/agents/{r.json()['data'][0]}")
    assert shown["spec"]["credentials"]["username"] == "2012"  # a string, not a number
    wrong_kind = api.post("/domains", files={"file": ("agents.yml", text, "application/yaml")})
    assert wrong_kind.status_code == 422
    assert "must be Domain here" in wrong_kind.json()["reason"]


def _user(username: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1beta1",
        "kind": "User",
        "metadata": {"name": f"User {username}"},
        "spec": {"credentials": {"username": username, "secret": secret}},
    }


def test_users_secrets_are_stored_hashed(server: RoutrProcess, api: Api) -> None:
    api.create("/users", _user("operator", "op-secret-1"))
    assert "op-secret-1" not in (server.workdir / "data" / "users.yml").read_text()
    assert token(server.api, "operator", "op-secret-1")


def test_a_deleted_users_token_stops_working(server: RoutrProcess, api: Api) -> None:
    ref = api.create("/users", _user("temp-user", "temp-secret"))
    value = token(server.api, "temp-user", "temp-secret")
    assert api.delete(f"/users/{ref}").status_code == 200
    r = httpx.get(f"{server.api}{BASE}/agents", params={"token": value})
    assert r.status_code == 401


def test_resource_watch_sees_added_and_deleted(api: Api, local_domain: str) -> None:
    with api.watch("/agents", filter="@.spec.credentials.username == '2020'") as next_event:
        ref = api.create("/agents", agent("2020", "pw", [local_domain]))
        added = next_event()
        assert added["type"] == "ADDED" and added["object"]["metadata"]["ref"] == ref
        assert "secret" not in added["object"]["spec"]["credentials"]
        api.delete(f"/agents/{ref}")
        assert next_event()["type"] == "DELETED"


# -- live tables ---------------------------------------------------------------------------


def test_location_shows_watches_and_evicts(server: RoutrProcess, api: Api, local_domain: str):
    api.create("/agents", agent("2030", "pw2030", [local_domain]))
    aor = f"sip:2030@{local_domain}"
    with api.watch("/location", filter=f"@.aor == '{aor}'") as next_event:
        assert _register(server, "2030", "pw2030") == 200
        added = next_event()
        assert added["type"] == "ADDED" and added["object"]["aor"] == aor
        assert added["object"]["transport"] == "udp"
        listed = api.data("/location", params={"filter": f"@.aor == '{aor}'"})
        assert len(listed) == 1 and 0 < listed[0]["expires"] <= 60
        paged = api.get("/location", params={"itemsPerPage": 1}).json()  # no filter: page only
        assert len(paged["data"]) == 1 and paged["meta"]["total"] >= 1
        assert paged["data"][0]["expires"] > 0
        assert api.delete(f"/location/{aor}").status_code == 200
        assert next_event()["type"] == "DELETED"
    assert api.delete(f"/location/{aor}").status_code == 404
    assert api.data("/location", params={"filter": f"@.aor == '{aor}'"}) == []


def test_unregister_is_seen_by_a_watcher(server: RoutrProcess, api: Api, local_domain: str):
    api.create("/agents", agent("2031", "pw2031", [local_domain]))
    with api.watch("/location", filter="@.aor == 'sip:2031@sip.local'") as next_event:
        client = _udp(server)
        try:
            reg = Registration(client, "2031", "pw2031")
            contact = f"<sip:2031@{client.local[0]}:{client.local[1]}>"
            assert reg.send([contact], expires=60).status == 200
            assert next_event()["type"] == "ADDED"
            assert reg.send([contact], expires=0).status == 200
            assert next_event()["type"] == "DELETED"
        finally:
            client.sock.close()


def test_registry_calls_and_bans_answer_lists(api: Api) -> None:
    for path in ("/registry", "/calls", "/bans"):
        body = api.get(path).json()
        assert body["status"] == 200 and isinstance(body["data"], list), path
    assert api.delete("/bans/192.0.2.1").status_code == 404


def test_a_ban_is_listed_and_lifted(tmp_path: Path) -> None:
    spec = {"restService": {"port": 0},
            "security": {"trusted": [], "floodBan": {"requests": 5, "seconds": 10}}}  # fmt: skip
    proc = start_server(tmp_path, spec)
    try:
        client = Api(proc.api, token(proc.api))
        udp = _udp(proc)
        from support.sip import options

        target = f"127.0.0.1:{proc.ports['udp']}"
        for _ in range(8):
            udp.send(options(target, local=udp.local))
        bans = wait_until(lambda: client.data("/bans"))
        assert bans[0]["ip"] == "127.0.0.1" and bans[0]["secondsLeft"] > 0
        assert client.delete("/bans/127.0.0.1").status_code == 200
        assert client.data("/bans") == []
        assert udp.request(options(target, local=udp.local)).status == 200
        udp.sock.close()
        client.close()
    finally:
        proc.stop()
    proc.assert_no_tracebacks()


# -- system --------------------------------------------------------------------------------


def test_info_config_and_logs(server: RoutrProcess, api: Api) -> None:
    info = api.data("/system/info")
    assert info["version"] and info["apiVersion"] == "v1beta1"
    assert {"protocol": "udp", "host": "127.0.0.1", "port": server.ports["udp"]} in info[
        "transports"
    ]
    assert "files_data_provider" in info["dataSource"]
    assert info["counts"]["User"] >= 1
    config = api.data("/system/config")
    assert config["spec"]["restService"]["port"] == 0
    logs = api.data("/system/logs", params={"level": "info"})
    assert any("listening on" in r["msg"] for r in logs)
    assert all(r["level"] != "debug" for r in logs)
    assert api.get("/system/logs", params={"level": "loud"}).status_code == 400


def test_config_secrets_are_masked(tmp_path: Path) -> None:
    secret = "a-deployment-secret-of-some-length"
    proc = start_server(tmp_path, {"restService": {"port": 0}, "security": {"secret": secret}})
    try:
        shown = Api(proc.api, token(proc.api)).get("/system/config").text
        assert secret not in shown
        assert json.loads(shown)["data"]["spec"]["security"]["secret"] == "********"
    finally:
        proc.stop()


def test_logs_follow_streams_new_records(api: Api, local_domain: str) -> None:
    with api.http.stream("GET", "/system/logs", params={"follow": "true", "limit": 1}) as s:
        lines = s.iter_lines()
        first = json.loads(next(lines))
        assert first["type"] == "ADDED"
        api.create("/agents", agent("2040", "pw", [local_domain]))
        for line in lines:
            if line.strip() and "resource.created Agent" in json.loads(line)["object"]["msg"]:
                break


def test_reload_reads_hand_edits_and_config(server: RoutrProcess, api: Api) -> None:
    data = server.workdir / "data"
    config = yaml.safe_load(server.config_path.read_text())
    config["spec"]["security"] = {"floodBan": {"requests": 500}}
    config["spec"]["recordRoute"] = True
    server.config_path.write_text(yaml.safe_dump(config))
    peers = [{"apiVersion": "v1beta1", "kind": "Peer", "metadata": {"name": "Hand Edit"},
              "spec": {"credentials": {"username": "handpeer", "secret": "x"}}}]  # fmt: skip
    (data / "peers.yml").write_text(yaml.safe_dump(peers))
    outcome = api.post("/system/reload").json()["data"]
    assert outcome["resources"]["Peer"] == 1
    assert "spec.security.floodBan.requests" in outcome["applied"]
    assert "spec.recordRoute" in outcome["needsRestart"]
    assert api.data("/system/config")["spec"]["security"]["floodBan"]["requests"] == 500
    assert api.data("/peers")[0]["metadata"]["name"] == "Hand Edit"


def _answered(server: RoutrProcess) -> Any:
    client = _udp(server)
    try:
        from support.sip import options

        return client.request(options(f"127.0.0.1:{server.ports['udp']}", local=client.local))
    finally:
        client.sock.close()


async def test_sip_keeps_answering_while_the_api_works(server: RoutrProcess) -> None:
    import asyncio

    value = token(server.api)
    async with httpx.AsyncClient(base_url=server.api + BASE, timeout=30,
                                 params={"token": value}) as http:  # fmt: skip
        work = asyncio.gather(*(http.get("/system/info") for _ in range(200)))
        answers = [await asyncio.to_thread(_answered, server) for _ in range(5)]
        results = await work
    assert all(r.status_code == 200 for r in results)
    assert all(a.status == 200 for a in answers)


def test_a_stop_ends_open_streams_and_exits_0(tmp_path: Path) -> None:
    import signal
    import threading

    proc = start_server(tmp_path, {"restService": {"port": 0}})
    client = Api(proc.api, token(proc.api))
    opened, ended = threading.Event(), threading.Event()

    def follow() -> None:
        with client.http.stream("GET", "/location", params={"watch": "true"}) as stream:
            opened.set()  # the answer's head has come: the stream is open
            for _ in stream.iter_lines():
                pass
        ended.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert opened.wait(5)
    assert proc.stop(signal.SIGTERM) == 0
    assert ended.wait(5), "the watch stream did not end with the server"
    client.close()
    proc.assert_no_tracebacks()


def test_a_yaml_put_keeps_number_looking_values_as_written(server: RoutrProcess, api: Api):
    text = ("{apiVersion: v1beta1, kind: User, metadata: {name: Numbers},\n"
            " spec: {credentials: {username: '0777', secret: 0123}}}")  # fmt: skip
    yaml_type = {"Content-Type": "application/yaml"}
    ref = api.post("/users", content=text, headers=yaml_type).json()["data"]
    assert api.put(f"/users/{ref}", content=text, headers=yaml_type).status_code == 200
    assert token(server.api, "0777", "0123")  # not 83, as YAML 1.1 would read it
    assert api.get("/bans", params={"page": 2, "itemsPerPage": 5}).json()["meta"] == {
        "page": 2, "itemsPerPage": 5, "total": 0}  # fmt: skip


def test_the_console_is_served_with_a_same_origin_policy(server: RoutrProcess) -> None:
    r = httpx.get(f"{server.api}/", follow_redirects=True)
    assert r.status_code == 200 and r.url.path == "/console/"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    config = Api(server.api, token(server.api)).data("/system/config")
    assert config["spec"]["restService"]["tokenLifetime"] == 3600  # not a secret: shown


def test_bodies_are_capped_and_read_only_after_the_token(server: RoutrProcess, api: Api):
    url = f"{server.api}{BASE}/route"
    big = b'{"from": "' + b"x" * 300_000 + b'"}'
    assert (
        httpx.post(url, content=big, headers={"Content-Type": "application/json"}).status_code
        == 401
    )
    assert (
        api.post("/route", content=big, headers={"Content-Type": "application/json"}).status_code
        == 413
    )
    over = b"[" + b" " * (17 * 1024 * 1024) + b"]"
    r = api.post("/agents", content=over, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_a_dry_run_with_credentials_never_counts_as_a_failed_login(api: Api) -> None:
    text = ("INVITE sip:1002@sip.local SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK9\n"
            "From: <sip:1001@sip.local>;tag=1\nTo: <sip:1002@sip.local>\nCall-ID: dry-auth\n"
            'CSeq: 1 INVITE\nProxy-Authorization: Digest username="1001", realm="sip.local", '
            'nonce="bogus", uri="sip:1002@sip.local", response="00"\n'
            "Content-Length: 0\n\n")  # fmt: skip
    for _ in range(15):
        r = api.post("/route", json={"request": text, "source": "127.0.0.2:5060"})
        assert r.status_code == 200, r.text
    assert api.data("/bans") == []
