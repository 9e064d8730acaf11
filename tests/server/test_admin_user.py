"""First start with no API User: ``admin`` is created, its secret stored hashed."""

from __future__ import annotations

import re
from pathlib import Path

from support.server import RoutrProcess

from routr.data.passwords import verify_secret
from routr.models import User, load_manifest


def _admin(data_dir: Path) -> User:
    (admin,) = load_manifest((data_dir / "users.yml").read_text(), "users.yml", "User")
    assert isinstance(admin, User)
    return admin


def test_generated_admin_secret_is_shown_once_and_stored_hashed(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    proc = RoutrProcess(tmp_path, ("udp",), data=data).start()
    try:
        line = proc.wait_for("created API user 'admin'")
    finally:
        assert proc.stop() == 0
    secret = re.search(r"with secret (\S+) \(shown once\)", line)
    assert secret is not None, line
    stored = _admin(data).spec.credentials.secret
    assert stored.startswith("$argon2id$")
    assert secret.group(1) not in (data / "users.yml").read_text()
    assert verify_secret(stored, secret.group(1))


def test_initial_api_secret_is_stored_hashed(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    proc = RoutrProcess(tmp_path, ("udp",), data=data, env={"INITIAL_API_SECRET": "s3cret-pass"})
    proc.start()
    try:
        proc.wait_for("created API user 'admin' with the secret from INITIAL_API_SECRET")
    finally:
        assert proc.stop() == 0
    assert "s3cret-pass" not in "\n".join(proc.raw)
    assert verify_secret(_admin(data).spec.credentials.secret, "s3cret-pass")
