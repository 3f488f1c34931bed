"""The Restore page: pick a catalogued snapshot, say what (issues, the project, its configuration) and where
(the original project, another existing one, a new key), see the dry run, then start it as a background
task (backend/restores.py) and watch it to its report: counts, errors, the old -> new key map (downloadable)
and the fidelity report.

Viewers see restores and their reports; operators start and cancel them (backend/auth/roles.py). The form
is checked before anything is planned: keys and project keys have Jira's shape, issues must be in the
chosen snapshot; a bad submit stores nothing and shows each error beside its field.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response, abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from backend import audit
from backend.auth.roles import least_role
from backend.db.models import CatalogIssue, CatalogSnapshot, Organisation, RestoreJob
from backend.repository import RepositoryError
from backend.restore.fidelity import format_report
from backend.restore.plan import PARTS, RestoreError, RestoreRequest
from backend.restore.progress import key_map_lines
from backend.services import services
from backend.ui import plan_form as pf
from backend.ui.shell import current_org, member, organisations, page
from backend.ui.views import bp

KEY = re.compile(r"[A-Z][A-Z0-9_]{0,63}-[1-9][0-9]{0,17}")
PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]{1,9}")
LOZENGE = {"succeeded": "success", "partial": "moved", "failed": "removed", "cancelled": "",
           "queued": "new", "running": "inprogress"}  # fmt: skip
PART_TEXT = {
    "configuration": "Configuration (components, versions, boards, filters, roles)",
    "issues": "Issues (fields, status, resolution)",
    "comments": "Comments (with their visibility)",
    "worklogs": "Work logs",
    "attachments": "Attachments",
    "links": "Issue links",
    "watchers": "Watchers",
}


def _org(s: Session) -> Organisation | None:
    return current_org(s, organisations(s))


def _snapshots(s: Session, org: Organisation) -> list[CatalogSnapshot]:
    return list(
        s.scalars(
            select(CatalogSnapshot)
            .where(CatalogSnapshot.organisation_id == org.id)
            .order_by(CatalogSnapshot.time.desc(), CatalogSnapshot.id.desc())
            .limit(200)
        )
    )


def _jobs(s: Session, org: Organisation) -> list[RestoreJob]:
    return list(
        s.scalars(
            select(RestoreJob)
            .where(RestoreJob.organisation_id == org.id)
            .order_by(RestoreJob.id.desc())
            .limit(20)
        )
    )


def _read_form(
    s: Session, org: Organisation, form: MultiDict
) -> tuple[CatalogSnapshot | None, RestoreRequest | None, dict[str, list[str]]]:
    """The chosen snapshot and the request, or the errors by field (nothing is planned or stored)."""
    errors: dict[str, list[str]] = {}
    project, _, snapshot_id = form.get("snapshot", "").partition("/")
    snap = s.scalar(
        select(CatalogSnapshot).where(
            CatalogSnapshot.organisation_id == org.id,
            CatalogSnapshot.project == project,
            CatalogSnapshot.snapshot_id == snapshot_id,
        )
    )
    if snap is None:
        errors["snapshot"] = ["choose a snapshot from the list"]
    what = form.get("what", "")
    issues: list[str] | None = None
    if what == "issues":
        issues = [k.strip().upper() for k in re.split(r"[\s,]+", form.get("issues", "")) if k.strip()]
        bad = [k for k in issues if not KEY.fullmatch(k)]
        if not issues:
            errors["issues"] = ["name at least one issue key, e.g. ABC-12"]
        elif bad:
            errors["issues"] = [f"not issue keys: {', '.join(bad[:5])}"]
        elif snap is not None:
            held = set(
                s.scalars(
                    select(CatalogIssue.key).where(
                        CatalogIssue.snapshot == snap.id, CatalogIssue.key.in_(issues)
                    )
                )
            )
            missing = [k for k in issues if k not in held]
            if missing:
                errors["issues"] = [f"not in this snapshot: {', '.join(missing[:5])}"]
    elif what not in ("project", "configuration"):
        errors["what"] = ["choose what to restore"]
    target = form.get("target", "")
    target_key = form.get("target_key", "").strip().upper() or None
    if target not in ("original", "existing", "new"):
        errors["target"] = ["choose where to restore to"]
    elif target != "original" and (target_key is None or not PROJECT_KEY.fullmatch(target_key)):
        errors["target_key"] = ["a project key: 2-10 capital letters, digits or _, starting with a letter"]
    if what == "configuration":
        parts = {"configuration"}
    else:
        parts = {p for p in form.getlist("parts") if p in PARTS} | {"issues"}
    if errors or snap is None:
        return snap, None, errors
    name = form.get("target_name", "").strip()[:255] or None
    req = RestoreRequest(
        snap.snapshot_id,
        issues,
        what in ("project", "configuration"),
        {},
        target,
        target_key,
        name,
        parts,
        form.get("overwrite") == "on",
    )
    try:
        req.validate()
    except RestoreError as e:
        return snap, None, {"_": [str(e)]}
    return snap, req, {}


def _form_page(
    s: Session,
    org: Organisation,
    form: MultiDict,
    errors: dict,
    dry_run: list[str] | None = None,
    status: int = 200,
):
    body = page(
        "restore.html",
        s,
        org,
        snapshots=_snapshots(s, org),
        jobs=_jobs(s, org),
        v=form,
        errors=errors,
        parts=[(p, PART_TEXT[p]) for p in PARTS],
        dry_run=dry_run,
        lozenge=LOZENGE,
        when=lambda d: pf.when(d, org.time_zone),
    )
    return body, status


@bp.get("/restore")
@member
@least_role("viewer", "see restores")
def restore():
    with services().db.session() as s:
        org = _org(s)
        if org is None:
            return page("no_org.html", s, title="Restore")
        defaults = MultiDict({"what": "issues", "target": "original", "parts": list(PARTS)})
        defaults.setlist("parts", [p for p in PARTS if p != "configuration"])
        if request.args.get("snapshot"):
            defaults["snapshot"] = request.args["snapshot"]
        if request.args.get("issues"):
            defaults["issues"] = request.args["issues"]
        return _form_page(s, org, defaults, {})


@bp.post("/restore")
@member
@least_role("operator", "restore")
def restore_post():
    svc = services()
    with svc.db.session() as s:
        org = _org(s)
        if org is None:
            abort(404)
        form = request.form
        snap, req, errors = _read_form(s, org, form)
        if errors or req is None or snap is None:
            return _form_page(s, org, form, errors, status=400)
        if form.get("action") == "dry_run":
            try:
                lines = svc.restores.dry_run(org.id, snap, req)
            except (RestoreError, RepositoryError) as e:
                return _form_page(s, org, form, {"_": [str(e)]}, status=400)
            return _form_page(s, org, form, {}, dry_run=lines)
        org_id, cloud_id = org.id, org.cloud_id
    who = getattr(current_user, "email", None) or getattr(current_user, "display_name", "") or "member"
    job_id = svc.restores.start(org_id, snap, req, who)
    audit.record(
        "restore.start",
        cloud_id=cloud_id,
        target_id=job_id,
        target_name=f"{snap.project} {snap.snapshot_id[:8]}",
        details={
            "target": req.target,
            "target_key": req.target_key,
            "issues": len(req.issues or []),
            "whole_project": req.whole_project,
            "parts": sorted(req.parts),
        },
    )
    return redirect(url_for("ui.restore_job", job_id=job_id), code=303)


def _job(s: Session, org: Organisation, job_id: str) -> RestoreJob:
    job = s.scalar(
        select(RestoreJob).where(RestoreJob.public_id == job_id, RestoreJob.organisation_id == org.id)
    )
    if job is None:
        abort(404)
    return job


@bp.get("/restore/<job_id>")
@member
@least_role("viewer", "see restores")
def restore_job(job_id: str):
    with services().db.session() as s:
        org = _org(s)
        if org is None:
            abort(404)
        job = _job(s, org, job_id)
        result: dict[str, Any] = job.result or {}
        fidelity = result.get("fidelity")
        return page(
            "restore_job.html",
            s,
            org,
            job=job,
            result=result,
            active=job.state in ("queued", "running"),
            key_map=sorted((result.get("mapping") or {}).items()),
            report=format_report(fidelity) if fidelity else [],
            lozenge=LOZENGE,
            when=lambda d: pf.when(d, org.time_zone),
        )


@bp.post("/restore/<job_id>/cancel")
@member
@least_role("operator", "cancel restores")
def restore_cancel(job_id: str):
    svc = services()
    with svc.db.session() as s:
        org = _org(s)
        if org is None:
            abort(404)
        job = _job(s, org, job_id)
        svc.restores.cancel(job.id)
    flash("Cancelling: the restore stops after its current step; starting it again resumes it.", "success")
    return redirect(url_for("ui.restore_job", job_id=job_id), code=303)


@bp.get("/restore/<job_id>/keys.<fmt>")
@member
@least_role("viewer", "download restore reports")
def restore_keys(job_id: str, fmt: str):
    if fmt not in ("json", "txt"):
        abort(404)
    with services().db.session() as s:
        org = _org(s)
        if org is None:
            abort(404)
        job = _job(s, org, job_id)
        mapping = (job.result or {}).get("mapping") or {}
        name = f"keepstone-restore-{job.public_id}-keys.{fmt}"
    if fmt == "json":
        body, mimetype = json.dumps({"restore": job_id, "keys": mapping}, indent=2), "application/json"
    else:
        body, mimetype = "\n".join(key_map_lines(mapping)) + "\n", "text/plain"
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
