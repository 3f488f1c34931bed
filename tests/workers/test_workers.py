"""Runs on real `keepstone worker` processes over a real broker, PostgreSQL as the database, the sandbox as
Jira: a run spread over two workers; a worker SIGKILLed in the middle of a project; cancel across workers;
one site's rate limit held by three workers at once."""

from __future__ import annotations

import time

import pytest
import redis
import requests

from backend import vault
from backend.repository import Repository
from backend.storage.local import LocalStorage
from tests.conftest import start_sandbox
from tests.workers.conftest import TENANT, Cluster, broker_url, wait_for

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


@pytest.mark.parametrize("pool", ["threads", pytest.param("prefork", marks=pytest.mark.slow)])
def test_a_run_across_two_workers_commits_one_snapshot_a_project(cluster_factory, pool):
    with start_sandbox(
        projects=4, issues_per_project=12, seed=5, latency_ms=20, attachment_share=0.0
    ) as site:
        c = cluster_factory(site.url, "redis")
        workers = c.start_workers(2, pool=pool)
        run_id = c.start_run()
        done = finished(c, run_id)
    assert done["state"] == "succeeded", (done, c.logs(run_id))
    assert len(done["projects"]) == 4 and all(p["status"] == "ok" for p in done["projects"]), done
    snaps = snapshots_of_run(c, run_id)
    assert sorted(s.id for s in snaps) == sorted(p["snapshot_id"] for p in done["projects"])
    assert {s.project for s in snaps} == {p["project"] for p in done["projects"]}
    assert all(i.done and i.attempts == 1 for i in c.items())
    if pool == "threads":  # (prefork: the pool's child processes hold the leases)
        assert pids(c) == {str(w.proc.pid) for w in workers}, "both workers backed projects up"
    assert done["progress"]["projects_done"] == 4, done
    # The run's traffic, summed from each project task's meter on whichever worker it ran
    meters = done["progress"]["meters"]
    assert set(meters) == {p["project"] for p in done["projects"]}
    assert done["progress"]["requests"] == sum(m["requests"] for m in meters.values()) > 0


def _item(c: Cluster, project: str):
    return next(i for i in c.items() if i.project == project)


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_worker_killed_mid_project_is_redelivered_and_the_snapshot_committed_once(cluster_factory, broker):
    with start_sandbox(
        projects=2, issues_per_project=40, seed=6, latency_ms=120, attachment_share=0.0
    ) as site:
        c = cluster_factory(
            site.url, broker, KEEPSTONE_VISIBILITY_TIMEOUT="6", KEEPSTONE_WORK_LEASE_SECONDS="4"
        )
        workers = c.start_workers(2)
        run_id = c.start_run()
        busy = wait_for(
            lambda: [i for i in c.items() if i.holder and not i.done], 60, "a project in progress"
        )
        victim_item = busy[0]
        victim = next(w for w in workers if str(w.proc.pid) == victim_item.holder.split(":")[1])
        time.sleep(0.8)  # well inside the project (it takes seconds at 120 ms a request)
        assert not _item(c, victim_item.project).done
        victim.kill()
        done = finished(c, run_id, timeout=90)
        assert done["state"] == "succeeded", (done, c.logs(run_id))
        again = _item(c, victim_item.project)
        assert again.done and again.attempts == 2, again.__dict__
        survivor = next(w for w in workers if w is not victim)
        assert again.holder.split(":")[1] == str(survivor.proc.pid)
        snaps = snapshots_of_run(c, run_id)
        assert sorted(s.project for s in snaps) == sorted(p["project"] for p in done["projects"]), snaps
        assert {s.id for s in snaps} == {p["snapshot_id"] for p in done["projects"]}
        assert next(s for s in snaps if s.project == victim_item.project).meta["attempt"] == 2

        # Killed between the repository's commit and the marker: the next delivery finds the snapshot,
        # records it and writes none; a stray snapshot of the run (an abandoned attempt's) goes at the end.
        from sqlalchemy import update

        from backend.db.models import ProjectRun, Run, WorkItem, WorkRun
        from backend.workers.executor import CeleryRunExecutor

        other = next(p["project"] for p in done["projects"] if p["project"] != victim_item.project)
        kept = next(s for s in snaps if s.project == victim_item.project)
        password = vault.repository_password(c.backend.config.secret_key, TENANT)
        repo = Repository.open(LocalStorage(c.backend.config.data_dir / "repositories" / TENANT), password)
        with repo.lock():
            w = repo.start_snapshot(other, site.url, meta={**kept.meta, "attempt": 7})
            stray = w.commit()
        with c.db.session() as s:
            run_pk = s.query(Run.id).filter(Run.public_id == run_id).scalar()
            s.execute(
                update(WorkItem)
                .where(WorkItem.run_id == run_pk, WorkItem.project == victim_item.project)
                .values(done=False, snapshot_id=None, holder="", lease_until=None)
            )
            s.execute(
                update(ProjectRun)
                .where(ProjectRun.run_id == run_pk, ProjectRun.project == victim_item.project)
                .values(status="queued", snapshot_id=None)
            )
            s.execute(update(WorkRun).where(WorkRun.run_id == run_pk).values(concluded=None))
            s.execute(update(Run).where(Run.id == run_pk).values(state="running", finished=None))
            s.commit()
        CeleryRunExecutor(c.env["KEEPSTONE_BROKER_URL"]).send(
            "keepstone.run.project", run_pk, victim_item.project
        )
        redone = finished(c, run_id, timeout=60)
    assert redone["state"] == "succeeded", (redone, c.logs(run_id))
    assert {p["snapshot_id"] for p in redone["projects"]} == {s.id for s in snaps}
    assert _item(c, victim_item.project).attempts == 3
    after = snapshots_of_run(c, run_id)
    assert {s.id for s in after} == {s.id for s in snaps} and stray not in {s.id for s in after}
    logs = c.logs(run_id)
    assert any(f"found the snapshot {kept.id[:12]}" in m for m in logs), logs
    assert any(f"removed the snapshot {stray[:12]} of an abandoned attempt (attempt 7)" in m for m in logs), (
        logs
    )


