"""The dashboard's charts as JSON (viewers may read them): backups a day by outcome, stored and new bytes a
day per storage, the duration of each run, protected vs unprotected projects, and the projects gone
from Jira (archived) with their last snapshot.

Where each figure comes from:
- backups a day: the runs table, by the day a run was created in the organisation's time zone;
  succeeded, warning (warning and partial) and failed (failed and cancelled).
- bytes: the snapshot catalog. "stored" on a day is the sum over projects of the size of each project's
  latest snapshot up to that day's end (the plaintext bytes a restore would bring back, before
  deduplication and compression); "new" is the attachment bytes downloaded that day (the snapshots'
  `attachment_bytes` count; carried attachments are not downloaded again). A storage is the plan's
  primary storage of the repository (its name), "Default repository" without one.
- durations: started to finished of the latest finished runs.
- projects: the projects the latest finished run of each plan listed; protected are those with a
  successful snapshot within their plan's period (backend/panel_status.py), the rest unprotected.
- archived: projects the catalog holds snapshots of that no plan's latest finished run listed any more
  (gone from Jira, or taken out of every plan's selection), each with its last snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, jsonify, request
from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.auth.access import organisation
from backend.auth.roles import least_role
from backend.db.models import CatalogSnapshot, Organisation, ProjectRun, Run
from backend.panel_status import protected_projects
from backend.services import services

bp = Blueprint("charts", __name__)
OUTCOME = {
    "succeeded": "succeeded",
    "warning": "warning",
    "partial": "warning",
    "failed": "failed",
    "cancelled": "failed",
}
DEFAULT_STORAGE = "Default repository"


class DaysArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=366))


class RunsArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class BackupsOut(Schema):
    days = fields.List(fields.Date(), required=True)
    succeeded = fields.List(fields.Integer(), required=True)
    warning = fields.List(fields.Integer(), required=True)
    failed = fields.List(fields.Integer(), required=True)
    time_zone = fields.String(required=True)


class StorageBytes(Schema):
    storage = fields.String(required=True)
    stored = fields.List(fields.Integer(), required=True)
    new = fields.List(fields.Integer(), required=True)


class BytesOut(Schema):
    days = fields.List(fields.Date(), required=True)
    storages = fields.List(fields.Nested(StorageBytes), required=True)
    source = fields.String(required=True)


class RunDuration(Schema):
    id = fields.String(required=True)
    plan = fields.String(required=True)
    state = fields.String(required=True)
    started = fields.DateTime(required=True)
    seconds = fields.Integer(required=True)


class DurationsOut(Schema):
    items = fields.List(fields.Nested(RunDuration), required=True)


class ArchivedProject(Schema):
    project = fields.String(required=True)
    snapshot_id = fields.String(required=True)
    time = fields.DateTime(required=True)
    issues = fields.Integer(required=True)
    size = fields.Integer(required=True)


class ProjectsOut(Schema):
    protected = fields.List(fields.String(), required=True)
    unprotected = fields.List(fields.String(), required=True)
    archived = fields.List(fields.Nested(ArchivedProject), required=True)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _window(org: Organisation, days: int) -> tuple[list[date], datetime, ZoneInfo]:
    """The last `days` days (today included) in the organisation's zone, and the UTC instant they start."""
    tz = ZoneInfo(org.time_zone or "UTC")
    today = datetime.now(tz).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    return [first + timedelta(days=i) for i in range(days)], start, tz


def backups_per_day(s: Session, org: Organisation, days: int) -> dict[str, Any]:
    window, start, tz = _window(org, days)
    index = {d: i for i, d in enumerate(window)}
    out: dict[str, list[int]] = {k: [0] * days for k in ("succeeded", "warning", "failed")}
    rows = s.execute(
        select(Run.created, Run.state).where(Run.organisation_id == org.id, Run.created >= start)
    )
    for created, state in rows:
        kind = OUTCOME.get(state)
        day = _aware(created).astimezone(tz).date()
        if kind and day in index:
            out[kind][index[day]] += 1
    return {"days": [d.isoformat() for d in window], **out, "time_zone": str(tz)}


def _storage_names(org: Organisation, s: Session) -> dict[int | None, str]:
    """A plan's storage name by plan row id (the catalog names the plan that wrote each snapshot)."""
    return {p.id: (p.storage.name if p.storage else DEFAULT_STORAGE) for p in org.plans}


def bytes_per_day(s: Session, org: Organisation, days: int) -> dict[str, Any]:
    window, start, tz = _window(org, days)
    index = {d: i for i, d in enumerate(window)}
    names = _storage_names(org, s)
    by_repo_name: dict[str, str] = {}
    snaps = list(
        s.execute(
            select(
                CatalogSnapshot.repository,
                CatalogSnapshot.plan_id,
                CatalogSnapshot.project,
                CatalogSnapshot.time,
                CatalogSnapshot.size,
                CatalogSnapshot.counts,
            )
            .where(CatalogSnapshot.organisation_id == org.id)
            .order_by(CatalogSnapshot.time)
        )
    )
    for repository, plan_id, *_ in snaps:
        if plan_id in names:
            by_repo_name.setdefault(repository, names[plan_id])
    stored: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    new: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    latest: dict[tuple[str, str], int] = {}  # (storage, project) -> size of its latest snapshot so far
    cursor = 0
    for i, day in enumerate(window):
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz).astimezone(UTC)
        while cursor < len(snaps) and _aware(snaps[cursor][3]) < end:
            repository, _plan, project, when, size, counts = snaps[cursor]
            name = by_repo_name.get(repository, f"repository {repository[:8]}")  # its plan is gone
            latest[(name, project)] = int(size or 0)
            if _aware(when) >= start:
                new[name][index[day]] += int((counts or {}).get("attachment_bytes", 0))
            cursor += 1
        for (name, _project), size in latest.items():
            stored[name][i] += size
    storages = [
        {"storage": name, "stored": stored[name], "new": new[name]} for name in sorted(set(stored) | set(new))
    ]
    return {"days": [d.isoformat() for d in window], "storages": storages, "source": "catalog"}


