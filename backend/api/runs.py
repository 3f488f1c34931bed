"""Runs: Backup now, the list with progress, one run's per-project results, cancel, logs."""

from __future__ import annotations

from flask import Blueprint, jsonify
from marshmallow import Schema, fields
from sqlalchemy import select

from backend.api.common import iso, load, page_args
from backend.api.plans import default_plan_id
from backend.auth.access import organisation, owned
from backend.db.models import Plan, Run, RunLog
from backend.errors import Conflict, Invalid
from backend.runs import AlreadyRunning
from backend.services import services

bp = Blueprint("runs", __name__, url_prefix="/api/v1")


class RunIn(Schema):
    plan_id = fields.Integer(strict=True, allow_none=True, load_default=None)


def run_json(run: Run, with_projects: bool = True) -> dict:
    out = {
        "id": run.id,
        "plan_id": run.plan_id,
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
            plan = s.get(Plan, data["plan_id"])
            if plan is None or plan.organisation_id != org.id:
                raise Invalid("no such plan in this organisation", {"plan_id": "unknown plan"})
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
            query = query.where(Run.id < cursor)
        runs = list(s.scalars(query))
        more = len(runs) > limit
        runs = runs[:limit]
        return jsonify({"items": [run_json(r) for r in runs], "next_cursor": runs[-1].id if more else None})


def _run(s, run_id: int) -> Run:
    return owned(s, Run, run_id, "run")[0]


@bp.get("/runs/<int:run_id>")
def get_run(run_id: int):
    with services().db.session() as s:
        return jsonify(run_json(_run(s, run_id)))


@bp.post("/runs/<int:run_id>/cancel")
def cancel_run(run_id: int):
    svc = services()
    with svc.db.session() as s:
        run = _run(s, run_id)
        if run.state not in ("queued", "running"):
            raise Conflict(f"the run is already {run.state}")
    svc.runs.cancel(run_id)
    with svc.db.session() as s:
        return jsonify(run_json(s.get(Run, run_id))), 202


@bp.get("/runs/<int:run_id>/logs")
def run_logs(run_id: int):
    limit, cursor = page_args(200, 1000)
    with services().db.session() as s:
        _run(s, run_id)
        query = select(RunLog).where(RunLog.run_id == run_id).order_by(RunLog.id).limit(limit + 1)
        if cursor is not None:
            query = query.where(RunLog.id > cursor)
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
                "next_cursor": rows[-1].id if more else None,
            }
        )
