"""What the panel inside Jira shows about an organisation, computed so that it tells the truth.

- Protected projects: the distinct projects that have a committed snapshot, of any plan, no older than that
  plan's period (the longest gap between two of its scheduled runs) plus a grace for the run itself. A plan
  without a schedule (manual only, or disabled) protects for `UNSCHEDULED_PERIOD`. A failed run of one plan
  does not unprotect what another plan backed up minutes before.
- Last backup: the last run that ended with snapshots (succeeded or warning); next to it the last attempt
  when that one went worse (partial, failed, cancelled), with its reason.
- Next backup: the earliest next run of any enabled plan, and that plan's name.
- Warnings: the count of the last successful run's warnings, so the panel can show them as such.
- First step: what the admin must do before anything else works (set the API token), or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.models import JiraAccount, Organisation, Plan, ProjectRun, Run
from backend.scheduler import next_fire

GOOD_STATES = ("succeeded", "warning")
UNSCHEDULED_PERIOD = timedelta(days=7)
GRACE = timedelta(hours=2)  # a scheduled run starts late or takes a while: not unprotected for that
HORIZON = 40  # scheduled fires looked at to find a plan's period (covers a monthly cron)


def plan_period(plan: Plan, time_zone: str, now: datetime) -> timedelta:
    """The longest gap between consecutive scheduled runs of the plan, from now on."""
    if not plan.enabled or not plan.schedule:
        return UNSCHEDULED_PERIOD
    fires: list[datetime] = []
    moment = now
    for _ in range(HORIZON):
        following = next_fire(plan.schedule, time_zone, moment)
        if following is None:
            break
        fires.append(following)
        moment = following + timedelta(seconds=1)
        if following - now > timedelta(days=62):
            break
    if len(fires) < 2:
        return UNSCHEDULED_PERIOD
    return max(b - a for a, b in pairwise(fires))


def protected_projects(s: Session, org: Organisation, now: datetime) -> list[str]:
    keys: set[str] = set()
    for plan in org.plans:
        cutoff = now - plan_period(plan, org.time_zone, now) - GRACE
        keys.update(
            s.scalars(
                select(ProjectRun.project)
                .join(Run, ProjectRun.run_id == Run.id)
                .where(
                    Run.plan_id == plan.id,
                    Run.finished.is_not(None),
                    Run.finished >= cutoff,
                    ProjectRun.snapshot_id.is_not(None),
                )
                .distinct()
            )
        )
    return sorted(keys)


def failure_reason(run: Run) -> str:
    """Why a run went wrong, in one line: its own error, else its failed projects' first errors."""
    if run.error:
        return run.error
    failed = [p for p in run.projects if p.errors]
    if not failed:
        return "cancelled" if run.state == "cancelled" else ""
    first = failed[0]
    more = f" (and {len(failed) - 1} more projects)" if len(failed) > 1 else ""
    return f"{first.project}: {first.errors[0]}{more}"


def _run_json(run: Run) -> dict[str, Any]:
    return {
        "id": run.public_id,
        "plan": run.plan.name,
        "state": run.state,
        "at": _iso(run.finished),
        "reason": failure_reason(run) if run.state not in GOOD_STATES else "",
        "warnings": sum(len(p.warnings or []) for p in run.projects),
    }


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _next(plans: Iterable[Plan], time_zone: str, now: datetime) -> tuple[datetime, Plan] | None:
    found = [
        (when, plan)
        for plan in plans
        if plan.enabled and plan.schedule
        for when in [next_fire(plan.schedule, time_zone, now)]
        if when is not None
    ]
    return min(found, key=lambda pair: pair[0]) if found else None


def panel_status(s: Session, org: Organisation, now: datetime | None = None) -> dict[str, Any]:
    """The status fields of the panel (the route adds regions and identity)."""
    now = now or datetime.now(UTC)
    finished = select(Run).where(Run.organisation_id == org.id, Run.finished.is_not(None))
    last_good = s.scalar(finished.where(Run.state.in_(GOOD_STATES)).order_by(Run.finished.desc()).limit(1))
    last_any = s.scalar(finished.order_by(Run.finished.desc()).limit(1))
    current = s.scalar(
        select(Run)
        .where(Run.organisation_id == org.id, Run.state.in_(("queued", "running")))
        .order_by(Run.id.desc())
        .limit(1)
    )
    has_account = s.scalar(select(JiraAccount.id).where(JiraAccount.organisation_id == org.id)) is not None
    upcoming = _next(org.plans, org.time_zone, now) if org.state == "active" else None
    attempt = last_any if last_any is not None and last_any.state not in GOOD_STATES else None
    if org.state != "active":
        state = "suspended"
    elif current is not None:
        state = "running"
    elif last_any is not None:
        state = last_any.state
    else:
        state = "never backed up"
    good = _run_json(last_good) if last_good else None
    return {
        "protected_projects": len(protected_projects(s, org, now)),
        "state": state,
        "last_backup_at": _iso(last_good.finished) if last_good else None,
        "last_backup_state": last_good.state if last_good else None,
        "last_backup": good,
        "last_attempt": _run_json(attempt) if attempt else None,
        "warnings": good["warnings"] if good and good["state"] == "warning" else 0,
        "next_backup_at": _iso(upcoming[0]) if upcoming else None,
        "next_backup_plan": {"id": upcoming[1].public_id, "name": upcoming[1].name} if upcoming else None,
        "current_run": (
            {
                "id": current.public_id,
                "state": current.state,
                "progress": current.progress,
                "plan": current.plan.name,
            }
            if current
            else None
        ),
        "has_account": has_account,
        "first_step": None if has_account else "set_token",
    }
