"""Files the platform creates only their owner may read: the SQLite database with its -wal, -shm and writer
lock, the key file, the sandboxes' keys — 0600, in folders made 0700. Run under the usual umask (022), so it
is the code's own modes that are checked, not the CLI's umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from yibao.crypto.pii import load_keyring
from yibao.domain.errors import InputError
from yibao.sandbox.channels import pair
from yibao.store import migrate
from yibao.store.db import Database
from yibao.store.tables import audit_heads


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_the_sqlite_database_and_its_companions_are_private(tmp_path):
    path = tmp_path / "var" / "yibao" / "yibao.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(db)
        db.run(lambda c: c.execute(audit_heads.insert().values(region="440300", seq=0, hash="0" * 64)))  # a write: -wal and -shm appear
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}.writelock")]
        assert all(f.exists() for f in files), sorted(p.name for p in path.parent.iterdir())
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
        assert oct(mode(path.parent)) == oct(mode(path.parent.parent)) == "0o700"
    finally:
        db.dispose()


def test_a_generated_key_file_is_private_and_one_others_can_read_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("YIBAO_SECRET_KEY", raising=False)
    monkeypatch.delenv("YIBAO_SECRET_FILE", raising=False)
    key = tmp_path / "keys" / "secret.key"
    first = load_keyring(key)
    assert oct(mode(key)) == "0o600" and oct(mode(key.parent)) == "0o700"
    assert load_keyring(key).lookup_hash("x") == first.lookup_hash("x")  # the same key on the next start
    key.chmod(0o644)
    with pytest.raises(InputError) as refused:
        load_keyring(key)
    assert refused.value.field == "YIBAO_SECRET_FILE" and f"chmod 600 {key}" in refused.value.message_en
    assert f"chmod 600 {key}" in refused.value.message_zh


def test_sandbox_keys_are_private(tmp_path):
    folder = tmp_path / "sandbox-keys"
    pair("wxpay", key_dir=folder)
    pair("bank", key_dir=folder)
    made = sorted(folder.iterdir())
    assert {p.name for p in made} == {"wxpay-sandbox-key.pem", "wxpay-platform-key.pem", "wxpay-shared-secret.bin", "bank-shared-secret.bin"}
    assert {p.name: oct(mode(p)) for p in made} == {p.name: "0o600" for p in made}
    assert oct(mode(folder)) == "0o700"
