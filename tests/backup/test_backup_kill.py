"""SIGKILL a real `keepstone backup` at random points: the next run completes and check passes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from backend.repository import Repository
from backend.storage import open_storage
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT, start_sandbox


def test_killed_backups_lose_no_snapshot_and_the_next_run_completes(tmp_path):
    env = {
        **os.environ,
        "KEEPSTONE_REPO_PASSWORD": "pw",
        "KEEPSTONE_JIRA_TOKEN": ADMIN_TOKEN,
        "PYTHONPATH": str(ROOT),
    }
    url = f"file://{tmp_path}/repo"
    rng = random.Random(42)
    with start_sandbox(projects=3, issues_per_project=80, seed=6, latency_ms=10, corrupt_share=0.0) as site:
        command = [
            sys.executable,
            "-m",
            "keepstone.cli",
            "backup",
            "--repo",
            url,
            "--init",
            "--site",
            site.url,
            "--email",
            ADMIN_EMAIL,
            "--full",
        ]
        kept: set[str] = set()
        for _ in range(3):
            proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(1.0, 4.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            if (tmp_path / "repo" / "config").exists():
                repo = Repository.open(open_storage(url), "pw")
                now = {s.id for s in repo.snapshots()}
                assert kept <= now  # a kill never takes away a committed snapshot
                kept = now
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stdout + final.stderr
        check = subprocess.run(
            [sys.executable, "-m", "keepstone.cli", "check", "--repo", url, "--read-data"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert check.returncode == 0, check.stdout
    assert "no errors" in check.stdout
    repo = Repository.open(open_storage(url), "pw")
    assert kept <= {s.id for s in repo.snapshots()}
    assert {s.project for s in repo.snapshots()} == {"PLAT", "MOB", "WEB"}
