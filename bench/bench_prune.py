"""Prune after a month of daily backups: 30 daily snapshots of a site that changes a few percent a day,
forgotten down to 7 (keep-daily 7), then a real `keepstone prune` process (default --max-unused 5%):

- bytes reclaimed (stored bytes of packs and index files before minus after; and of packs alone) vs the
  ideal: the sealed bytes of the blobs only forgotten snapshots referenced (target >= 0.95);
- bytes prune read and wrote vs the bytes of the packs it rewrote (the repacked packs read plus the new
  packs written, the least a repack can move; target <= 1.2);
- peak RSS of the prune process at 4x the repository size vs at 1x (target <= 1.3).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backend.repository import Entry, Repository
from backend.repository.retention import Policy, forget
from backend.storage.local import LocalStorage
from bench.bench_backup import _peak_rss_kib

PASSWORD = "bench-prune"
ROOT = Path(__file__).resolve().parents[1]
WORDS = [
    "sprint", "deploy", "backlog", "customer", "invoice", "login", "timeout", "regression", "payment",
    "dashboard", "mobile", "release", "database", "migration", "error", "report", "search", "export",
]  # fmt: skip


def _issue(rng: random.Random, key: str, version: int) -> dict[str, object]:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(150, 450)))
    return {"key": key, "version": version, "summary": text[:80], "description": text, "n": rng.random()}


def _build(folder: Path, issues: int, days: int, seed: int) -> dict[str, object]:
    """`days` daily snapshots; each day 3% of issues change, 1% are new, 0.5% are deleted (with their
    attachments), and new issues carry a 64 KiB attachment one time in ten."""
    repo = Repository.init(LocalStorage(folder), PASSWORD)
    rng = random.Random(seed)
    live: dict[str, Entry] = {}
    next_key = 0
    start = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
    for day in range(days):
        w = repo.start_snapshot("PLAT", "https://acme.example", time=start + timedelta(days=day))
        names = sorted(k for k in live if k.startswith("issues/"))
        if day:
            for name in rng.sample(names, int(0.005 * len(names))):
                key = name.removeprefix("issues/")
                for other in [k for k in live if k == name or k.startswith(f"attachments/{key}/")]:
                    del live[other]
            names = sorted(k for k in live if k.startswith("issues/"))
        changed = set(rng.sample(names, int(0.03 * len(names)))) if day else set()
        new = issues if day == 0 else max(1, issues // 100)
        out: dict[str, Entry] = {}
        for name, entry in live.items():
            if name in changed:
                key = name.removeprefix("issues/")
                out[name] = w.add_json(name, _issue(rng, key, day), "issue")
            else:
                out[name] = w.carry(name, entry)
        for _ in range(new):
            key = f"PLAT-{next_key}"
            next_key += 1
            out[f"issues/{key}"] = w.add_json(f"issues/{key}", _issue(rng, key, day), "issue")
            if rng.random() < 0.1:
                name = f"attachments/{key}/{next_key}"
                out[name] = w.add_bytes(name, rng.randbytes(64 * 1024), "attachment")
        w.commit()
        live = out
    return {"snapshots": days, "issues_at_the_end": sum(1 for k in live if k.startswith("issues/"))}


def _stored_bytes(folder: Path, kinds: tuple[str, ...] = ("data", "index")) -> int:
    return sum(p.stat().st_size for kind in kinds for p in (folder / kind).rglob("*") if p.is_file())


def _ideal(repo: Repository, forgotten: list[str]) -> int:
    """Sealed bytes of the blobs that only the forgotten snapshots reference."""

    def blobs(snapshot_id: str) -> set[str]:
        snapshot = repo.snapshot(snapshot_id)
        return {b for e in snapshot.iter_entries() for b in e.blobs} | set(snapshot.trees)

    gone: set[str] = set()
    for snapshot_id in forgotten:
        gone |= blobs(snapshot_id)
    for info in repo.snapshots():
        if info.id not in forgotten:
            gone -= blobs(info.id)
    return sum(where.length for blob in gone if (where := repo.index.get(blob)) is not None)


def _prune_process(folder: Path) -> tuple[dict[str, object], int]:
    env = {**os.environ, "KEEPSTONE_REPO_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "keepstone.cli", "prune", "--json", "--repo", f"file://{folder}"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = _peak_rss_kib(proc)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"keepstone prune failed: {err}")
    return json.loads(out), peak


def _one(issues: int, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "repo"
        t0 = time.perf_counter()
        built = _build(folder, issues, 30, seed)
        build_s = time.perf_counter() - t0
        repo = Repository.open(LocalStorage(folder), PASSWORD)
        infos = {s.id for s in repo.snapshots()}
        plan = forget(repo, Policy.from_dict({"scheme": "gfs", "keep_daily": 7}), UTC, dry_run=True)
        forgotten = [v.id for v in plan.forgotten]
        ideal = _ideal(repo, forgotten)
        forget(repo, Policy.from_dict({"scheme": "gfs", "keep_daily": 7}), UTC)
        assert len(infos) - len(forgotten) == 7
        before, data_before = _stored_bytes(folder), _stored_bytes(folder, ("data",))
        t0 = time.perf_counter()
        result, rss = _prune_process(folder)
        prune_s = time.perf_counter() - t0
        after, data_after = _stored_bytes(folder), _stored_bytes(folder, ("data",))
        check = Repository.open(LocalStorage(folder), PASSWORD).check(read_data=True)
        assert check.ok and not check.warnings, (check.errors, check.warnings)
        rewritten = int(result["bytes_repacked"]) + int(result["bytes_new_packs"])
        moved = int(result["bytes_read"]) + int(result["bytes_written"])
        return {
            **built,
            "build_seconds": round(build_s, 1),
            "prune_seconds": round(prune_s, 2),
            "stored_bytes_before": before,
            "stored_bytes_after": after,
            "ideal_bytes": ideal,
            "reclaimed_bytes": before - after,
            "reclaimed_vs_ideal": round((before - after) / ideal, 3) if ideal else None,
            "reclaimed_pack_bytes": data_before - data_after,  # packs only (no index files)
            "reclaimed_pack_bytes_vs_ideal": round((data_before - data_after) / ideal, 3) if ideal else None,
            "packs_before": result["packs_before"],
            "packs_deleted": result["packs_deleted"],
            "packs_repacked": result["packs_repacked"],
            "bytes_read": result["bytes_read"],
            "bytes_written": result["bytes_written"],
            "bytes_of_rewritten_packs": rewritten,
            "read_written_vs_rewritten": round(moved / rewritten, 3) if rewritten else None,
            "peak_rss_kib": rss,
        }


def run(quick: bool) -> dict[str, object]:
    base = 400 if quick else 3000
    small = _one(base, seed=5)
    large = _one(4 * base, seed=6)
    out: dict[str, object] = {f"1x_{k}": v for k, v in small.items()}
    out |= {f"4x_{k}": v for k, v in large.items()}
    out["peak_rss_4x_vs_1x"] = round(int(large["peak_rss_kib"]) / int(small["peak_rss_kib"]), 3)
    return out


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
