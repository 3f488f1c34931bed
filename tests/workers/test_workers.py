"""Runs on real `keepstone worker` processes over a real broker, PostgreSQL as the database, the sandbox as
Jira: a run spread over two workers; a worker SIGKILLed in the middle of a project; cancel across workers;
one site's rate limit held by three workers at once."""

from __future__ import annotations

import time

import pytest
import requests

from backend import vault
from backend.repository import Repository
from backend.storage.local import LocalStorage
from tests.conftest import start_sandbox
from tests.workers.conftest import TENANT, Cluster, wait_for

pytestmark = [pytest.mark.celery, pytest.mark.postgres]


def finished(c: Cluster, run_id: str, timeout: float = 60) -> dict:
    return wait_for(
        lambda: (r := c.run(run_id))["state"] not in ("queued", "running") and r, timeout, f"run {run_id}"
    )


def snapshots_of_run(c: Cluster, run_id: str) -> list:
    password = vault.repository_password(c.backend.config.secret_key, TENANT)
    root = c.backend.config.data_dir / "repositories" / TENANT
    repo = Repository.open(LocalStorage(root), password)
    return [s for s in repo.snapshots() if s.meta.get("run") == run_id]


def pids(c: Cluster) -> set[str]:
    return {item.holder.split(":")[1] for item in c.items() if item.holder}


def test_a_run_across_two_workers_commits_one_snapshot_a_project(cluster_factory):
    with start_sandbox(projects=4, issues_per_project=12, seed=5, latency_ms=20, attachment_share=0.0) as site:
        c = cluster_factory(site.url, "redis")
        workers = c.start_workers(2)
        run_id = c.start_run()
        done = finished(c, run_id)
    assert done["state"] == "succeeded", (done, c.logs(run_id))
    assert len(done["projects"]) == 4 and all(p["status"] == "ok" for p in done["projects"]), done
    snaps = snapshots_of_run(c, run_id)
    assert sorted(s.id for s in snaps) == sorted(p["snapshot_id"] for p in done["projects"])
    assert {s.project for s in snaps} == {p["project"] for p in done["projects"]}
    assert all(i.done and i.attempts == 1 for i in c.items())
    assert pids(c) == {str(w.proc.pid) for w in workers}, "both workers backed projects up"
    assert done["progress"]["projects_done"] == 4, done
