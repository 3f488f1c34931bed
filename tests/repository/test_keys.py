"""Repository keys (backend/repository/keys.py): adding, removing and changing a wrap rewrites no data; the
last key and the key in use cannot be removed; the recovery wrap opens with the passphrase alone; a
repository written by the version 1 key layout (tests/repository/data, made by the code before keys had
fields) still opens and gets the new layout without a byte of data rewritten."""

from __future__ import annotations

import base64
import io
import json
import shutil
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from backend.repository import Repository, WrongPassword
from backend.repository.crypto import RecoveryKey
from backend.repository.keys import (
    KeyRefused,
    add_key,
    change_password,
    list_keys,
    remove_key,
    set_recovery,
    upgrade_legacy,
)
from backend.storage import Storage, StorageError, open_storage
from backend.storage.base import KINDS
from backend.storage.local import LocalStorage
from tests.storage.servers import azurite_server, s3_server  # noqa: F401

DATA = Path(__file__).parent / "data"
LEGACY_PASSWORD = "legacy password 1"  # what tests/repository/data/legacy-v1 was made with
PASSPHRASE = "correct horse battery staple"


def objects(storage: Storage, kinds=tuple(k for k in KINDS if k != "locks")) -> dict[tuple[str, str], bytes]:
    """Every stored object but locks, by (kind, name): what a change must leave alone or may touch."""
    return {(kind, name): storage.load(kind, name) for kind in kinds for name in storage.list(kind)}


def not_keys(storage: Storage) -> dict[tuple[str, str], bytes]:
    return objects(storage, tuple(k for k in KINDS if k not in ("locks", "keys")))


def small_repo(storage: Storage, password: str = "first password") -> Repository:
    repo = Repository.init(storage, password, pack_size=64 * 1024, label="first")
    with repo.lock():
        w = repo.start_snapshot(project="ABC", site="https://acme.atlassian.net")
        w.add_json("issues/ABC-1", {"key": "ABC-1", "fields": {"summary": "keys"}}, kind="issue")
        w.add_stream("attachments/ABC-1/1", io.BytesIO(b"x" * 5000), kind="attachment")
        w.commit()
    return repo


@pytest.fixture(
    params=[
        "local",
        pytest.param("azure", marks=pytest.mark.azurite),
        pytest.param("s3", marks=[pytest.mark.s3, pytest.mark.slow]),
    ]
)
def storage(request, tmp_path, monkeypatch) -> Storage:
    """A fresh storage: a local folder, an Azurite container or a bucket on the moto S3 server (slow: the
    recovery test, tests/backend/test_recovery_passphrase.py, already works on S3 in `make test`)."""
    if request.param == "local":
        return open_storage(f"file://{tmp_path}/repo")
    if request.param == "azure":
        conn = request.getfixturevalue("azurite")
        return open_storage(f"azure://c{uuid.uuid4().hex[:12]}/keys?connection_string={quote(conn)}")
    endpoint = request.getfixturevalue("s3_server")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return open_storage(f"s3://b{uuid.uuid4().hex[:12]}/keys?endpoint_url={endpoint}")


def test_add_passwd_and_remove_change_key_files_only(storage):
    repo = small_repo(storage)
    data = not_keys(storage)
    first = repo.key_name
    added = add_key(repo, "second password", label="ops", host="ops-host", username="ops")
    assert Repository.open(storage, "second password").key_name == added.id
    listed = {k.id: k for k in list_keys(repo)}
    assert set(listed) == {first, added.id} and listed[first].current and not listed[added.id].current
    assert (listed[added.id].label, listed[added.id].host, listed[added.id].username) == (
        "ops",
        "ops-host",
        "ops",
    )
    assert listed[first].kind == "password" and listed[first].label == "first"

    other = Repository.open(storage, "second password")
    old, new = change_password(other, "third password")
    assert old.id == added.id and new.label == "ops" and other.key_name == new.id
    with pytest.raises(WrongPassword):
        Repository.open(storage, "second password")
    reopened = Repository.open(storage, "third password")
    assert reopened.keys == repo.keys  # the same master keys: nothing was re-encrypted

    removed = remove_key(reopened, first[:8])
    assert removed.id == first
    with pytest.raises(WrongPassword):
        Repository.open(storage, "first password")
    assert not_keys(storage) == data  # packs, index, snapshots, config: byte for byte, same names
    assert reopened.check(read_data=True).ok
    snap = reopened.snapshots()[0]
    entry = reopened.snapshot(snap.id).entry("issues/ABC-1")
    assert reopened.read_json(entry)["fields"]["summary"] == "keys"


