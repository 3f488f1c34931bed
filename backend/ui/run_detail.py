"""One run's page: its plan, trigger, state and times, a row per project (status, live progress with the
time left, counts, requests, snapshot, problems), Jira's traffic (requests, rate, 429s), the warnings
grouped by kind, the run's log (level filter, text search, download as text), the plan's replicas; and
two operator actions: Cancel a run in progress, Retry failed projects of a finished one.

While the run is queued or running the page re-reads itself (app.js, [data-live]): the log follows live,
under the filters in the address. The run is looked up scoped to the session's organisations, so "not
yours" and "not there" are one 404; the actions are POST forms with the CSRF token (backend/app.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Response, abort, flash, redirect, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.audit.hook import register
from backend.auth.roles import least_role
from backend.db.ids import is_id
from backend.db.models import Organisation, Run, RunLog
from backend.runs import AlreadyRunning
from backend.services import services
from backend.ui import plan_form as pf
from backend.ui import run_watch
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
RETRYABLE = ("failed", "cancelled")  # a project's statuses that Retry failed projects runs again


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
        wanted = run_watch.log_filter(request.args)
        logs = [] if wanted.errors else list(s.scalars(wanted.query(run.id).limit(LOG_LIMIT)))
        total_logs = s.scalar(select(func.count()).select_from(RunLog).where(RunLog.run_id == run.id)) or 0
        shown_logs = (
            s.scalar(select(func.count()).select_from(wanted.query(run.id).order_by(None).subquery()))
            if wanted.active and not wanted.errors
            else (0 if wanted.errors else total_logs)
        )
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
        failed = [p.project for p in projects if p.status in RETRYABLE]
        answer = page(
            "run_detail.html",
            s,
            org,
            run=run,
            projects=projects,
            rows=run_watch.project_rows(run, projects),
            traffic=run_watch.traffic(run),
            groups=run_watch.warning_groups(projects),
            failed=failed,
            logs=logs,
            log_filter=wanted,
            log_levels=run_watch.LEVELS,
            total_logs=total_logs,
            shown_logs=shown_logs,
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
        return answer, 422 if wanted.errors else 200


@bp.get("/runs/<run_id>/log.txt")
@member
@least_role("viewer")
def run_log_text(run_id: str):
    """The run's log as plain text (every line, under the page's filters), to download."""
    with services().db.session() as s:
        run = run_of(s, run_id)
        wanted = run_watch.log_filter(request.args)
        if wanted.errors:
            abort(400)
        tz = (run.plan.schedule or {}).get("time_zone") or s.get(Organisation, run.organisation_id).time_zone
        lines = [
            f"{_stamp(line.time, tz)} {line.level.upper():7} {line.project or '-':10} {line.message}"
            for line in s.scalars(wanted.query(run.id))
        ]
        name = run.public_id
    body = "\n".join(lines) + ("\n" if lines else "")
    return Response(
        body,
        mimetype="text/plain",
        headers={"Content-Disposition": f'attachment; filename="keepstone-{name}.log.txt"'},
    )


@bp.post("/runs/<run_id>/cancel")
@member
@least_role("operator", "cancel runs")
def cancel_run(run_id: str):
    svc = services()
    with svc.db.session() as s:
        run = run_of(s, run_id)
        pk, state, public = run.id, run.state, run.public_id
    if state not in ACTIVE:
        flash(f"The run is already {state}: nothing to cancel.", "warning")
    else:
        svc.runs.cancel(pk)
        flash("Cancel requested: the run stops after the requests in flight.", "success")
    return redirect(url_for("ui.run_detail", run_id=public), code=303)


@bp.post("/runs/<run_id>/retry")
@member
@least_role("operator", "run backups")
def retry_run(run_id: str):
    """Start a new run of the plan for the projects that failed (or were cancelled) in this one."""
    svc = services()
    with svc.db.session() as s:
        run = run_of(s, run_id)
        public, plan_pk, plan_name = run.public_id, run.plan_id, run.plan.name
        keys = [p.project for p in run.projects if p.status in RETRYABLE]
        org = s.get(Organisation, run.organisation_id)
        suspended = org.state != "active"
        finished = run.state not in ACTIVE
    if not finished:
        flash("The run is still in progress: retry its failed projects when it ends.", "warning")
    elif suspended:
        flash("The organisation is suspended (the app is uninstalled): nothing was started.", "error")
    elif not keys:
        flash("No project of this run failed: nothing to retry.", "warning")
    else:
        try:
            new_pk = svc.runs.start(plan_pk, "manual", projects=keys)
        except AlreadyRunning:
            flash(f"A run of “{plan_name}” is already in progress.", "warning")
            return redirect(url_for("ui.run_detail", run_id=public), code=303)
        with svc.db.session() as s:
            fresh = s.get(Run, new_pk)
            s.add(RunLog(run_id=new_pk, level="info", message=f"retry of {public}: {', '.join(keys)}"))
            s.commit()
            new_public = fresh.public_id
        flash(
            f"Retrying {len(keys)} failed project{'' if len(keys) == 1 else 's'}: {', '.join(keys)}.",
            "success",
        )
        return redirect(url_for("ui.run_detail", run_id=new_public), code=303)
    return redirect(url_for("ui.run_detail", run_id=public), code=303)


register("ui.cancel_run", "run.cancel")
register("ui.retry_run", "backup.retry")


def _stamp(value: datetime, tz: str) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def _clock(value: datetime, tz: str) -> str:
    """A log line's time of day with seconds, in the plan's zone."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(tz)).strftime("%H:%M:%S")


def _parse(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
