"""Prune against a real local repository: what it deletes, what it keeps, and what it refuses to touch."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from backend.repository import Repository, RepositoryCorrupt
from backend.repository.packs import read_pack_header
from backend.repository.prune import parse_max_unused
from backend.storage import open_storage
from backend.storage.local import LocalStorage

PASSWORD = "prune-test"


def fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def build(
    folder: Path, days: int = 4, seed: int = 1
) -> tuple[Repository, list[str], dict[str, dict[str, bytes]]]:
    """`days` snapshots of one project: 20 items shared by all, 20 new (incompressible) items each day."""
    repo = Repository.init(LocalStorage(folder), PASSWORD, pack_size=16 * 1024)
    rng = random.Random(seed)
    shared = {f"issues/ABC-{i}": rng.randbytes(3000) for i in range(20)}
    ids, contents = [], {}
    for day in range(days):
        items = dict(shared) | {f"issues/ABC-{100 * (day + 1) + i}": rng.randbytes(3000) for i in range(20)}
        w = repo.start_snapshot("ABC", "https://acme.example")
        for name, data in items.items():
            w.add_bytes(name, data, "issue")
        ids.append(w.commit())
        contents[ids[-1]] = items
    return repo, ids, contents


def stored_blobs(repo: Repository) -> dict[str, set[str]]:
    """Pack name -> the blob ids its own header lists, for every pack in storage."""
    return {
        name: {h[0] for h in read_pack_header(repo.keys, repo.storage.load("data", name))}
        for name in repo.storage.list("data")
    }


def read_back(repo: Repository, snapshot_id: str) -> dict[str, bytes]:
    snapshot = repo.snapshot(snapshot_id)
    return {e.name: repo.read_bytes(e) for e in snapshot.iter_entries()}


def test_forget_then_prune_removes_the_bytes_only_forgotten_snapshots_used(tmp_path):
    repo, ids, contents = build(tmp_path / "repo")
    kept = ids[-1]
    kept_blobs = {e.blobs[0] for e in repo.snapshot(kept).iter_entries()} | set(repo.snapshot(kept).trees)
    only_forgotten = {repo.keys.blob_id(data) for i in ids[:-1] for data in contents[i].values()} - kept_blobs
    before = stored_blobs(repo)
    doomed = {p for p, blobs in before.items() if not blobs & kept_blobs}
    assert doomed and only_forgotten
    for snapshot_id in ids[:-1]:
        repo.forget(snapshot_id)

    result = repo.prune(max_unused=0.0)

    after = stored_blobs(repo)
    assert not doomed & set(after)  # every pack that held nothing a kept snapshot needs is gone
    assert not only_forgotten & set().union(*after.values())  # and no copy of those blobs is left anywhere
    assert kept_blobs <= set().union(*after.values())
    assert result.packs_deleted + result.packs_repacked == len(set(before) - set(after))
    assert result.blobs_used == len(kept_blobs) and result.blobs_kept == len(kept_blobs)
    freed = sum(len(contents[i][n]) for i in ids[:-1] for n in contents[i] if n not in contents[kept])
    assert (
        result.bytes_reclaimed >= 0.95 * freed
    )  # stored (compressed, sealed) bytes; random data barely shrinks
    reopened = Repository.open(LocalStorage(tmp_path / "repo"), PASSWORD)
    assert read_back(reopened, kept) == contents[kept]
    check = reopened.check(read_data=True)
    assert check.ok and not check.warnings, (check.errors, check.warnings)
    assert check.blobs_read == len(kept_blobs)


def test_kept_snapshots_read_back_identically_whatever_the_threshold(tmp_path):
    for threshold in (0.0, 0.05, 0.5, 1.0):
        folder = tmp_path / f"repo-{threshold}"
        repo, ids, contents = build(folder, days=5, seed=2)
        repo.forget(ids[0])
        repo.forget(ids[2])
        result = repo.prune(max_unused=threshold)
        reopened = Repository.open(LocalStorage(folder), PASSWORD)
        assert {s.id for s in reopened.snapshots()} == {ids[1], ids[3], ids[4]}
        for snapshot_id in (ids[1], ids[3], ids[4]):
            assert read_back(reopened, snapshot_id) == contents[snapshot_id]
        assert reopened.check(read_data=True).ok
        if threshold == 1.0:
            assert result.packs_repacked == 0 and result.packs_deleted > 0
        if threshold == 0.0:  # nothing unused is left in any listed pack
            used = {
                b
                for s in reopened.snapshots()
                for e in reopened.snapshot(s.id).iter_entries()
                for b in e.blobs
            }
            used |= {t for s in reopened.snapshots() for t in reopened.snapshot(s.id).trees}
            assert {b for b, _ in reopened.index.items()} == used


def test_a_dry_run_changes_nothing_and_predicts_the_real_run(tmp_path):
    repo, ids, _ = build(tmp_path / "repo")
    for snapshot_id in ids[:2]:
        repo.forget(snapshot_id)
    before = fingerprint(tmp_path / "repo")
    planned = repo.prune(max_unused=0.0, dry_run=True)
    assert fingerprint(tmp_path / "repo") == before
    assert planned.packs_deleted > 0 and planned.packs_repacked > 0
    done = repo.prune(max_unused=0.0)
    assert fingerprint(tmp_path / "repo") != before
    for name in ("packs_deleted", "packs_repacked", "packs_unindexed", "blobs_used", "blobs_kept"):
        assert getattr(planned, name) == getattr(done, name), name
    assert planned.bytes_deleted == done.bytes_deleted


def test_prune_twice_changes_nothing_the_second_time(tmp_path):
    repo, ids, _ = build(tmp_path / "repo", days=6, seed=3)
    for snapshot_id in ids[1:4]:
        repo.forget(snapshot_id)
    first = repo.prune(max_unused=0.05)
    assert first.changed
    after_first = fingerprint(tmp_path / "repo")
    second = repo.prune(max_unused=0.05)
    assert not second.changed and second.bytes_written == 0 and second.bytes_deleted == 0
    assert fingerprint(tmp_path / "repo") == after_first


def test_packs_in_no_index_are_deleted_and_a_clean_repository_is_left_alone(tmp_path):
    repo, ids, contents = build(tmp_path / "repo", days=2)
    repo.storage.save("data", "ab" * 32, b"left by a killed backup")
    assert repo.check().warnings
    result = repo.prune()
    assert result.packs_unindexed == 1 and result.packs_deleted == 0
    assert "ab" * 32 not in set(repo.storage.list("data"))
    assert not repo.check(read_data=True).warnings
    assert read_back(repo, ids[0]) == contents[ids[0]]


def test_a_repository_opened_before_a_prune_does_not_dedup_against_deleted_blobs(tmp_path):
    repo, ids, contents = build(tmp_path / "repo", days=2)
    other = Repository.open(LocalStorage(tmp_path / "repo"), PASSWORD)  # e.g. a backup that opened earlier
    repo.forget(ids[0])
    repo.prune(max_unused=0.0)
    with other.lock():  # taking the lock brings its index up to date
        w = other.start_snapshot("ABC", "https://acme.example")
        for name, data in contents[ids[0]].items():  # the forgotten content again: its blobs are gone
            w.add_bytes(name, data, "issue")
        again = w.commit()
    fresh = Repository.open(LocalStorage(tmp_path / "repo"), PASSWORD)
    assert fresh.check(read_data=True).ok
    assert read_back(fresh, again) == contents[ids[0]]


def test_prune_refuses_and_deletes_nothing_when_a_needed_pack_is_missing(tmp_path):
    repo, ids, _ = build(tmp_path / "repo", days=3)
    repo.forget(ids[0])
    needed = repo.index.get(repo.snapshot(ids[-1]).trees[0]).pack
    repo.storage.remove("data", needed)
    before = fingerprint(tmp_path / "repo")
    with pytest.raises(RepositoryCorrupt, match="prune changed nothing"):
        repo.prune()
    assert fingerprint(tmp_path / "repo") == before
    assert not list(repo.storage.list("locks"))


def test_prune_refuses_while_another_process_holds_a_lock(tmp_path):
    repo, ids, _ = build(tmp_path / "repo", days=2)
    repo.forget(ids[0])
    with repo.lock():  # a backup writing
        from backend.repository import RepositoryLocked

        before = fingerprint(tmp_path / "repo")
        with pytest.raises(RepositoryLocked):
            Repository.open(open_storage(f"file://{tmp_path}/repo"), PASSWORD).prune()
        assert fingerprint(tmp_path / "repo") == before


@pytest.mark.parametrize(
    "text, value", [("5%", 0.05), ("0%", 0.0), ("100%", 1.0), ("12.5", 0.125), (" 7 % ", 0.07)]
)
def test_max_unused_parses_percentages(text, value):
    assert parse_max_unused(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["120%", "-1", "abc", "", "nan", "inf", "5%%"])
def test_max_unused_refuses_the_rest(text):
    with pytest.raises(Exception, match=repr(text)):
        parse_max_unused(text)