def durations(s: Session, org: Organisation, limit: int) -> dict[str, Any]:
    runs = list(
        s.scalars(
            select(Run)
            .where(Run.organisation_id == org.id, Run.started.is_not(None), Run.finished.is_not(None))
            .order_by(Run.id.desc())
            .limit(limit)
        )
    )
    items = [
        {
            "id": r.public_id,
            "plan": r.plan.name,
            "state": r.state,
            "started": _aware(r.started).isoformat(),
            "seconds": max(0, int((_aware(r.finished) - _aware(r.started)).total_seconds())),
        }
        for r in reversed(runs)
    ]
    return {"items": items}


def listed_by_latest_runs(s: Session, org: Organisation) -> set[str]:
    """The projects the latest finished run of each plan listed (its rows, one per selected project).

    A retry (Retry failed projects: its progress names the projects it was limited to) does not count:
    it lists only what failed, not the plan's selection."""
    seen: set[int] = set()
    chosen: list[int] = []
    rows = s.execute(
        select(Run.id, Run.plan_id, Run.progress)
        .where(Run.organisation_id == org.id, Run.finished.is_not(None))
        .where(select(ProjectRun.id).where(ProjectRun.run_id == Run.id).exists())
        .order_by(Run.id.desc())
        .limit(1000)
    )
    for run_id, plan_id, progress in rows:
        if plan_id in seen or (progress or {}).get("only"):
            continue
        seen.add(plan_id)
        chosen.append(run_id)
    if not chosen:
        return set()
    return set(s.scalars(select(ProjectRun.project).where(ProjectRun.run_id.in_(chosen))))


def archived_projects(s: Session, org: Organisation, listed: set[str]) -> list[dict[str, Any]]:
    """Catalogued projects no plan's latest run listed, each with its last snapshot."""
    last = (
        select(CatalogSnapshot.project, func.max(CatalogSnapshot.time).label("time"))
        .where(CatalogSnapshot.organisation_id == org.id)
        .group_by(CatalogSnapshot.project)
    ).subquery()
    rows = s.execute(
        select(CatalogSnapshot)
        .join(last, (last.c.project == CatalogSnapshot.project) & (last.c.time == CatalogSnapshot.time))
        .where(CatalogSnapshot.organisation_id == org.id)
        .order_by(CatalogSnapshot.project)
    ).scalars()
    out, seen = [], set()
    for snap in rows:
        if snap.project in listed or snap.project in seen:
            continue
        seen.add(snap.project)
        out.append(
            {
                "project": snap.project,
                "snapshot_id": snap.snapshot_id,
                "time": _aware(snap.time).isoformat(),
                "issues": snap.issues,
                "size": snap.size,
            }
        )
    return out


def projects(s: Session, org: Organisation) -> dict[str, Any]:
    listed = listed_by_latest_runs(s, org)
    protected = set(protected_projects(s, org, datetime.now(UTC)))
    return {
        "protected": sorted(protected),
        "unprotected": sorted(listed - protected),
        "archived": archived_projects(s, org, listed),
    }


@bp.get("/organisations/<cloud_id>/charts/backups")
@least_role("viewer", "see the dashboard")
def chart_backups(cloud_id: str):
    args = DaysArgs().load(request.args)
    with services().db.session() as s:
        return jsonify(backups_per_day(s, organisation(s, cloud_id), args["days"]))


@bp.get("/organisations/<cloud_id>/charts/bytes")
@least_role("viewer", "see the dashboard")
def chart_bytes(cloud_id: str):
    args = DaysArgs().load(request.args)
    with services().db.session() as s:
        return jsonify(bytes_per_day(s, organisation(s, cloud_id), args["days"]))


@bp.get("/organisations/<cloud_id>/charts/durations")
@least_role("viewer", "see the dashboard")
def chart_durations(cloud_id: str):
    args = RunsArgs().load(request.args)
    with services().db.session() as s:
        return jsonify(durations(s, organisation(s, cloud_id), args["limit"]))


@bp.get("/organisations/<cloud_id>/charts/projects")
@least_role("viewer", "see the dashboard")
def chart_projects(cloud_id: str):
    with services().db.session() as s:
        return jsonify(projects(s, organisation(s, cloud_id)))


SCHEMAS = {
    "BackupsOut": BackupsOut,
    "BytesOut": BytesOut,
    "DurationsOut": DurationsOut,
    "ProjectsOut": ProjectsOut,
}


def openapi_paths(org: str, op: Any, param: Any, cloud: dict[str, Any]) -> dict[str, Any]:
    """The charts' paths for backend/api/openapi.py (its `_op` and `_param` passed in)."""
    days = param(
        "days", "query", {"type": "integer", "minimum": 1, "maximum": 366}, "days back, today included"
    )
    limit = param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}, "latest finished runs")
    return {
        f"{org}/charts/backups": {
            "get": op("Backups a day: succeeded, warning, failed", "BackupsOut", params=[cloud, days])
        },
        f"{org}/charts/bytes": {
            "get": op(
                "Stored and new bytes a day per storage (from the catalog)", "BytesOut", params=[cloud, days]
            )
        },
        f"{org}/charts/durations": {
            "get": op(
                "The duration of each of the latest finished runs", "DurationsOut", params=[cloud, limit]
            )
        },
        f"{org}/charts/projects": {
            "get": op("Protected, unprotected and archived projects", "ProjectsOut", params=[cloud])
        },
    }
