"""The panel's status tells the truth: protection across plans, last good backup vs last attempt, next run.

Histories are written into the database directly (runs at chosen times), then read over real HTTP through
the status route the connector calls; the real engine's runs are covered by test_api.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from backend.db.models import JiraAccount, Organisation, Plan, ProjectRun, Run
from backend.panel_status import UNSCHEDULED_PERIOD, plan_period

TENANT = "12121212-2222-4333-8444-555555555555"
DAILY = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "hour": 2}


def _db(backend):
    return backend.app.extensions["keepstone"].db


def _plan(s, org: Organisation, name: str, schedule: dict, enabled: bool = True) -> Plan:
    plan = s.scalar(select(Plan).where(Plan.organisation_id == org.id, Plan.name == name))
    if plan is None:
        plan = Plan(organisation=org, name=name, enabled=enabled, schedule=schedule, spec={}, storage_url="x")
        s.add(plan)
        s.flush()
    return plan


def _run(
    s, plan: Plan, state: str, finished: datetime, projects: dict[str, tuple[str, list, list]], error=""
):
    """A finished run; `projects` maps key -> (status, warnings, errors); ok/warning ones get a snapshot."""
    run = Run(
        organisation_id=plan.organisation_id,
        plan_id=plan.id,
        trigger="schedule",
        state=state,
        started=finished - timedelta(minutes=5),
        finished=finished,
        error=error,
    )
    s.add(run)
    s.flush()
    for key, (status, warnings, errors) in projects.items():
        snapshot = f"snap-{run.id}-{key}" if status in ("ok", "warning") else None
        s.add(
            ProjectRun(
                run_id=run.id,
                project=key,
                status=status,
                snapshot_id=snapshot,
                warnings=warnings,
                errors=errors,
            )
        )
    s.flush()
    return run


def _status(backend) -> dict:
    r = backend.call("GET", f"/api/v1/organisations/{TENANT}/status", TENANT)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_failed_plan_does_not_unprotect_what_another_plan_backed_up(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    now = datetime.now(UTC)
    with _db(backend).session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == TENANT))
        default = s.scalar(select(Plan).where(Plan.organisation_id == org.id, Plan.is_default))
        all_days = DAILY["days"]
        default.schedule = {"days": all_days, "hour": (now.hour + 2) % 24}
        typo = _plan(s, org, "Typo plan", {"days": all_days, "hour": (now.hour + 1) % 24})
        _run(
            s,
            default,
            "succeeded",
            now - timedelta(minutes=10),
            {k: ("ok", [], []) for k in ("PLAT", "WEB", "OPS")},
        )
        _run(
            s,
            typo,
            "failed",
            now - timedelta(minutes=2),
            {"WBE": ("failed", [], ["project WBE does not exist or this account may not browse it"])},
        )
        s.commit()
        default_id, default_name = default.public_id, default.name

    status = _status(backend)
    assert status["protected_projects"] == 3
    assert status["last_backup"]["plan"] == default_name and status["last_backup"]["state"] == "succeeded"
    assert status["last_attempt"]["plan"] == "Typo plan" and status["last_attempt"]["state"] == "failed"
    assert (
        status["last_attempt"]["reason"]
        == "WBE: project WBE does not exist or this account may not browse it"
    )
    assert status["state"] == "failed" and status["warnings"] == 0
    # The typo plan runs an hour from now, the default plan two: the earliest is named, until it is disabled.
    assert status["next_backup_plan"]["name"] == "Typo plan"
    with _db(backend).session() as s:
        s.scalar(select(Plan).where(Plan.name == "Typo plan")).enabled = False
        s.commit()
    status = _status(backend)
    assert status["next_backup_plan"] == {"id": default_id, "name": default_name}
    assert datetime.fromisoformat(status["next_backup_at"]) - now < timedelta(hours=2, minutes=1)


def test_snapshots_older_than_their_plans_period_do_not_count(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    now = datetime.now(UTC)
    with _db(backend).session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == TENANT))
        default = s.scalar(select(Plan).where(Plan.organisation_id == org.id, Plan.is_default))
        default.schedule = DAILY
        manual = _plan(s, org, "Archive", {}, enabled=True)
        # Daily plan: 30 h ago is past 24 h + grace; the manual plan's 6 days ago is inside its 7 days.
        _run(s, default, "succeeded", now - timedelta(hours=30), {"PLAT": ("ok", [], [])})
        _run(s, default, "warning", now - timedelta(hours=20), {"WEB": ("warning", ["a", "b", "c"], [])})
        _run(s, manual, "succeeded", now - timedelta(days=6), {"OLD": ("ok", [], [])})
        _run(s, manual, "succeeded", now - timedelta(days=8), {"OLDER": ("ok", [], [])})
        s.commit()
    status = _status(backend)
    assert status["protected_projects"] == 2  # WEB (daily, 20 h) and OLD (manual, 6 days)
    assert status["last_backup"]["state"] == "warning" and status["warnings"] == 3
    assert status["last_attempt"] is None and status["state"] == "warning"


def test_a_new_organisation_is_told_to_set_its_token_first(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    status = _status(backend)
    assert status["first_step"] == "set_token" and status["has_account"] is False
    assert status["state"] == "never backed up" and status["last_backup"] is None
    with _db(backend).session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == TENANT))
        s.add(JiraAccount(organisation_id=org.id, site_url=sandbox_site.url, email="a@b.c", token_sealed="x"))
        default = s.scalar(select(Plan).where(Plan.organisation_id == org.id, Plan.is_default))
        _run(
            s,
            default,
            "failed",
            datetime.now(UTC),
            {},
            error="no Jira credentials: set the API token in Settings",
        )
        s.commit()
    status = _status(backend)
    assert status["first_step"] is None
    assert status["last_attempt"]["reason"] == "no Jira credentials: set the API token in Settings"


def test_a_plans_period_is_the_longest_gap_between_its_runs():
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday
    plan = Plan(name="p", enabled=True, schedule=DAILY, spec={}, storage_url="x")
    assert plan_period(plan, "UTC", now) == timedelta(days=1)
    plan.schedule = {"days": ["mon", "thu"], "hour": 3}
    assert plan_period(plan, "UTC", now) == timedelta(days=4)  # Thu -> Mon
    plan.schedule = {"cron": "0 4 1 * *"}
    assert plan_period(plan, "UTC", now) == timedelta(days=31)  # the longest month ahead
    plan.enabled = False
    assert plan_period(plan, "UTC", now) == UNSCHEDULED_PERIOD