REFUSED = {
    "the last key": lambda repo, other: remove_key(other, other.key_name),
    "the key in use": lambda repo, other: remove_key(repo, repo.key_name),
    "an unknown id": lambda repo, other: remove_key(repo, "ffffffff"),
    "a prefix too short": lambda repo, other: remove_key(repo, repo.key_name[:3]),
    "an empty password": lambda repo, other: add_key(repo, ""),
    "a control character in the label": lambda repo, other: add_key(repo, "pw", label="a\x1bb"),
    "an empty new password": lambda repo, other: change_password(repo, ""),
}


@pytest.mark.parametrize("case", REFUSED)
def test_refused_key_changes_say_why_and_change_nothing(tmp_path, case):
    storage = LocalStorage(tmp_path / "repo")
    repo = small_repo(storage)
    other = Repository.open(storage, "first password")
    if case == "the last key":  # `other` opened the only key: it may not remove it, nor may anyone
        other.key_name = "someone-else"
    before = objects(storage)
    with pytest.raises(KeyRefused) as refused:
        REFUSED[case](repo, other)
    assert str(refused.value)
    assert objects(storage) == before


def test_wrong_password_opens_nothing(tmp_path):
    storage = LocalStorage(tmp_path / "repo")
    small_repo(storage)
    with pytest.raises(WrongPassword):
        Repository.open(storage, "not it")


def test_the_recovery_wrap_opens_with_the_passphrase_alone_and_is_replaced_whole(tmp_path):
    storage = LocalStorage(tmp_path / "repo")
    repo = small_repo(storage)
    data = not_keys(storage)
    first = RecoveryKey.from_passphrase(PASSPHRASE)
    changed = set_recovery(repo, first, "org recovery")
    assert len(changed["added"]) == 1 and changed["removed"] == []
    assert set_recovery(repo, first, "org recovery") == {"added": [], "removed": []}  # idempotent
    rescued = Repository.open(storage, PASSPHRASE)
    assert rescued.keys == repo.keys and rescued.key_name == changed["added"][0]
    (rec,) = [k for k in list_keys(repo) if k.kind == "recovery"]
    assert rec.fingerprint == first.fingerprint and rec.label == "org recovery"
    raw = json.loads(storage.load("keys", rec.id))
    assert PASSPHRASE not in json.dumps(raw) and raw["kdf"] == "scrypt-x25519"

    second = RecoveryKey.from_passphrase("another long passphrase")
    changed = set_recovery(repo, second)
    assert len(changed["added"]) == 1 and changed["removed"] == [rec.id]
    with pytest.raises(WrongPassword):
        Repository.open(storage, PASSPHRASE)
    assert Repository.open(storage, "another long passphrase").keys == repo.keys
    assert set_recovery(repo, None)["removed"] == changed["added"]
    assert [k.kind for k in list_keys(repo)] == ["password"]
    assert not_keys(storage) == data


def test_the_recovery_key_in_use_cannot_be_removed_or_passwd_ed(tmp_path):
    storage = LocalStorage(tmp_path / "repo")
    repo = small_repo(storage)
    set_recovery(repo, RecoveryKey.from_passphrase(PASSPHRASE))
    rescued = Repository.open(storage, PASSPHRASE)
    before = objects(storage)
    with pytest.raises(KeyRefused, match="recovery key"):
        change_password(rescued, "new password")
    with pytest.raises(KeyRefused, match="opened the repository with"):
        remove_key(rescued, rescued.key_name)
    assert objects(storage) == before


def legacy_copy(tmp_path: Path) -> LocalStorage:
    shutil.copytree(DATA / "legacy-v1", tmp_path / "legacy")
    return LocalStorage(tmp_path / "legacy")


