"""SIGKILL a real `keepstone copy` process at deterministic points of its writes, then copy again.

The copy kills itself (SIGKILL) before its N+1-th save or removal in the destination when
KEEPSTONE_TEST_COPY_KILL_AFTER=N is set (backend/repository/copy.py). After each kill the destination
checks clean (`check --read-data`), and the next copy finishes the job without writing again any blob an
index of the destination already lists, and ends with exactly what an uninterrupted copy leaves.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from backend.repository import Repository
from backend.repository.copy import KILL_ENV, copy
from backend.storage.local import LocalStorage
from tests.repository.test_copy import contents

ROOT = Path(__file__).resolve().parents[2]
SRC_PW, DST_PW = "kill-source", "kill-destination"


def build(folder: Path) -> Repository:
    """Three snapshots of two projects in small packs (many write points), the second incremental."""
    repo = Repository.init(LocalStorage(folder), SRC_PW, pack_size=6 * 1024)
    items = {f"issues/ABC-{i}": bytes([i]) * 1800 + os.urandom(200) for i in range(12)}
    parent = None
    for day in range(2):
        items[f"issues/ABC-{day}"] = os.urandom(2000)
        w = repo.start_snapshot("ABC", "https://acme.example", parent=parent)
        for name, data in items.items():
            w.add_bytes(name, data, "issue")
        parent = w.commit()
    w = repo.start_snapshot("OPS", "https://acme.example")
    for i in range(6):
        w.add_bytes(f"issues/OPS-{i}", os.urandom(2500), "issue")
    w.commit()
    return repo


def run_copy(src: Path, dst: Path, kill_after: int | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEEPSTONE_FROM_PASSWORD": SRC_PW, "KEEPSTONE_REPO_PASSWORD": DST_PW}
    env["PYTHONPATH"] = str(ROOT)
    env.pop(KILL_ENV, None)
    if kill_after is not None:
        env[KILL_ENV] = str(kill_after)
    command = [
        sys.executable,
        "-m",
        "keepstone.cli",
        "copy",
        "--from",
        f"file://{src}",
        "--to",
        f"file://{dst}",
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def indexed(folder: Path) -> set[str]:
    return {blob for blob, _ in Repository.open(LocalStorage(folder), DST_PW).index.items()}


def test_a_copy_killed_at_any_of_its_writes_leaves_a_valid_destination_and_the_next_copy_finishes(tmp_path):
    source = build(tmp_path / "src")
    template = tmp_path / "template"
    Repository.init(LocalStorage(template), DST_PW, pack_size=6 * 1024)
    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    done = copy(source, Repository.open(LocalStorage(reference), DST_PW))
    assert done.snapshots_copied == 3 and done.storage_writes > 12, done
    want = indexed(reference)
    want_contents = contents(Repository.open(LocalStorage(reference), DST_PW))
    assert want_contents == contents(source)
    writes = done.storage_writes
    # the first lock write, inside the first snapshot's packs, around each index and snapshot file, the end
    points = sorted({0, 1, 2, 4, writes // 3, writes // 2, (2 * writes) // 3, writes - 3, writes - 1})
    for n in points:
        folder = tmp_path / f"kill-{n}"
        shutil.copytree(template, folder)
        killed = run_copy(tmp_path / "src", folder, n)
        assert killed.returncode == -signal.SIGKILL, (n, killed.returncode, killed.stderr)
        after = Repository.open(LocalStorage(folder), DST_PW)
        check = after.check(read_data=True)
        assert check.ok, (n, check.errors)
        there = indexed(folder)
        resumed = copy(source, Repository.open(LocalStorage(folder), DST_PW))
        final = indexed(folder)
        assert final == want, n  # the same blobs as an uninterrupted copy (the keys are the template's)
        assert resumed.blobs_copied == len(final - there), n  # nothing an index listed was written again
        assert resumed.snapshots_copied + resumed.snapshots_skipped == 3, n
        assert contents(Repository.open(LocalStorage(folder), DST_PW)) == want_contents, n
        assert Repository.open(LocalStorage(folder), DST_PW).check(read_data=True).ok, n
        shutil.rmtree(folder)
    # past the last write the process completes: the count covers every write
    folder = tmp_path / "past-the-end"
    shutil.copytree(template, folder)
    assert run_copy(tmp_path / "src", folder, writes).returncode == 0
    assert indexed(folder) == want