def test_cancel_reaches_the_project_tasks_on_every_worker(cluster_factory):
    with start_sandbox(
        projects=6, issues_per_project=60, seed=8, latency_ms=150, attachment_share=0.0
    ) as site:
        c = cluster_factory(site.url, "redis")
        workers = c.start_workers(2)
        run_id = c.start_run()
        wait_for(lambda: len(pids(c)) == 2, 60, "a project on each worker")
        t = time.monotonic()
        r = c.backend.call("POST", f"/api/v1/runs/{run_id}/cancel", TENANT)
        assert r.status_code in (200, 202), r.text
        done = finished(c, run_id, timeout=60)
        took = time.monotonic() - t
    assert done["state"] == "cancelled", (done, c.logs(run_id))
    assert took < 15, took  # the heartbeat (every 5 s at most) and the progress writes carry the cancel
    statuses = [p["status"] for p in done["projects"]]
    assert statuses.count("cancelled") >= 4, done  # the two in progress and the ones never started
    snaps = snapshots_of_run(c, run_id)
    assert {s.id for s in snaps} == {p["snapshot_id"] for p in done["projects"] if p["snapshot_id"]}
    assert all(w.proc.poll() is None for w in workers)
    logs = c.logs(run_id)
    assert any("rotation not applied: the run cancelled" in m for m in logs), logs


@pytest.mark.pacing  # (the 429 share on the real clock: run alone, after the parallel suite)
def test_one_sites_limit_holds_across_three_workers(cluster_factory):
    """Three workers (two project tasks each) back up one site limited to 15 requests a second: they pace
    on the site's one Redis budget, so Jira answers 429 to at most 1% of the requests."""
    with start_sandbox(
        projects=6, issues_per_project=40, seed=9, latency_ms=20, rate_limit=15, attachment_share=0.0
    ) as site:
        c = cluster_factory(site.url, "rabbitmq")
        c.start_workers(3, concurrency=2)
        requests.post(f"{site.url}/_sandbox/stats/reset", timeout=10).raise_for_status()
        run_id = c.start_run()
        done = finished(c, run_id, timeout=180)
        totals = requests.get(f"{site.url}/_sandbox/stats", timeout=10).json()["totals"]
    assert done["state"] == "succeeded", (done, c.logs(run_id))
    assert len(pids(c)) == 3, "every worker took part"
    assert totals["requests"] >= 60, totals
    assert totals["rate_limited"] <= 0.01 * totals["requests"], totals


def test_healthz_says_whether_the_database_and_the_broker_answer(tmp_path, issuer):
    from tests.backend.conftest import make_backend, stop_backend

    ok = make_backend(tmp_path / "a", issuer, executor="celery", broker_url=broker_url("redis"))
    down = make_backend(tmp_path / "b", issuer, executor="celery", broker_url="redis://127.0.0.1:1/0")
    try:
        r = requests.get(f"{ok.url}/healthz", timeout=10)
        assert (r.status_code, r.json()) == (200, {"status": "ok", "database": "ok", "broker": "ok"})
        r = requests.get(f"{down.url}/healthz", timeout=20)
        assert r.status_code == 503 and r.json()["broker"].startswith("unavailable"), r.text
        assert r.json()["database"] == "ok"
    finally:
        stop_backend(ok)
        stop_backend(down)


