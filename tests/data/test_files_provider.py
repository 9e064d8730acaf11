"""The files provider: v1 folder layout, atomic writes, hand edits while running."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest
from routr_data_testkit import agent, domain, wait_until

from routr.data import BrokenSource, Change, FilesProvider, integrity
from routr.data.files_provider import write_atomically
from routr.models import dump_manifest, load_manifest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "config"


async def test_missing_folder_is_empty_and_created_on_first_write(tmp_path: Path) -> None:
    folder = tmp_path / "does" / "not" / "exist"
    async with FilesProvider(folder, poll_interval=0.05) as p:
        assert len(await p.snapshot()) == 0
        assert not folder.exists()
        await p.create(domain())
    assert (folder / "domains.yml").exists()
    assert not (folder / "agents.yml").exists()  # untouched kinds stay absent


async def test_write_is_atomic_with_backup(tmp_path: Path) -> None:
    async with FilesProvider(tmp_path, poll_interval=0.05) as p:
        await p.create(domain())
        first = (tmp_path / "domains.yml").read_text()
        await p.create(domain("sip.two"))
        assert (tmp_path / "domains.yml.bak").read_text() == first
    text = (tmp_path / "domains.yml").read_text()
    assert [r.spec.context.domainUri for r in load_manifest(text)] == [  # type: ignore[attr-defined]
        "sip.local",
        "sip.two",
    ]
    leftovers = [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")]
    assert leftovers == []


async def test_file_mode_is_kept(tmp_path: Path) -> None:
    (tmp_path / "domains.yml").write_text("[]\n")
    (tmp_path / "domains.yml").chmod(0o640)
    async with FilesProvider(tmp_path) as p:
        await p.create(domain())
    assert (tmp_path / "domains.yml").stat().st_mode & 0o777 == 0o640


async def test_hand_edit_is_picked_up(tmp_path: Path) -> None:
    async with FilesProvider(tmp_path, poll_interval=0.05) as p:
        await p.create(domain())
        heard: list[Change] = []
        p.subscribe(heard.append)
        (tmp_path / "agents.yml").write_text(
            "- kind: Agent\n  apiVersion: v1beta1\n  metadata: {name: John Doe}\n"
            "  spec: {credentials: {username: 1001, secret: 1234}, domains: [sip.local]}\n"
        )
        await wait_until(lambda: len(heard) == 1, what="the hand edit")
        assert heard[0].type == "ADDED" and heard[0].kind == "Agent"
        found = await p.find_by_key("Agent", "1001@sip.local")
        assert found is not None


DOMAINS_ONE_BAD = (
    "- kind: Domain\n  metadata: {name: Local}\n  spec: {context: {domainUri: sip.local}}\n"
    "- kind: Domain\n  metadata: {name: Broken}\n  spec:\n    context:\n"
    "      domainUri: sip.broken\n      egressPolicy: {rule: '([0-9', numberRef: dd-1}\n"
)


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


async def test_a_bad_entry_is_left_out_and_the_others_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="routr.data")
    (tmp_path / "domains.yml").write_text(DOMAINS_ONE_BAD)
    async with FilesProvider(tmp_path, poll_interval=0.05) as p:
        assert await p.find_by_key("Domain", "sip.local") is not None
        assert await p.find_by_key("Domain", "sip.broken") is None
        path = tmp_path / "domains.yml"
        assert (
            f"{path}:9: Domain 'Broken' (domainUri sip.broken): spec.context.egressPolicy.rule: "
            "not a valid regular expression: unterminated character set at position 1; not loaded"
        ) in messages(caplog)
        assert f"{path} loaded: 1 domain; 1 not loaded" in messages(caplog)
        # a write would rewrite the file from what is in force and drop the entry of line 9
        with pytest.raises(BrokenSource, match=r"domains\.yml: the entry at line 9 is not loaded"):
            await p.create(domain("sip.two"))
        await p.create(agent())  # other files stay writable


async def test_a_hand_edit_with_a_bad_entry_loads_the_valid_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="routr.data")
    async with FilesProvider(tmp_path, poll_interval=0.05) as p:
        await p.create(domain("sip.old"))
        (tmp_path / "domains.yml").write_text(DOMAINS_ONE_BAD)
        await wait_until(lambda: "Domain" in p.problems, what="the edit to be seen")
        assert [r.ref for r in (await p.snapshot()).items("Domain")] == [
            r.ref for r in [domain("sip.local")]
        ]
        assert f"{tmp_path / 'domains.yml'} reloaded: 1 domain; 1 not loaded" in messages(caplog)


async def test_unparsable_edit_keeps_last_good_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="routr.data")
    async with FilesProvider(tmp_path, poll_interval=0.05) as p:
        await p.create(domain())
        good = await p.snapshot()
        (tmp_path / "domains.yml").write_text("- kind: Domain\n  metadata: {name: x\n")
        await wait_until(
            lambda: "invalid YAML" in p.problems.get("Domain", ""), what="the YAML error"
        )
        assert await p.snapshot() == good
        assert f"{tmp_path / 'domains.yml'}:3:" in p.problems["Domain"]
        assert any("last good version stays in force" in m for m in messages(caplog))
        with pytest.raises(BrokenSource, match="fix the file before writing"):
            await p.create(domain("sip.two"))
        # fixing the file brings it back, and says so
        (tmp_path / "domains.yml").write_text(
            "- kind: Domain\n  metadata: {name: Local}\n  spec: {context: {domainUri: sip.fixed}}\n"
        )
        await wait_until(lambda: "Domain" not in p.problems, what="the fix")
        assert await p.find_by_key("Domain", "sip.fixed") is not None
        assert f"{tmp_path / 'domains.yml'} loaded again: 1 domain" in messages(caplog)


async def test_an_unparsable_file_at_start_loads_nothing_of_its_kind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="routr.data")
    (tmp_path / "domains.yml").write_text("- kind: Domain\n  metadata: {name: x\n")
    (tmp_path / "users.yml").write_text(
        "- kind: User\n  metadata: {name: Admin}\n"
        "  spec: {credentials: {username: admin, secret: x}}\n"
    )
    async with FilesProvider(tmp_path) as p:
        assert (await p.list("Domain")).total == 0
        assert (await p.list("User")).total == 1
    assert any(m.endswith("; not loaded") and "invalid YAML" in m for m in messages(caplog))


async def test_duplicates_keep_the_first_and_name_its_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="routr.data")
    entry = (
        "- kind: User\n  metadata: {name: Admin}\n"
        "  spec: {credentials: {username: admin, secret: x}}\n"
    )
    (tmp_path / "users.yml").write_text(entry * 2)
    async with FilesProvider(tmp_path) as p:
        assert (await p.list("User")).total == 1
        assert "line 4 is not loaded" in p.problems["User"]
    assert messages(caplog) == [
        f"{tmp_path / 'users.yml'}:4: User 'Admin': username admin is already defined at line 1;"
        " not loaded"
    ]


async def test_reloads_removals_and_emptied_files_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="routr.data")
    path = tmp_path / "domains.yml"
    async with FilesProvider(tmp_path, poll_interval=0.05) as p:
        await p.create(domain("sip.one"))
        await p.create(domain("sip.two"))
        caplog.clear()
        write_atomically(path, "[]\n")
        await wait_until(lambda: not p.current().items("Domain"), what="the emptied file")
        assert (logging.WARNING, f"{path} reloaded: 0 domains (was 2)") in [
            (r.levelno, r.getMessage()) for r in caplog.records
        ]
        write_atomically(path, dump_manifest([domain("sip.one")]))
        await wait_until(lambda: bool(p.current().items("Domain")), what="the refilled file")
        path.unlink()
        await wait_until(lambda: not p.current().items("Domain"), what="the removal")
    assert messages(caplog)[-2:] == [
        f"{path} reloaded: 1 domain (was 0)",
        f"{path} removed: 0 domains (was 1)",
    ]


async def test_concurrent_writers_in_two_processes_lose_nothing(tmp_path: Path) -> None:
    # two providers on one folder stand in for two processes: the flock and the re-read
    # under it keep both sets of writes
    a, b = FilesProvider(tmp_path, poll_interval=60), FilesProvider(tmp_path, poll_interval=60)
    await a.start()
    await b.start()
    try:
        await a.create(domain())
        await asyncio.gather(
            *(a.create(agent(str(n))) for n in range(1000, 1010)),
            *(b.create(agent(str(n))) for n in range(2000, 2010)),
        )
        on_disk = load_manifest((tmp_path / "agents.yml").read_text())
        assert len(on_disk) == 20
    finally:
        await a.close()
        await b.close()


async def test_v1_example_config_loads_unchanged(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "config")
    async with FilesProvider(tmp_path / "config") as p:
        snap = await p.snapshot()
        assert p.problems == {}
        assert integrity.audit(snap) == []  # v1 generated refs resolve (gwRef, numberRef)
        counts = {
            k: len(snap.items(k)) for k in ("Agent", "Domain", "Peer", "Gateway", "Number", "User")
        }
        assert counts == {"Agent": 2, "Domain": 1, "Peer": 1, "Gateway": 1, "Number": 1, "User": 1}
        assert await p.find_by_key("Agent", "1002@sip.local") is not None
        assert await p.find_by_key("Peer", "ast") is not None
        # loading twice gives the same refs
        async with FilesProvider(tmp_path / "config") as again:
            assert await again.snapshot() == snap
        # and a write keeps the v1 files readable, refs included
        await p.create(agent("1003"))
    reread = load_manifest((tmp_path / "config" / "agents.yml").read_text())
    assert [r.ref for r in reread][:2] == [r.ref for r in snap.items("Agent")]
