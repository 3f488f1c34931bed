"""Restore speed against a rate-limited, latent sandbox: issues restored per second, requests per issue,
and the share of the allowed rate the restore keeps busy (the rate is the physical limit of a restore)."""

from __future__ import annotations

import tempfile
import time

import requests

from backend.backup import BackupSpec, run_backup
from backend.jira import JiraClient, JiraCredentials
from backend.repository import Repository
from backend.restore.execute import Restorer
from backend.restore.journal import Journal
from backend.restore.plan import RestoreRequest, build_plan
from backend.storage import open_storage
from keepstone.servers import serve_in_thread
from sandbox.app import create_app
from sandbox.config import SandboxConfig

AUTH = ("admin@example.com", "sandbox-admin-token")


def run(quick: bool) -> dict[str, object]:
    issues = 150 if quick else 1000
    rate = 100 if quick else 50
    config = SandboxConfig(
        projects=1,
        issues_per_project=issues,
        seed=31,
        latency_ms=20,
        rate_limit=rate,
        burst=rate,
        corrupt_share=0.0,
        attachment_share=0.1,
        attachment_max_bytes=100_000,
    )
    with serve_in_thread(create_app(config)) as site, tempfile.TemporaryDirectory() as tmp:
        repo = Repository.init(open_storage(f"file://{tmp}/repo"), "pw")
        backup = run_backup(JiraClient(JiraCredentials(site.url, *AUTH)), repo, BackupSpec.from_dict({}))
        requests.post(f"{site.url}/_sandbox/delete", json={"project": "PLAT"}, timeout=30).raise_for_status()
        plan = build_plan(
            repo,
            RestoreRequest(
                backup.projects[0].snapshot_id, whole_project=True, target="new", target_key="BACK"
            ),
        )
        client = JiraClient(JiraCredentials(site.url, *AUTH))
        started = time.perf_counter()
        result = Restorer(client, repo, plan, Journal(f"{tmp}/journal.sqlite"), workers=8).run()
        seconds = time.perf_counter() - started
    restored = result.created.get("issues", 0)
    return {
        "issues": issues,
        "rate_limit_per_s": rate,
        "latency_ms": 20,
        "status": result.status,
        "issues_restored": restored,
        "items_created": dict(result.created),
        "seconds": round(seconds, 1),
        "issues_per_second": round(restored / seconds, 2),
        "requests": result.requests,
        "requests_per_issue": round(result.requests / max(1, restored), 2),
        "rate_busy_share": round(result.requests / seconds / rate, 3),
        "throttled_429s": client.stats.throttled,
    }
