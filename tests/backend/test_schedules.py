"""Schedules with real schedulers: once per slot across two processes, misfire policy after downtime."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import requests
from sqlalchemy import create_engine, func, select, text

from backend.db.models import Run
from backend.scheduler import current_slot, next_fire
from tests.backend.conftest import make_backend
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT, free_port

TENANT = "11111111-2222-4333-8444-555555555555"


def prepare(tmp_path, issuer, sandbox_url: str, hour: int | None = None) -> tuple[str, int]:
    """A database with a tenant, credentials and a plan scheduled for the current hour; return (url, plan id)."""
    backend = make_backend(tmp_path, issuer, scheduler=True)
    try:
        backend.install(TENANT, sandbox_url)
        backend.call(
            "PUT",
            f"/api/v1/organisations/{TENANT}/account",
            TENANT,
            json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
        ).raise_for_status()
        hour = datetime.now(UTC).hour if hour is None else hour
        plan = backend.call(
            "POST",
            f"/api/v1/organisations/{TENANT}/plans",
            TENANT,
            json={
                "name": "hourly",
                "schedule": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "hour": hour},
                "spec": {"projects": {"mode": "selected", "keys": ["PLAT"]}},
            },
        ).json()
        return backend.config.database_url, internal_plan_id(backend.config.database_url, plan["id"])
    finally:
        backend.app.extensions["keepstone"].scheduler.shutdown()
        backend.server.stop()
        backend.app.extensions["keepstone"].db.engine.dispose()


def internal_plan_id(database_url: str, public_id: str) -> int:
    """The plan's primary key (the scheduler's job id uses it; the API shows only the public id)."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            return conn.execute(
                text("SELECT id FROM plans WHERE public_id = :p"), {"p": public_id}
            ).scalar_one()
    finally:
        engine.dispose()


