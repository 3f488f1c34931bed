"""`keepstone copy` for real: a backup of a sandbox site copied local -> Azure (Azurite) -> S3 (moto) and
read back from the last copy; dedup after a small incremental backup, counted exactly; bad input is one
line that changes nothing. (The kill test is in test_copy_kill.py.)"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from backend.backup import BackupSpec, run_backup
from backend.repository import Repository
from backend.repository.copy import CopyError, copy, missing
from backend.repository.locks import Lock
from backend.storage import MemoryStorage, open_storage
from backend.storage.local import LocalStorage
from keepstone.cli import main as keepstone_main
from tests.backup.conftest import client_for, sandbox_admin
from tests.conftest import free_port
from tests.storage.servers import azurite_server, s3_server  # noqa: F401

SOURCE_PW, AZURE_PW, S3_PW = "copy-source", "copy-azure", "copy-s3"


def contents(repo: Repository) -> dict[tuple[str, str, str], dict]:
    """Every snapshot by (origin, project, time): its entries (name -> kind, attrs, size, bytes)."""
    out = {}
    for info in repo.snapshots():
        snap = repo.snapshot(info.id)
        key = (info.meta.get("origin", info.id), info.project, info.time)
        entries = {
            e.name: (e.kind, json.dumps(e.attrs, sort_keys=True), e.size, repo.read_bytes(e))
            for e in snap.iter_entries()
        }
        meta = {k: v for k, v in info.meta.items() if k != "origin"}
        out[key] = {"entries": entries, "meta": meta, "site": info.site, "count": info.entry_count}
    return out


def blob_sets(repo: Repository, snapshot_id: str) -> set[str]:
    snap = repo.snapshot(snapshot_id)
    return set(snap.trees) | {b for e in snap.iter_entries() for b in e.blobs}


def run_copy(capsys, source: str, destination: str, *extra: str) -> dict:
    code = keepstone_main(["copy", "--from", source, "--to", destination, "--json", *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.mark.azurite
@pytest.mark.s3
def test_a_sandbox_backup_copies_local_to_azure_to_s3_reads_back_and_dedups(
    tmp_path, fresh_site, azurite, request, monkeypatch, capsys
):
    endpoint = request.getfixturevalue("s3_server")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    local = f"file://{tmp_path}/local"
    azure = f"azure://c{uuid.uuid4().hex[:12]}/keepstone/acme?connection_string={quote(azurite)}"
    s3 = f"s3://b{uuid.uuid4().hex[:12]}/acme?endpoint_url={endpoint}"
    source = Repository.init(open_storage(local), SOURCE_PW, pack_size=256 * 1024)
    client = client_for(fresh_site)
    first = run_backup(client, source, BackupSpec.from_dict({"corrupt_attachments": "skip"}))
    assert first.status in ("ok", "warning") and len(first.projects) == 2

    hops = [(local, SOURCE_PW, azure, AZURE_PW), (azure, AZURE_PW, s3, S3_PW)]
    for src, src_pw, dst, dst_pw in hops:
        monkeypatch.setenv("KEEPSTONE_FROM_PASSWORD", src_pw)
        monkeypatch.setenv("KEEPSTONE_REPO_PASSWORD", dst_pw)
        done = run_copy(capsys, src, dst, "--init")
        assert done["snapshots_copied"] == 2 and done["snapshots_skipped"] == 0, done
        assert done["blobs_copied"] > 0 and done["bytes_written"] > 0 and done["blobs_verified"] > 0
    last = Repository.open(open_storage(s3), S3_PW)
    assert last.keys.mac != source.keys.mac  # re-encrypted: every repository has its own keys
    assert last.check(read_data=True).ok
    # The sandbox's own view of the issues matches what the last copy holds.
    site = sandbox_admin(fresh_site, "GET", "site")
    for project in site["projects"]:
        info = last.latest(project["key"])
        names = {e.name for e in last.snapshot(info.id).iter_entries() if e.kind == "issue"}
        assert names == {f"issues/{k}" for k in project["issues"]}

    # A small incremental backup: each hop writes exactly the blobs the new snapshots added.
    changed = sandbox_admin(fresh_site, "POST", "mutate", {"share": 0.1, "seed": 5, "project": "PLAT"})
    assert changed["changed"]
    second = run_backup(client, source, BackupSpec.from_dict({"corrupt_attachments": "skip"}))
    new_blobs: set[str] = set()
    for p in second.projects:
        before = next(q for q in first.projects if q.project == p.project)
        new_blobs |= blob_sets(source, p.snapshot_id) - blob_sets(source, before.snapshot_id)
    assert new_blobs
    monkeypatch.setenv("KEEPSTONE_FROM_PASSWORD", SOURCE_PW)
    monkeypatch.setenv("KEEPSTONE_REPO_PASSWORD", AZURE_PW)
    azure_repo = Repository.open(open_storage(azure), AZURE_PW)
    before = len(azure_repo.index)
    done = run_copy(capsys, local, azure)
    assert done["snapshots_copied"] == 2 and done["snapshots_skipped"] == 2, done
    assert done["blobs_copied"] == len(new_blobs), (done, len(new_blobs))
    whole = copy(source, Repository.init(MemoryStorage(), "x")).bytes_read  # every blob read once
    assert done["bytes_read"] < whole / 2, (done["bytes_read"], whole)  # unchanged blobs are not read
    assert len(Repository.open(open_storage(azure), AZURE_PW).index) == before + len(new_blobs)
    monkeypatch.setenv("KEEPSTONE_FROM_PASSWORD", AZURE_PW)
    monkeypatch.setenv("KEEPSTONE_REPO_PASSWORD", S3_PW)
    done = run_copy(capsys, azure, s3)
    assert done["snapshots_copied"] == 2 and done["blobs_copied"] == len(new_blobs), done
    again = run_copy(capsys, azure, s3)
    assert again["snapshots_copied"] == 0 and again["snapshots_skipped"] == 4 and again["bytes_written"] == 0
    last = Repository.open(open_storage(s3), S3_PW)
    assert contents(last) == contents(source)  # every issue, comment, attachment, byte for byte
    # Copies keep the chain: each new snapshot's parent is the copy of its parent.
    for info in last.snapshots():
        if info.parent:
            assert info.parent in {s.id for s in last.snapshots()}


def small_repo(folder: Path | None = None, password: str = SOURCE_PW) -> Repository:
    storage = LocalStorage(folder) if folder else MemoryStorage()
    repo = Repository.init(storage, password, pack_size=8 * 1024)
    for project in ("ABC", "OPS"):
        w = repo.start_snapshot(project, "https://acme.example")
        for i in range(10):
            w.add_bytes(f"issues/{project}-{i}", os.urandom(1500), "issue")
        w.commit()
    return repo


def test_copy_of_one_project_and_back_again_copies_nothing_twice():
    a = small_repo()
    b = Repository.init(MemoryStorage(), "b")
    assert copy(a, b, include=lambda s: s.project == "OPS").snapshots_copied == 1
    assert [s.project for s in missing(a, b)] == ["ABC"]
    assert copy(a, b).snapshots_copied == 1
    back = copy(b, a)  # b's snapshots are copies of a's: a already has their origin
    assert back.snapshots_copied == 0 and back.snapshots_skipped == 2
    with pytest.raises(CopyError, match="same repository"):
        copy(a, a)


def test_a_copy_waits_for_nothing_and_refuses_a_destination_under_an_exclusive_lock():
    a = small_repo()
    b = Repository.init(MemoryStorage(), "b")
    held = Lock(b.storage, exclusive=True).acquire()
    try:
        from backend.repository import RepositoryLocked

        with pytest.raises(RepositoryLocked):
            copy(a, b)
    finally:
        held.release()
    assert not list(b.storage.list("snapshots")) and not list(b.storage.list("data"))
    assert copy(a, b).snapshots_copied == 2


def tree(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _bad_cases(tmp_path: Path) -> list[tuple[str, list[str], dict[str, str], str]]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    closed = f"s3://bucket/x?endpoint_url=http://127.0.0.1:{free_port()}"
    return [
        ("no source password", ["--from", str(src), "--to", str(dst)], {"KEEPSTONE_FROM_PASSWORD": ""},
         "source's password in $KEEPSTONE_FROM_PASSWORD"),
        ("wrong source password", ["--from", str(src), "--to", str(dst)], {"KEEPSTONE_FROM_PASSWORD": "no"},
         "does not open"),
        ("wrong destination password", ["--from", str(src), "--to", str(dst)],
         {"KEEPSTONE_REPO_PASSWORD": "no"}, "destination file://"),
        ("no destination without --init", ["--from", str(src), "--to", str(tmp_path / "none")], {},
         "add --init"),
        ("no source", ["--from", str(tmp_path / "none"), "--to", str(dst)], {}, "no repository"),
        ("same repository", ["--from", str(src), "--to", f"file://{src}"], {}, "same repository"),
        ("unknown project", ["--from", str(src), "--to", str(dst), "--project", "NOPE"], {},
         "no snapshots of project NOPE"),
        ("unreachable destination", ["--from", str(src), "--to", closed, "--init"], {}, "destination"),
        ("unknown storage", ["--from", str(src), "--to", "ftp://x/y"], {}, "unknown storage URL"),
    ]  # fmt: skip


def test_bad_input_is_one_line_and_changes_nothing(tmp_path, capsys, monkeypatch):
    small_repo(tmp_path / "src")
    Repository.init(LocalStorage(tmp_path / "dst"), "dst-pw")
    before = tree(tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for name, argv, env, message in _bad_cases(tmp_path):
        monkeypatch.setenv("KEEPSTONE_FROM_PASSWORD", SOURCE_PW)
        monkeypatch.setenv("KEEPSTONE_REPO_PASSWORD", "dst-pw")
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        code = keepstone_main(["copy", *argv])
        out = capsys.readouterr()
        assert code in (1, 2), (name, code, out)
        lines = out.err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (name, out.err)
        assert out.out == "", name
        # the snapshot lists differ only in lock files taken and released: compare without locks
        after = {k: v for k, v in tree(tmp_path).items() if "/locks/" not in f"/{k}"}
        assert after == {k: v for k, v in before.items() if "/locks/" not in f"/{k}"}, name
        assert not (tmp_path / "none").exists(), name
