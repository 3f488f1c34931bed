"""SIGKILL a real `keepstone prune` process before each of its storage writes and removals.

The prune process kills itself (SIGKILL, nothing runs after it) after N writes or removals, before the
next one, when KEEPSTONE_TEST_PRUNE_KILL_AFTER=N is set (backend/repository/prune.py), so every point of
the write order is hit exactly. (Points inside one save are not hit: a local save is a temp file and a
rename, and a killed one leaves only a `.tmp-` file that listings skip.) After each kill: `keepstone check --read-data` passes, every kept snapshot reads
back byte for byte, and the next prune completes and leaves exactly what an uninterrupted prune leaves.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backend.repository import Repository
from backend.repository.prune import KILL_ENV
from backend.storage.local import LocalStorage
from keepstone.cli import main as keepstone_main

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "prune-crash"


def build(folder: Path, days: int, seed: int) -> tuple[list[str], dict[str, dict[str, bytes]]]:
    """`days` snapshots (small packs: many objects), the first ones forgotten; the kept ids and contents."""
    repo = Repository.init(LocalStorage(folder), PASSWORD, pack_size=12 * 1024)
    rng = random.Random(seed)
    shared = {f"issues/ABC-{i}": rng.randbytes(2500) for i in range(16)}
    ids, contents = [], {}
    for day in range(days):
        shared |= {f"issues/ABC-{i}": rng.randbytes(2500) for i in range(day % 3)}  # a few change
        items = {}
        for i in range(16):  # interleaved, so packs mix items that stay needed and items forgotten
            items[f"issues/ABC-{i}"] = shared[f"issues/ABC-{i}"]
            items[f"issues/ABC-{100 * (day + 1) + i}"] = rng.randbytes(2500)
        w = repo.start_snapshot("ABC", "https://acme.example")
        for name, data in items.items():
            w.add_bytes(name, data, "issue")
        ids.append(w.commit())
        contents[ids[-1]] = items
    kept = ids[-2:]
    for snapshot_id in ids[:-2]:
        repo.forget(snapshot_id)
    LocalStorage(folder).save("data", "cd" * 32, b"a pack left by a killed backup")
    return kept, {i: contents[i] for i in kept}


def listed(folder: Path) -> set[str]:
    return {blob for blob, _ in Repository.open(LocalStorage(folder), PASSWORD).index.items()}


def run_prune(folder: Path, max_unused: str, kill_after: int | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEEPSTONE_REPO_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    env.pop(KILL_ENV, None)
    if kill_after is not None:
        env[KILL_ENV] = str(kill_after)
    command = [sys.executable, "-m", "keepstone.cli", "prune", "--repo", f"file://{folder}"]
    return subprocess.run(
        [*command, "--max-unused", max_unused], env=env, capture_output=True, text=True, timeout=60
    )


def kill_everywhere(
    tmp_path: Path, capsys, monkeypatch, days: int, max_unused: str, points: int | None
) -> int:
    template = tmp_path / "template"
    kept, contents = build(template, days, seed=days)
    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    done = run_prune(reference, max_unused, None)
    assert done.returncode == 0, done.stderr
    want = listed(reference)
    threshold = float(max_unused.rstrip("%")) / 100
    plan = Repository.open(LocalStorage(reference), PASSWORD).prune(threshold, dry_run=True)
    assert not plan.changed  # the reference is fully pruned
    # how many writes and removals an uninterrupted prune makes, counted by running it with the hook far off
    probe = tmp_path / "probe"
    shutil.copytree(template, probe)
    result = Repository.open(LocalStorage(probe), PASSWORD).prune(threshold)
    writes = (
        result.packs_written
        + result.index_files_written
        + result.index_files_removed
        + result.packs_deleted
        + result.packs_repacked
        + result.packs_unindexed
    )
    chosen = (
        list(range(writes))
        if points is None
        else sorted({round(i * (writes - 1) / (points - 1)) for i in range(points)})
    )
    monkeypatch.setenv("KEEPSTONE_REPO_PASSWORD", PASSWORD)
    for n in chosen:
        folder = tmp_path / f"kill-{n}"
        shutil.copytree(template, folder)
        killed = run_prune(folder, max_unused, n)
        assert killed.returncode == -signal.SIGKILL, (n, killed.returncode, killed.stderr)
        capsys.readouterr()
        assert keepstone_main(["check", "--read-data", "--repo", f"file://{folder}"]) == 0, (
            n,
            capsys.readouterr(),
        )
        assert "no errors: 2 snapshots" in capsys.readouterr().out
        after = Repository.open(LocalStorage(folder), PASSWORD)
        for snapshot_id in kept:
            entries = after.snapshot(snapshot_id).iter_entries()
            assert {e.name: after.read_bytes(e) for e in entries} == contents[snapshot_id], n
        assert after.prune(threshold).changed, n  # the next prune (in this process) finishes the job
        assert listed(folder) == want, n  # the same end state as a prune never interrupted
        check = Repository.open(LocalStorage(folder), PASSWORD).check(read_data=True)
        assert check.ok and not check.warnings, (n, check.errors, check.warnings)
        shutil.rmtree(folder)
    # with the hook past the last write the process completes: the count above covers every write
    folder = tmp_path / "past-the-end"
    shutil.copytree(template, folder)
    assert run_prune(folder, max_unused, writes).returncode == 0
    assert listed(folder) == want
    return len(chosen)


def test_sigkill_before_12_of_the_30_writes_of_a_prune_loses_nothing_and_the_next_prune_completes(
    tmp_path, capsys, monkeypatch
):
    # 3 new packs, 1 index file, 6 old index files removed, 20 packs removed: 12 kills spread over the
    # 30 writes reach each kind (0, 3, 5, 8, 11, ... 29); the slow tests below kill before every write
    assert kill_everywhere(tmp_path, capsys, monkeypatch, days=6, max_unused="0%", points=12) == 12


@pytest.mark.slow
@pytest.mark.parametrize("max_unused", ["0%", "5%", "100%"])
def test_sigkill_before_every_write_of_a_prune(tmp_path, capsys, monkeypatch, max_unused):
    assert kill_everywhere(tmp_path, capsys, monkeypatch, days=10, max_unused=max_unused, points=None) >= 20