def test_a_version_1_repository_opens_and_gets_the_new_layout_without_rewriting_data(tmp_path):
    storage = legacy_copy(tmp_path)
    data = not_keys(storage)
    (old_name,) = storage.list("keys")
    old = json.loads(storage.load("keys", old_name))
    assert old["version"] == 1 and "kind" not in old  # as the code before this change wrote it

    repo = Repository.open(storage, LEGACY_PASSWORD)
    assert [(k.kind, k.current) for k in list_keys(repo)] == [("legacy", True)]
    assert repo.check(read_data=True).ok
    upgraded = upgrade_legacy(repo, "service")
    assert upgraded is not None and upgraded.kind == "password" and upgraded.label == "service"
    assert list(storage.list("keys")) == [upgraded.id] and repo.key_name == upgraded.id
    new = json.loads(storage.load("keys", upgraded.id))
    assert {k: new[k] for k in ("salt", "data", "n", "r", "p")} == {
        k: old[k] for k in ("salt", "data", "n", "r", "p")
    }
    assert upgrade_legacy(repo) is None  # once

    again = Repository.open(storage, LEGACY_PASSWORD)
    assert not_keys(storage) == data
    (snap,) = again.snapshots()
    assert snap.project == "ABC"
    entry = again.snapshot(snap.id).entry("attachments/ABC-1/10100")
    assert again.read_bytes(entry) == b"attachment bytes " * 100


def version_1_reader(key_file: dict, password: str) -> dict:
    """How the code before this change opened a key file (docs/storage-format.md, version 1): scrypt
    fields, AES-GCM with `keepstone-key`; written independently of backend.repository.crypto."""
    salt = base64.b64decode(key_file["salt"])
    kek = Scrypt(salt=salt, length=32, n=key_file["n"], r=key_file["r"], p=key_file["p"]).derive(
        password.encode()
    )
    sealed = base64.b64decode(key_file["data"])
    return json.loads(AESGCM(kek).decrypt(sealed[:12], sealed[12:], b"keepstone-key"))


def test_a_new_password_key_file_still_opens_with_the_version_1_rules(tmp_path):
    """Why the format version stays 1: the new fields sit beside a wrap a version 1 reader opens."""
    storage = LocalStorage(tmp_path / "repo")
    repo = small_repo(storage)
    payload = version_1_reader(json.loads(storage.load("keys", repo.key_name)), "first password")
    assert base64.b64decode(payload["mac"]) == repo.keys.mac


class KeysCannotBeRemoved(LocalStorage):
    """A storage that stops (as a crash would) when a key file is to be removed."""

    def remove(self, kind: str, name: str) -> None:
        if kind == "keys":
            raise StorageError("stopped before removing the old key file")
        super().remove(kind, name)


def test_passwd_stopped_between_its_two_steps_leaves_both_keys_never_none(tmp_path):
    small_repo(LocalStorage(tmp_path / "repo"))
    storage = KeysCannotBeRemoved(tmp_path / "repo")
    repo = Repository.open(storage, "first password")
    with pytest.raises(StorageError):
        change_password(repo, "new password")
    assert Repository.open(storage, "first password").keys == repo.keys
    assert Repository.open(storage, "new password").keys == repo.keys


def test_a_password_wrap_is_derived_once_a_process_a_recovery_wrap_every_time(tmp_path, monkeypatch):
    """Workers open a repository at the start, each project and the finish of a run: scrypt runs once for
    the service's password wrap; a recovery passphrase's private half is derived afresh each time."""
    from backend.repository import crypto

    storage = LocalStorage(tmp_path / "repo")
    repo = small_repo(storage)
    recovery = RecoveryKey.from_passphrase(PASSPHRASE)
    set_recovery(repo, recovery)
    derived: list[tuple[str, bytes]] = []
    real = crypto._kek

    def counted(password: str, salt: bytes, *rest: int) -> bytes:
        derived.append((password, salt))
        return real(password, salt, *rest)

    monkeypatch.setattr(crypto, "_kek", counted)
    crypto._opening_kek.cache_clear()
    for _ in range(3):
        assert Repository.open(storage, "first password").keys == repo.keys
    assert [p for p, _ in derived].count("first password") == 1
    for _ in range(2):
        assert Repository.open(storage, PASSPHRASE).keys == repo.keys
    assert derived.count((PASSPHRASE, recovery.salt)) == 2
    with pytest.raises(WrongPassword):  # a remembered key never opens with another password
        Repository.open(storage, "not it")
