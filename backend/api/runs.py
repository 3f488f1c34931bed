"""Runs: Backup now, the list with progress, one run's per-project results, cancel, logs."""

from __future__ import annotations

from flask import Blueprint, jsonify
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from backend.api.common import iso, load, page_args, sequence_cursor
from backend.api.plans import default_plan_id
from backend.auth.access import organisation, target
from backend.auth.roles import least_role
from backend.db.models import Plan, Run, RunLog
from backend.errors import Conflict, Invalid
from backend.runs import AlreadyRunning
from backend.services import services

bp = Blueprint("runs", __name__)


class RunIn(Schema):
    plan_id = fields.String(allow_none=True, load_default=None, validate=validate.Length(min=1, max=64))


class ProjectRunOut(Schema):
    project = fields.String(required=True)
    status = fields.String(required=True)
    snapshot_id = fields.String(required=True, allow_none=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    warnings = fields.List(fields.Raw(), required=True)
    errors = fields.List(fields.Raw(), required=True)
    requests = fields.Integer(required=True)


class RunOut(Schema):
    id = fields.String(required=True, metadata={"example": "run_5ke2q7m3x4w6r7t8y9ub"})
    plan_id = fields.String(required=True)
    trigger = fields.String(required=True, validate=validate.OneOf(("manual", "schedule")))
    state = fields.String(
        required=True,
        validate=validate.OneOf(
            ("queued", "running", "succeeded", "warning", "partial", "failed", "cancelled")
        ),
    )
    created = fields.DateTime(required=True)
    started = fields.DateTime(required=True, allow_none=True)
    finished = fields.DateTime(required=True, allow_none=True)
    progress = fields.Dict(required=True)
    requests = fields.Integer(required=True)
    error = fields.String(required=True)
    cancel_requested = fields.Boolean(required=True)
    projects = fields.List(fields.Nested(ProjectRunOut), required=True)


class RunList(Schema):
    items = fields.List(fields.Nested(RunOut), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class LogLine(Schema):
    id = fields.Integer(required=True)
    time = fields.DateTime(required=True)
    level = fields.String(required=True)
    project = fields.String(required=True, allow_none=True)
    message = fields.String(required=True)


class LogList(Schema):
    items = fields.List(fields.Nested(LogLine), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


def run_json(run: Run, with_projects: bool = True) -> dict:
    out = {
        "id": run.public_id,
        "plan_id": run.plan.public_id,
        "trigger": run.trigger,
        "state": run.state,
        "created": iso(run.created),
        "started": iso(run.started),
        "finished": iso(run.finished),
        "progress": run.progress,
        "requests": run.requests,
        "error": run.error,
        "cancel_requested": run.cancel_requested,
    }
    if with_projects:
        out["projects"] = [
            {
                "project": p.project,
                "status": p.status,
                "snapshot_id": p.snapshot_id,
                "counts": p.counts,
                "warnings": p.warnings,
                "errors": p.errors,
                "requests": p.requests,
            }
            for p in run.projects
        ]
    return out


@bp.post("/organisations/<cloud_id>/runs")
def start_run(cloud_id: str):
    data = load(RunIn())
    svc = services()
    with svc.db.session() as s:
        org = organisation(s, cloud_id)
        if org.state != "active":
            raise Conflict("the organisation is suspended (the app is uninstalled)")
        if data["plan_id"] is None:
            plan_id = default_plan_id(s, org)
        else:
            plan = s.scalar(
                select(Plan).where(Plan.public_id == data["plan_id"], Plan.organisation_id == org.id)
            )
            if plan is None:
                raise Invalid("no such plan in this organisation", {"plan_id": ["unknown plan"]})
            plan_id = plan.id
    try:
        run_id = svc.runs.start(plan_id, "manual")
    except AlreadyRunning as e:
        raise Conflict(str(e)) from None
    with svc.db.session() as s:
        return jsonify(run_json(s.get(Run, run_id))), 202


@bp.get("/organisations/<cloud_id>/runs")
def list_runs(cloud_id: str):
    limit, cursor = page_args()
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        query = select(Run).where(Run.organisation_id == org.id).order_by(Run.id.desc()).limit(limit + 1)
        if cursor is not None:
            after = s.scalar(select(Run.id).where(Run.public_id == cursor, Run.organisation_id == org.id))
            if after is None:
                raise Invalid("cursor is not one this API gave out", {"cursor": ["unknown cursor"]})
            query = query.where(Run.id < after)
        runs = list(s.scalars(query))
        more = len(runs) > limit
        runs = runs[:limit]
        return jsonify(
            {"items": [run_json(r) for r in runs], "next_cursor": runs[-1].public_id if more else None}
        )


@bp.get("/runs/<run_id>")
def get_run(run_id: str):
    with services().db.session() as s:
        return jsonify(run_json(target(s, "run_id")))


@bp.post("/runs/<run_id>/cancel")
def cancel_run(run_id: str):
    svc = services()
    with svc.db.session() as s:
        run = target(s, "run_id")
        if run.state not in ("queued", "running"):
            raise Conflict(f"the run is already {run.state}")
        pk = run.id
    svc.runs.cancel(pk)
    with svc.db.session() as s:
        return jsonify(run_json(s.get(Run, pk))), 202


RETRYABLE = ("failed", "cancelled")  # a project's statuses that a retry runs again


@bp.post("/runs/<run_id>/retry")
@least_role("operator", "run backups")
def retry_run(run_id: str):
    """A new run of the plan for the projects that failed (or were cancelled) in this finished run."""
    svc = services()
    with svc.db.session() as s:
        run = target(s, "run_id")
        if run.state in ("queued", "running"):
            raise Conflict("the run is still in progress: retry its failed projects when it ends")
        if run.plan.organisation.state != "active":
            raise Conflict("the organisation is suspended (the app is uninstalled)")
        keys = [p.project for p in run.projects if p.status in RETRYABLE]
        if not keys:
            raise Conflict("no project of this run failed: nothing to retry")
        plan_pk, public = run.plan_id, run.public_id
    try:
        new_pk = svc.runs.start(plan_pk, "manual", projects=keys)
    except AlreadyRunning as e:
        raise Conflict(str(e)) from None
    with svc.db.session() as s:
        s.add(RunLog(run_id=new_pk, level="info", message=f"retry of {public}: {', '.join(keys)}"))
        s.commit()
        return jsonify(run_json(s.get(Run, new_pk))), 202


@bp.get("/runs/<run_id>/logs")
def run_logs(run_id: str):
    limit, cursor = page_args(200, 1000)
    after = sequence_cursor(cursor)
    with services().db.session() as s:
        pk = target(s, "run_id").id
        query = select(RunLog).where(RunLog.run_id == pk).order_by(RunLog.id).limit(limit + 1)
        if after is not None:
            query = query.where(RunLog.id > after)
        rows = list(s.scalars(query))
        more = len(rows) > limit
        rows = rows[:limit]
        return jsonify(
            {
                "items": [
                    {
                        "id": r.id,
                        "time": iso(r.time),
                        "level": r.level,
                        "project": r.project,
                        "message": r.message,
                    }
                    for r in rows
                ],
                "next_cursor": str(rows[-1].id) if more else None,
            }
        )


from backend.audit.hook import register  # noqa: E402  (the audit names what a retry does)

register("api.runs.retry_run", "backup.retry")
