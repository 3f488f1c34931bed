"""One run's page: its plan, trigger, state and times, a row per project (status, counts, requests,
snapshot, warnings and errors), the run's log with levels, and how each of the plan's replicas stands.

While the run is queued or running the page re-reads itself (app.js, [data-live]); otherwise it is plain.
The run is looked up scoped to the session's organisations, so "not yours" and "not there" are one 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import abort
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.auth.roles import least_role
from backend.db.ids import is_id
from backend.db.models import Organisation, Run, RunLog
from backend.services import services
from backend.ui import plan_form as pf
from backend.ui.shell import member, page, visible
from backend.ui.views import bp

ACTIVE = ("queued", "running")
LOG_LIMIT = 2000  # lines shown; the API pages through all of them
LEVELS = {"error": "removed", "warning": "moved", "info": "", "debug": ""}
LOZENGE = {
    "succeeded": "success",
    "ok": "success",
    "warning": "moved",
    "partial": "moved",
    "failed": "removed",
    "cancelled": "",
    "queued": "new",
    "running": "inprogress",
    "pending": "new",
}
TRIGGERS = {"manual": "Backup now", "schedule": "Schedule"}


def run_of(s: Session, run_id: str) -> Run:
    if not is_id("run", run_id):
        abort(404)
    run = s.scalar(
        select(Run)
        .join(Organisation, Organisation.id == Run.organisation_id)
        .where(Run.public_id == run_id, Organisation.cloud_id.in_(visible()))
    )
    if run is None:
        abort(404)
    return run


def text_of(item: object) -> str:
    """A warning or error as stored (a string, or a dict with a message)."""
    if isinstance(item, dict):
        return str(item.get("message") or item.get("reason") or item)
    return str(item)


@bp.get("/runs/<run_id>")
@member
@least_role("viewer")
def run_detail(run_id: str):
    from backend.ui.pages import duration

    with services().db.session() as s:
        run = run_of(s, run_id)
        org = s.get(Organisation, run.organisation_id)
        tz = (run.plan.schedule or {}).get("time_zone") or org.time_zone
        logs = list(
            s.scalars(select(RunLog).where(RunLog.run_id == run.id).order_by(RunLog.id).limit(LOG_LIMIT))
        )
        total_logs = s.scalar(select(func.count()).select_from(RunLog).where(RunLog.run_id == run.id)) or 0
        replicas = [
            {
                "name": link.storage.name,
                "kind": link.storage.kind,
                "storage_id": link.storage.public_id,
                **{"state": "pending", "lag": None, "error": ""},
                **(link.replication or {}),
            }
            for link in run.plan.replica_links
        ]
        projects = list(run.projects)
        return page(
            "run_detail.html",
            s,
            org,
            run=run,
            projects=projects,
            logs=logs,
            total_logs=total_logs,
            log_limit=LOG_LIMIT,
            replicas=replicas,
            active=run.state in ACTIVE,
            lozenge=LOZENGE,
            levels=LEVELS,
            trigger=TRIGGERS.get(run.trigger, run.trigger),
            duration=duration(run),
            text_of=text_of,
            tz=tz,
            when=lambda d: pf.when(d, tz),
            clock=lambda d: _clock(d, tz),
            iso_when=lambda v: pf.when(_parse(v), tz) if v else "",
            section="ui.runs",
        )


def _clock(value: datetime, tz: str) -> str:
    """A log line's time of day with seconds, in the plan's zone."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(tz)).strftime("%H:%M:%S")


def _parse(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