def put_job(database_url: str, plan_id: int, when: datetime) -> None:
    """Set the plan's next run time in the persistent job store, as downtime would leave it."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            row = conn.execute(
                text("SELECT job_state FROM apscheduler_jobs WHERE id = :id"), {"id": f"plan-{plan_id}"}
            ).one()
            state = pickle.loads(row.job_state)
            state["next_run_time"] = when
            conn.execute(
                text("UPDATE apscheduler_jobs SET job_state = :s, next_run_time = :t WHERE id = :id"),
                {
                    "s": pickle.dumps(state, pickle.HIGHEST_PROTOCOL),
                    "t": when.timestamp(),
                    "id": f"plan-{plan_id}",
                },
            )
    finally:
        engine.dispose()


def count_runs(database_url: str) -> int:
    from backend.db import Database

    db = Database(database_url)
    try:
        with db.session() as s:
            return s.scalar(select(func.count()).select_from(Run))
    finally:
        db.engine.dispose()


def test_current_slot_is_the_latest_scheduled_time():
    now = datetime(2026, 11, 23, 14, 25, tzinfo=UTC)
    schedule = {"days": ["mon", "wed"], "hour": 14}
    assert current_slot(schedule, "UTC", now, 3600) == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def test_a_due_plan_runs_once_with_two_backend_processes(tmp_path, issuer, sandbox_site):
    database_url, plan_id = prepare(tmp_path, issuer, sandbox_site.url)
    put_job(database_url, plan_id, datetime.now(UTC) + timedelta(seconds=6))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KEEPSTONE_DATABASE_URL": database_url,
        "KEEPSTONE_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "KEEPSTONE_DATA_DIR": str(tmp_path / "data"),
        "KEEPSTONE_CONNECTOR_JWKS_URL": issuer.jwks_url,
        "KEEPSTONE_SCHEDULER": "on",
    }
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "keepstone.cli", "backend", "--port", str(p)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    try:
        for port in ports:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    requests.get(f"http://127.0.0.1:{port}/login", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.2)
        time.sleep(12)  # the slot passes in both processes
        assert count_runs(database_url) == 1
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def test_a_run_missed_during_short_downtime_runs_once_at_start(tmp_path, issuer, sandbox_site):
    database_url, plan_id = prepare(tmp_path, issuer, sandbox_site.url)
    put_job(database_url, plan_id, datetime.now(UTC) - timedelta(minutes=10))  # within the one-hour grace
    backend = make_backend(tmp_path, issuer, database_url, scheduler=True)
    try:
        deadline = time.monotonic() + 20
        while count_runs(database_url) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        assert count_runs(database_url) == 1
    finally:
        backend.app.extensions["keepstone"].scheduler.shutdown()
        backend.server.stop()


def test_a_run_missed_beyond_the_grace_time_is_skipped(tmp_path, issuer, sandbox_site):
    missed = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    database_url, plan_id = prepare(tmp_path, issuer, sandbox_site.url, hour=missed.hour)
    put_job(database_url, plan_id, missed)  # the only slot since then is three hours old
    backend = make_backend(tmp_path, issuer, database_url, scheduler=True)
    try:
        time.sleep(3)
        assert count_runs(database_url) == 0
        job = backend.app.extensions["keepstone"].scheduler.next_run(plan_id)
        assert job is not None and job > datetime.now(UTC)  # the schedule moved on to the next slot
    finally:
        backend.app.extensions["keepstone"].scheduler.shutdown()
        backend.server.stop()


def test_a_scheduler_picks_up_plans_that_a_web_process_without_one_changed(tmp_path, issuer, sandbox_site):
    """The deployment of docs/operations.md: the web process (KEEPSTONE_SCHEDULER=off) writes plans and no
    jobs; the scheduler process reconciles its job store with the plans table every sync_seconds."""
    scheduler = make_backend(tmp_path, issuer, scheduler=True, scheduler_sync_seconds=1)
    web = make_backend(tmp_path, issuer, scheduler.config.database_url, scheduler=False)
    jobs = scheduler.app.extensions["keepstone"].scheduler
    try:
        web.install(TENANT, sandbox_site.url, time_zone="Europe/Berlin")
        plan = web.call(
            "POST",
            f"/api/v1/organisations/{TENANT}/plans",
            TENANT,
            json={"name": "nightly", "schedule": {"days": ["tue", "fri"], "hour": 3}},
        ).json()
        pk = internal_plan_id(scheduler.config.database_url, plan["id"])
        # The web process's own answer comes from the schedule (it has no job store to ask)
        answered = datetime.fromisoformat(plan["next_run_at"])
        assert answered == next_fire({"days": ["tue", "fri"], "hour": 3}, "Europe/Berlin")

        def next_run():
            want = datetime.fromisoformat(
                web.call("GET", f"/api/v1/plans/{plan['id']}", TENANT).json()["next_run_at"]
            )
            deadline = time.monotonic() + 10
            while jobs.next_run(pk) != want:
                assert time.monotonic() < deadline, (
                    f"the scheduler's job says {jobs.next_run(pk)}, the plan {want}"
                )
                time.sleep(0.2)
            return want

        first = next_run()
        assert first.astimezone(ZoneInfo("Europe/Berlin")).hour == 3
        r = web.call(
            "PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={"schedule": {"days": ["mon"], "hour": 22}}
        )
        assert r.status_code == 200, r.text
        moved = next_run()
        assert moved.astimezone(ZoneInfo("Europe/Berlin")).weekday() == 0 and moved != first
        assert (
            web.call("PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={"enabled": False}).status_code
            == 200
        )
        deadline = time.monotonic() + 10
        while jobs.next_run(pk) is not None:
            assert time.monotonic() < deadline, "the disabled plan's job is still there"
            time.sleep(0.2)
        assert jobs.reconcile() == 0  # nothing left to change: the store matches the plans
    finally:
        from backend.app import shutdown

        for b in (web, scheduler):
            b.server.stop()
            shutdown(b.app)
