"""SIGKILL a real `keepstone restore` mid-way, run it again: complete, and not one duplicate."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

import requests

from backend.backup import BackupSpec, run_backup
from backend.jira import JiraClient, JiraCredentials
from backend.repository import Repository
from backend.storage import open_storage
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT, start_sandbox


def test_killed_restore_resumes_without_duplicates(tmp_path):
    env = {
        **os.environ,
        "KEEPSTONE_REPO_PASSWORD": "pw",
        "KEEPSTONE_JIRA_TOKEN": ADMIN_TOKEN,
        "PYTHONPATH": str(ROOT),
    }
    with start_sandbox(projects=1, issues_per_project=60, seed=4, corrupt_share=0.0, latency_ms=15) as site:
        url = f"file://{tmp_path}/repo"
        repo = Repository.init(open_storage(url), "pw")
        client = JiraClient(JiraCredentials(site.url, ADMIN_EMAIL, ADMIN_TOKEN))
        snapshot = run_backup(client, repo, BackupSpec.from_dict({})).projects[0].snapshot_id
        requests.post(f"{site.url}/_sandbox/delete", json={"project": "PLAT"}, timeout=10).raise_for_status()
        command = [
            sys.executable,
            "-m",
            "keepstone.cli",
            "restore",
            "--repo",
            url,
            "--snapshot",
            snapshot,
            "--project",
            "--new-project",
            "BACK",
            "--site",
            site.url,
            "--email",
            ADMIN_EMAIL,
            "--journal",
            str(tmp_path / "journal.sqlite"),
        ]

        def restored() -> list[str]:
            projects = requests.get(f"{site.url}/_sandbox/site", timeout=10).json()["projects"]
            return next((p["issues"] for p in projects if p["key"] == "BACK"), [])

        for kill_after in (5, 25):  # issues created before the kill; each run gets further
            proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while len(restored()) < kill_after and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        assert 0 < len(restored()) < 60
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stdout + final.stderr

        keys = restored()
        assert len(keys) == 60
        labels = collections.Counter()
        comments_per_issue = {}
        for key in keys:
            issue = client.get_json(f"/rest/api/3/issue/{key}", fields="labels,comment")
            labels.update(x for x in issue["fields"]["labels"] if x.startswith("restored-from-"))
            comments_per_issue[key] = issue["fields"]["comment"]["total"]
        assert len(labels) == 60 and set(labels.values()) == {1}  # every original once, none twice
        snap = repo.snapshot(snapshot)
        backed_up = sum(len(repo.read_json(e)) for e in snap.iter_entries() if e.kind == "comment")
        assert sum(comments_per_issue.values()) == backed_up
