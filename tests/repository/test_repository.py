"""The repository format end to end: round trips, dedup, encryption, locks, tampering, concurrency."""

from __future__ import annotations

import io
import json
import os
import threading

import pytest

from backend.repository import Repository, RepositoryError, RepositoryLocked, WrongPassword
from backend.repository.locks import Lock
from backend.storage import MemoryStorage, open_storage

PASSWORD = "correct horse battery staple"


@pytest.fixture
def storage(tmp_path):
    return open_storage(f"file://{tmp_path}/repo")


@pytest.fixture
def repo(storage):
    return Repository.init(storage, PASSWORD, pack_size=256 * 1024)


def issue(n: int, text: str = "") -> dict:
    return {
        "id": str(10000 + n),
        "key": f"ABC-{n}",
        "fields": {
            "summary": f"Issue {n} {text}",
            "description": {"type": "doc", "content": [{"type": "text", "text": "x" * (n % 50)}]},
        },
    }


@pytest.mark.parametrize("size", [0, 1, 1 << 20, (1 << 20) + 1, 5 * (1 << 20) + 123])
def test_streams_of_any_size_round_trip(repo, size):
    data = os.urandom(size)
    w = repo.start_snapshot("ABC", "http://site")
    w.add_stream("attachments/ABC-1/1", io.BytesIO(data), "attachment", {"filename": "f.bin"})
    snap = repo.snapshot(w.commit())
    entry = snap.entry("attachments/ABC-1/1")
    assert entry.size == size and entry.attrs == {"filename": "f.bin"}
    assert repo.read_bytes(entry) == data


def test_json_documents_round_trip_through_a_fresh_open(repo, storage):
    w = repo.start_snapshot("ABC", "http://site", meta={"counts": {"issues": 20}})
    for n in range(20):
        w.add_json(f"issues/ABC-{n}", issue(n), "issue", {"updated": f"2026-01-{n + 1:02d}"})
    sid = w.commit()
    reopened = Repository.open(storage, PASSWORD)
    snap = reopened.snapshot(sid[:10])
    assert snap.info.meta == {"counts": {"issues": 20}}
    assert snap.info.entry_count == 20
    assert reopened.read_json(snap.entry("issues/ABC-7")) == issue(7)
    assert snap.entry("issues/ABC-7").attrs["updated"] == "2026-01-08"


def test_an_unchanged_second_snapshot_stores_no_new_data(repo, storage):
    def backup(parent=None):
        w = repo.start_snapshot("ABC", "http://site", parent=parent)
        for n in range(300):
            w.add_json(f"issues/ABC-{n}", issue(n), "issue")
        return w, w.commit()

    first, first_id = backup()
    packs_before = set(storage.list("data"))
    second, _ = backup(first_id)
    assert first.new_bytes > 0
    assert second.new_bytes == 0
    assert set(storage.list("data")) == packs_before


def test_carry_keeps_an_item_without_reading_or_storing(repo):
    w = repo.start_snapshot("ABC", "http://site")
    w.add_json("issues/ABC-1", issue(1), "issue", {"updated": "a"})
    first = repo.snapshot(w.commit())
    w2 = repo.start_snapshot("ABC", "http://site", parent=first.id)
    w2.carry("issues/ABC-1", first.entry("issues/ABC-1"))
    second = repo.snapshot(w2.commit())
    assert w2.new_bytes == 0
    assert repo.read_json(second.entry("issues/ABC-1")) == issue(1)


def test_stored_bytes_are_encrypted(repo, storage):
    w = repo.start_snapshot("ABC", "http://site")
    w.add_json("issues/ABC-1", {"secret": "PLAINTEXT-MARKER-1234"}, "issue")
    w.commit()
    for kind in ("data", "index", "snapshots", "config", "keys"):
        for name in storage.list(kind):
            assert b"PLAINTEXT-MARKER" not in storage.load(kind, name)


def test_wrong_password_is_refused_clearly(repo, storage):
    with pytest.raises(WrongPassword, match="password"):
        Repository.open(storage, "wrong")