def test_a_run_the_broker_cannot_take_ends_failed_with_the_reason(tmp_path, issuer, sandbox_site):
    from tests.backend.conftest import make_backend, stop_backend
    from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN

    b = make_backend(tmp_path, issuer, executor="celery", broker_url="redis://127.0.0.1:1/0")
    try:
        b.install(TENANT, sandbox_site.url)
        body = {"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN}
        assert b.call("PUT", f"/api/v1/organisations/{TENANT}/account", TENANT, json=body).status_code == 200
        r = b.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={})
        assert r.status_code == 202, r.text
        run = b.call("GET", f"/api/v1/runs/{r.json()['id']}", TENANT).json()
        assert run["state"] == "failed" and "could not be queued" in run["error"], run
        again = b.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={})
        assert again.status_code == 202, "the failed run does not block the plan"
    finally:
        stop_backend(b)


def test_a_run_cancelled_before_its_start_task_ends_cancelled_and_sends_nothing(
    tmp_path, issuer, sandbox_site
):
    from backend.db.models import Run
    from backend.workers import steps
    from tests.backend.conftest import make_backend, stop_backend
    from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN

    queue = f"keepstone-test-unread-{time.monotonic_ns()}"  # nobody takes it: the step runs here
    b = make_backend(tmp_path, issuer, executor="celery", broker_url=broker_url("redis"))
    try:
        b.install(TENANT, sandbox_site.url)
        body = {"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN}
        assert b.call("PUT", f"/api/v1/organisations/{TENANT}/account", TENANT, json=body).status_code == 200
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("KEEPSTONE_QUEUE", queue)
            started = b.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={}).json()
        assert b.call("POST", f"/api/v1/runs/{started['id']}/cancel", TENANT).status_code in (200, 202)
        svc = b.app.extensions["keepstone"]
        with svc.db.session() as s:
            run_pk = s.query(Run.id).filter(Run.public_id == started["id"]).scalar()
        sent: list = []
        steps.start(svc.runs, lambda *a: sent.append(a), run_pk)
        run = b.call("GET", f"/api/v1/runs/{started['id']}", TENANT).json()
        assert run["state"] == "cancelled" and run["projects"] == [] and sent == [], (run, sent)
        redis.Redis.from_url(broker_url("redis")).delete(queue)
    finally:
        stop_backend(b)


def test_a_restore_on_a_worker_killed_mid_way_is_resumed_by_another_from_its_journal(cluster_factory):
    """A restore started from the UI runs on a worker; SIGKILLed part way, its task is delivered again to
    the other worker, which resumes from the journal in the database: every issue exactly once."""
    from backend.db.models import CatalogSnapshot, Organisation, RestoreJob, RestoreStep
    from backend.jira import JiraClient, JiraCredentials
    from backend.restore.plan import RestoreRequest
    from backend.restores import RestoreService
    from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN

    with start_sandbox(
        projects=1, issues_per_project=40, seed=3, latency_ms=60, attachment_share=0.0
    ) as site:
        c = cluster_factory(site.url, "redis", KEEPSTONE_VISIBILITY_TIMEOUT="5")
        c.start_workers(1)
        assert finished(c, c.start_run())["state"] in ("succeeded", "warning")
        with c.db.session() as s:
            org_id = s.query(Organisation.id).filter(Organisation.cloud_id == TENANT).scalar()
            snap = s.query(CatalogSnapshot).one()
        request = RestoreRequest(
            snap.snapshot_id, None, True, {}, "new", "PLATW", "Restored by a worker", {"issues"}
        )
        service = RestoreService(
            c.backend.config, c.db, send=c.backend.app.extensions["keepstone"].runs.executor.send
        )
        public_id = service.start(org_id, snap, request, "test")
        with c.db.session() as s:
            job_id = s.query(RestoreJob.id).filter(RestoreJob.public_id == public_id).scalar()

        def steps_done() -> int:
            with c.db.session() as s:
                return (
                    s.query(RestoreStep)
                    .filter(RestoreStep.job_id == job_id, RestoreStep.state == "done")
                    .count()
                )

        wait_for(lambda: steps_done() >= 5, 60, "the first worker restoring")
        c.workers[0].kill()
        assert _job(c, job_id).state == "running" and steps_done() < 40  # killed part way
        c.start_workers(1)
        job = wait_for(
            lambda: (j := _job(c, job_id)).state not in ("queued", "running") and j,
            120,
            "the resumed restore",
        )
        assert job.state == "succeeded", job.error
        client = JiraClient(JiraCredentials(site.url, ADMIN_EMAIL, ADMIN_TOKEN))
        keys = [i["key"] for i in client.search_jql("project = PLATW", ["summary"], page_size=100)]
        assert len(keys) == len(set(keys)) == snap.issues == len(job.result["mapping"])


def _job(c: Cluster, job_id: int):
    from backend.db.models import RestoreJob

    with c.db.session() as s:
        return s.get(RestoreJob, job_id)
