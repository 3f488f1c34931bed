"""`keepstone prune` and `keepstone forget --prune` as real processes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from backend.repository import Repository
from backend.storage.local import LocalStorage
from tests.backup.test_cli_errors import PASSWORD, fingerprint, keepstone


def history(folder: Path, days: int = 4) -> tuple[str, list[str]]:
    """`days` daily snapshots of ABC, each with 15 new incompressible issues and 15 shared ones."""
    repo = Repository.init(LocalStorage(folder), PASSWORD, pack_size=32 * 1024)
    rng = random.Random(7)
    shared = {f"issues/ABC-{i}": rng.randbytes(4000) for i in range(15)}
    ids = []
    for day in range(days):
        w = repo.start_snapshot("ABC", "https://acme.example", time=None)
        for name, data in (
            shared | {f"issues/ABC-{100 + 20 * day + i}": rng.randbytes(4000) for i in range(15)}
        ).items():
            w.add_json(name, {"key": name, "body": data.hex()}, "issue")
        ids.append(w.commit())
    return f"file://{folder}", ids


BAD = [
    (["prune", "--max-unused", "120%"], "keepstone: --max-unused: '120%' is above 100%"),
    (["prune", "--max-unused", "-1"], "keepstone: --max-unused: '-1' is negative"),
    (["prune", "--max-unused", "abc"], "keepstone: --max-unused: 'abc' is not a percentage"),
    (["prune", "--max-unused=", "--dry-run"], "keepstone: --max-unused: '' is not a percentage"),
    (["prune", "--keep-last", "1"], "keepstone prune: unknown option or argument '--keep-last'"),
    (["forget", "--keep-last", "1", "--prune", "--max-unused", "abc"], "keepstone: --max-unused: 'abc'"),
]


@pytest.mark.parametrize("flags, message", BAD)
def test_bad_flags_are_one_clear_line_and_change_nothing(tmp_path, flags, message):
    url, _ = history(tmp_path / "repo", days=2)
    before = fingerprint(tmp_path / "repo")
    done = keepstone(*flags, "--repo", url)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr
    assert fingerprint(tmp_path / "repo") == before


def test_dry_run_says_what_prune_would_do_and_changes_nothing(tmp_path):
    url, ids = history(tmp_path / "repo")
    assert keepstone("forget", ids[0], ids[1], "--repo", url).returncode == 0
    before = fingerprint(tmp_path / "repo")
    done = keepstone("prune", "--dry-run", "--json", "--max-unused", "0%", "--repo", url)
    assert done.returncode == 0, done.stderr
    planned = json.loads(done.stdout)
    assert planned["dry_run"] and planned["packs_deleted"] > 0 and planned["bytes_reclaimed"] > 0
    assert fingerprint(tmp_path / "repo") == before
    text = keepstone("prune", "--dry-run", "--repo", url)
    assert text.returncode == 0 and text.stdout.startswith("dry run: 2 snapshots use")
    assert fingerprint(tmp_path / "repo") == before
    real = json.loads(keepstone("prune", "--json", "--max-unused", "0%", "--repo", url).stdout)
    assert (real["packs_deleted"], real["packs_repacked"]) == (
        planned["packs_deleted"],
        planned["packs_repacked"],
    )


def test_forget_with_prune_forgets_then_prunes_and_check_passes(tmp_path):
    url, _ = history(tmp_path / "repo")
    size = lambda: sum(p.stat().st_size for p in (tmp_path / "repo" / "data").rglob("*") if p.is_file())  # noqa: E731
    before = size()
    dry = keepstone("forget", "--keep-last", "1", "--prune", "--dry-run", "--json", "--repo", url)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)["prune"]
    assert planned["dry_run"] and planned["snapshots"] == 1 and planned["packs_deleted"] > 0
    assert size() == before
    done = keepstone("forget", "--keep-last", "1", "--prune", "--json", "--repo", url)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert len(out["removed"]) == 3 and not out["prune"]["dry_run"]
    assert out["prune"]["packs_deleted"] == planned["packs_deleted"]
    assert before - size() >= 0.6 * before  # three of four days of unique data are gone
    check = keepstone("check", "--read-data", "--repo", url)
    assert check.returncode == 0 and "no errors" in check.stdout and "warning" not in check.stdout
    shown = keepstone("show", "ABC-0", "--repo", url, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["key"] == "issues/ABC-0"
    again = keepstone("prune", "--json", "--repo", url)
    assert json.loads(again.stdout)["packs_deleted"] == 0 and json.loads(again.stdout)["bytes_written"] == 0


def test_forget_by_id_with_prune(tmp_path):
    url, ids = history(tmp_path / "repo", days=3)
    done = keepstone("forget", ids[0], "--prune", "--repo", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("forgot 1 snapshots")
    assert "2 snapshots use" in done.stdout.splitlines()[1]


def test_prune_while_a_backup_holds_the_lock_is_refused(tmp_path):
    url, ids = history(tmp_path / "repo", days=2)
    repo = Repository.open(LocalStorage(tmp_path / "repo"), PASSWORD)
    repo.forget(ids[0])
    with repo.lock():
        before = fingerprint(tmp_path / "repo")
        done = keepstone("prune", "--repo", url)
        assert fingerprint(tmp_path / "repo") == before
    assert done.returncode == 1
    assert (
        done.stderr.startswith("keepstone: the repository is locked") and "nothing was pruned" in done.stderr
    )