def test_init_refuses_an_existing_repository_and_open_refuses_an_empty_storage(repo, storage, tmp_path):
    with pytest.raises(RepositoryError, match="already holds a repository"):
        Repository.init(storage, PASSWORD)
    assert len(list(storage.list("keys"))) == 1  # the refused init left nothing behind
    with pytest.raises(RepositoryError, match="no repository"):
        Repository.open(open_storage(f"file://{tmp_path}/empty"), PASSWORD)


def _one_snapshot(repo) -> str:
    w = repo.start_snapshot("ABC", "http://site")
    for n in range(50):
        w.add_json(f"issues/ABC-{n}", issue(n), "issue")
    w.add_stream("attachments/ABC-1/9", io.BytesIO(os.urandom(300_000)), "attachment")
    return w.commit()


def test_check_passes_on_a_healthy_repository(repo):
    _one_snapshot(repo)
    result = repo.check(read_data=True)
    assert result.ok, result.errors
    assert result.blobs_read > 50


def test_check_detects_a_tampered_pack(repo, storage):
    sid = _one_snapshot(repo)
    attachment = repo.snapshot(sid).entry("attachments/ABC-1/9")
    where = repo.index.get(attachment.blobs[0])  # flip a bit inside an attachment's bytes, not a tree
    pack = where.pack
    data = bytearray(storage.load("data", pack))
    data[where.offset + 20] ^= 0xFF
    storage.save("data", pack, bytes(data))
    assert repo.check(read_data=False).ok  # structure alone cannot see a flipped bit ...
    errors = repo.check(read_data=True).errors  # ... reading the data does
    assert any(pack[:12] in e and "damaged" in e for e in errors)


def test_check_detects_a_missing_pack_and_a_tampered_snapshot(repo, storage):
    sid = _one_snapshot(repo)
    pack = next(iter(storage.list("data")))
    storage.remove("data", pack)
    data = bytearray(storage.load("snapshots", sid))
    data[-1] ^= 1
    storage.save("snapshots", sid, bytes(data))
    errors = repo.check().errors
    assert any("missing from storage" in e for e in errors)
    assert any(sid[:12] in e and "damaged" in e for e in errors)


def test_a_tampered_index_stops_open_with_a_clear_error(repo, storage):
    _one_snapshot(repo)
    name = next(iter(storage.list("index")))
    storage.save("index", name, storage.load("index", name)[:-3])
    with pytest.raises(RepositoryError, match="index files are damaged"):
        Repository.open(storage, PASSWORD)


def test_exclusive_and_shared_locks_conflict_and_stale_locks_do_not(repo, storage):
    with (
        repo.lock(exclusive=False),
        repo.lock(exclusive=False),
        pytest.raises(RepositoryLocked, match="shared lock by pid"),
    ):
        repo.lock(exclusive=True)
    with repo.lock(exclusive=True), pytest.raises(RepositoryLocked, match="exclusive"):
        repo.lock()
    dead = {"time": 1e10, "host": os.uname().nodename, "pid": 2**22 + 12345, "exclusive": True}
    storage.save("locks", "dead", json.dumps(dead).encode())
    with repo.lock():
        pass  # the dead process's lock is stale
    assert repo.unlock_stale() and "dead" not in set(storage.list("locks"))
    assert isinstance(Lock(storage, False), Lock)


def test_many_threads_write_one_snapshot_and_two_snapshots_at_once(repo):
    writers = [repo.start_snapshot(p, "http://site") for p in ("ABC", "DEF")]

    def work(w, offset: int) -> None:
        for n in range(offset, offset + 100):
            w.add_json(f"issues/X-{n}", issue(n, w.project), "issue")

    threads = [threading.Thread(target=work, args=(w, o)) for w in writers for o in (0, 100, 200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [w.commit() for w in writers]
    for w, sid in zip(writers, ids, strict=True):
        snap = repo.snapshot(sid)
        assert snap.info.entry_count == 300
        assert repo.read_json(snap.entry("issues/X-250")) == issue(250, w.project)
    assert repo.check(read_data=True).ok


def test_memory_storage_works_the_same():
    repo = Repository.init(MemoryStorage(), PASSWORD)
    sid = _one_snapshot(repo)
    assert [s.id for s in repo.snapshots("ABC")] == [sid]
