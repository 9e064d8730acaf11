"""The deployment's master secret: kept by the data source, shared by every process."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from routr_data_testkit import Opener

from routr.data.files_provider import FilesProvider
from routr.data.http_provider import HttpProvider
from routr.data.secrets import SECRET_FILE, Secrets, folder_secret, load_secrets


def test_each_use_gets_its_own_key() -> None:
    keys = Secrets.derive(b"master", "test")
    assert len(keys.route_key) == len(keys.nonce_key) == 32
    assert keys.route_key != keys.nonce_key
    assert Secrets.derive(b"master", "x").nonce_key == keys.nonce_key
    assert Secrets.derive(b"other", "x").nonce_key != keys.nonce_key


def test_folder_secret_is_created_once_private_and_kept(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    with ThreadPoolExecutor(8) as pool:  # processes starting together agree on one
        values = set(pool.map(lambda _: folder_secret(folder), range(16)))
    assert len(values) == 1
    path = folder / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert folder_secret(folder) == values.pop()


async def test_providers_on_one_store_share_the_secret(open_same_store: Opener) -> None:
    first, second = open_same_store(), open_same_store()
    async with first, second:
        a, b = await load_secrets(first), await load_secrets(second)
    if isinstance(first, HttpProvider):
        assert a.source == b.source == "this process"  # it cannot keep one
        assert a.route_key != b.route_key
    else:
        assert a.route_key == b.route_key and a.nonce_key == b.nonce_key
        assert a.source == first.name


async def test_a_configured_secret_wins(tmp_path: Path) -> None:
    async with FilesProvider(tmp_path) as provider:
        keys = await load_secrets(provider, "a-long-configured-secret")
    assert keys.source == "config"
    assert not (tmp_path / SECRET_FILE).exists()
    assert keys == Secrets.derive(b"a-long-configured-secret", "config")


def test_an_empty_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("")
    with pytest.raises(OSError, match="delete it to have a new one made"):
        folder_secret(tmp_path)


def test_the_keys_never_show_in_a_repr() -> None:
    keys = Secrets.derive(b"a master secret of the test suite", "test")
    shown = repr(keys)
    assert "test" in shown
    for key in (keys.route_key, keys.nonce_key, keys.token_key):
        assert repr(key) not in shown and key.hex() not in shown
