"""The management pages: plans (list, create, edit, duplicate, enable/disable, delete, Backup now) and runs.

Every page and action is behind the session login (`member`), then authorised like the API: plans are
looked up scoped to the session's organisations (`plan_of`), the organisation comes from that same list.
Writes are POST forms with the CSRF token (checked for every session write in backend/app.py). A form is
turned into the API's JSON body and loaded with the API's schema (`PlanIn`); a bad submit stores nothing
and shows each error beside its field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, redirect, request, session, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from backend.api.plans import PlanIn, _place, _sync, plan_json, remove_plan
from backend.backup.spec import DATA_DEFAULTS, ProjectSelection, ProjectSelectionSchema
from backend.db.models import Organisation, Plan, Run, StorageRecord
from backend.errors import Conflict, Invalid
from backend.plans_check import jira_problems
from backend.repository.retention import SCHEMES
from backend.runs import AlreadyRunning
from backend.scheduler import DAYS
from backend.services import services
from backend.ui import coverage
from backend.ui import plan_form as pf
from backend.ui.shell import ORG_KEY, current_org, member, organisations, page, plan_of, visible
from backend.ui.views import bp

ACTIVE = ("queued", "running")
LOZENGE = {
    "succeeded": "success",
    "warning": "moved",
    "partial": "moved",
    "failed": "removed",
    "cancelled": "",
    "queued": "new",
    "running": "inprogress",
}


def _org_or_none(s: Session) -> Organisation | None:
    return current_org(s, organisations(s))


def _last_runs(s: Session, plan_ids: list[int]) -> dict[int, Run]:
    if not plan_ids:
        return {}
    latest = (
        select(Run.plan_id, func.max(Run.id).label("id"))
        .where(Run.plan_id.in_(plan_ids))
        .group_by(Run.plan_id)
    ).subquery()
    return {r.plan_id: r for r in s.scalars(select(Run).join(latest, latest.c.id == Run.id))}


def _storages(s: Session, org: Organisation) -> list[StorageRecord]:
    return list(
        s.scalars(
            select(StorageRecord).where(StorageRecord.organisation_id == org.id).order_by(StorageRecord.name)
        )
    )


# --- the organisation switcher ------------------------------------------------------------------------


@bp.post("/switch")
@member
def switch_org():
    wanted = request.form.get("org", "")
    if wanted not in visible():
        abort(404)
    session[ORG_KEY] = wanted
    target = request.form.get("next", "/")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    return redirect(target, code=303)


# --- plans --------------------------------------------------------------------------------------------


@bp.get("/plans")
@member
def plans():
    with services().db.session() as s:
        org = _org_or_none(s)
        if org is None:
            return page("no_org.html", s, title="Plans")
        items = sorted(org.plans, key=lambda p: (not p.is_default, p.name.lower()))
        last = _last_runs(s, [p.id for p in items])
        site, _ = pf.site_projects(s, org, quick=True) if len(items) > 1 else ([], "")
        also = coverage.of_plans(items, site or None)  # projects in two plans: shown, allowed
        rows = []
        for plan in items:
            data = plan_json(plan, org)
            tz = data["schedule"].get("time_zone") or org.time_zone
            run = last.get(plan.id)
            rows.append(
                {
                    "plan": data,
                    "summary": pf.summary(data),
                    "time_zone": tz,
                    "storage": plan.storage.name if plan.storage else "Default repository",
                    "replicas": [link.storage.name for link in plan.replica_links],
                    "also": also.get(plan.public_id, []),
                    "last": run,
                    "last_at": pf.when(run.finished or run.created, tz) if run else "",
                    "next": pf.when(datetime.fromisoformat(data["next_run_at"]), tz)
                    if data["next_run_at"]
                    else "",
                }
            )
        return page("plans.html", s, org, rows=rows, lozenge=LOZENGE, section="ui.plans")


def _form_page(
    s: Session,
    org: Organisation,
    form: MultiDict,
    *,
    plan: Plan | None,
    errors: dict[str, list[str]] | None = None,
    preview: bool = False,
    status: int = 200,
    rotation_wanted: bool = False,
):
    projects, jira_error = pf.site_projects(s, org)
    form = MultiDict(form)
    known = {p["key"] for p in projects}
    listed = [k for k in form.getlist("keys") if k in known]
    unlisted = [k for k in form.getlist("keys") if k not in known]
    if unlisted:  # keys the picker does not show (a project gone, or Jira unreachable) stay in the text field
        form.setlist("keys", listed)
        form["keys_text"] = ", ".join([*pf.split_keys(form.get("keys_text", "")), *unlisted])
    selected = set(listed) | set(pf.split_keys(form.get("keys_text", "")))
    body = pf.body_of(form)
    matches: list[dict[str, Any]] | None = None
    if form.get("mode") == "rule" and projects:
        try:
            selection: ProjectSelection = ProjectSelectionSchema().load(body["spec"]["projects"])
            matches = [p for p in projects if selection.matches(p)]
        except Exception:  # the rule is incomplete or invalid: its error shows beside the field
            matches = None
    runs, tz = pf.next_runs(body["schedule"], org.time_zone)
    notes = pf.spec_notes(body["spec"]) if preview else []
    answer = page(
        "plan_form.html",
        s,
        org,
        section="ui.plans",
        plan=plan,
        v=form,
        errors={k: (errors or {})[k] for k in sorted(errors or {}, key=pf.field_rank)},
        projects=projects,
        jira_error=jira_error,
        selected=selected,
        matches=matches,
        next_runs=[pf.when(r, tz) for r in runs],
        run_tz=tz,
        notes=notes,
        days=DAYS,
        day_names=pf.DAY_NAMES,
        data_text=pf.DATA_TEXT,
        data_kinds=list(DATA_DEFAULTS),
        schemes=SCHEMES,
        keeps=pf.KEEPS,
        scheme_keeps=pf.SCHEME_KEEPS,
        project_types=pf.PROJECT_TYPES,
        zones=pf.zones(),
        storages=_storages(s, org),
        preview=preview,
        also=pf.also_in_plans(org, plan, body, projects),
        rotation=pf.rotation_preview(plan, org, body, projects) if rotation_wanted else None,
    )
    return answer, status


@bp.get("/plans/new")
@member
def new_plan():
    with services().db.session() as s:
        org = _org_or_none(s)
        if org is None:
            return page("no_org.html", s, title="Plans")
        return _form_page(s, org, pf.new_form(), plan=None)


@bp.get("/plans/<plan_id>/edit")
@member
def edit_plan(plan_id: str):
    with services().db.session() as s:
        plan = plan_of(s, plan_id)
        return _form_page(s, plan.organisation, pf.form_of(plan_json(plan, plan.organisation)), plan=plan)


def _save(plan_id: str | None):
    """Create (plan_id None) or replace a plan from the submitted form; errors re-render it, storing nothing."""
    form = request.form
    preview = form.get("action") in ("preview", "rotation")
    rotating = form.get("action") == "rotation"  # the rotation step's Preview
    svc = services()
    with svc.db.session() as s:
        if plan_id is None:
            org = _org_or_none(s)
            if org is None:
                abort(404)
            plan = None
            base = None
        else:
            plan = plan_of(s, plan_id)
            org = plan.organisation
            base = plan.spec
        body = pf.body_of(form, base)
        data, errors = pf.load_plan(PlanIn(), body)
        # Jira is asked about the keys and the JQL the schema took (the API's check), even when other
        # fields are wrong, so that every problem shows at once.
        asked = {
            "projects": {} if "keys" in errors else body["spec"]["projects"],
            "exclude_jql": None if "exclude_jql" in errors else body["spec"]["exclude_jql"],
        }
        errors = {**errors, **pf.errors_of(jira_problems(s, org, asked).fields)}
        if preview or errors:
            return _form_page(
                s,
                org,
                form,
                plan=plan,
                errors=errors,
                preview=preview,
                status=422 if errors else 200,
                rotation_wanted=rotating,
            )
        target = plan or Plan(organisation_id=org.id, storage_url=svc.config.repository_url(org.cloud_id))
        try:
            with s.no_autoflush:
                _place(s, target, org, data)
        except Invalid as e:
            s.rollback()
            fields = {k: v if isinstance(v, list) else [str(v)] for k, v in e.fields.items()}
            return _form_page(s, org, form, plan=plan, errors=fields, status=422)
        for key, value in data.items():
            setattr(target, key, value)
        if plan is None:
            s.add(target)
        s.commit()
        _sync(target, org)
        flash(f"Plan “{target.name}” {'created' if plan is None else 'saved'}.", "success")
        return redirect(url_for("ui.plans", org=org.cloud_id), code=303)


@bp.post("/plans/new")
@member
def create_plan():
    return _save(None)


@bp.post("/plans/<plan_id>/edit")
@member
def update_plan(plan_id: str):
    return _save(plan_id)


@bp.post("/plans/<plan_id>/run")
@member
def run_plan(plan_id: str):
    svc = services()
    with svc.db.session() as s:
        plan = plan_of(s, plan_id)
        org, pk, name = plan.organisation, plan.id, plan.name
        if org.state != "active":
            flash("The organisation is suspended (the app is uninstalled): nothing was started.", "error")
            return redirect(url_for("ui.plans", org=org.cloud_id), code=303)
        cloud_id = org.cloud_id
    try:
        svc.runs.start(pk, "manual")
    except AlreadyRunning:
        flash(f"A run of “{name}” is already in progress.", "warning")
        return redirect(url_for("ui.runs", org=cloud_id), code=303)
    flash(f"Backup of “{name}” started.", "success")
    return redirect(url_for("ui.runs", org=cloud_id), code=303)


@bp.post("/plans/<plan_id>/toggle")
@member
def toggle_plan(plan_id: str):
    with services().db.session() as s:
        plan = plan_of(s, plan_id)
        plan.enabled = not plan.enabled
        s.commit()
        _sync(plan, plan.organisation)
        state = "enabled: it runs on its schedule" if plan.enabled else "disabled: it runs only by Backup now"
        flash(f"Plan “{plan.name}” {state}.", "success")
        return redirect(url_for("ui.plans", org=plan.organisation.cloud_id), code=303)


@bp.post("/plans/<plan_id>/duplicate")
@member
def duplicate_plan(plan_id: str):
    with services().db.session() as s:
        plan = plan_of(s, plan_id)
        org = plan.organisation
        data = plan_json(plan, org)
        copy = Plan(
            organisation_id=org.id,
            name=f"{plan.name} (copy)"[:255],
            is_default=False,
            enabled=False,
            spec=dict(data["spec"]),
            schedule=dict(data["schedule"]),
            rotation=dict(data["rotation"]),
            storage_url=plan.storage_url,
        )
        with s.no_autoflush:
            _place(s, copy, org, {"storage_id": data["storage_id"], "replica_ids": list(data["replica_ids"])})
        s.add(copy)
        s.commit()
        flash(f"Duplicated as “{copy.name}”, disabled until you enable it.", "success")
        return redirect(url_for("ui.edit_plan", plan_id=copy.public_id), code=303)


@bp.get("/plans/<plan_id>/delete")
@member
def confirm_delete(plan_id: str):
    with services().db.session() as s:
        plan = plan_of(s, plan_id)
        org = plan.organisation
        runs = s.scalar(select(func.count()).select_from(Run).where(Run.plan_id == plan.id)) or 0
        storage = plan.storage.name if plan.storage else "the default repository"
        return page("plan_delete.html", s, org, plan=plan, runs=runs, storage=storage, section="ui.plans")


@bp.post("/plans/<plan_id>/delete")
@member
def delete_plan(plan_id: str):
    with services().db.session() as s:
        plan = plan_of(s, plan_id)
        name, cloud_id = plan.name, plan.organisation.cloud_id
        try:
            remove_plan(s, plan)
        except Conflict as e:
            flash(f"“{name}” was not deleted: {e.message}.", "error")
            return redirect(url_for("ui.plans", org=cloud_id), code=303)
        flash(f"Plan “{name}” deleted. Its snapshots stay in their storage.", "success")
        return redirect(url_for("ui.plans", org=cloud_id), code=303)


# --- runs ---------------------------------------------------------------------------------------------


def duration(run: Run) -> str:
    if run.started is None:
        return ""
    end = run.finished or datetime.now(UTC)
    start = run.started if run.started.tzinfo else run.started.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    seconds = max(0, int((end - start).total_seconds()))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def results(run: Run) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for p in run.projects:
        counts[p.status] = counts.get(p.status, 0) + 1
    return sorted(counts.items())


@bp.get("/runs")
@member
def runs():
    with services().db.session() as s:
        org = _org_or_none(s)
        if org is None:
            return page("no_org.html", s, title="Runs")
        from backend.ui import run_filters

        plans = sorted(org.plans, key=lambda p: p.name.lower())
        wanted = run_filters.parse(request.args, plans, org.time_zone)
        items: list[Run] = []
        if not wanted.errors:  # a wrong filter lists nothing, rather than everything unfiltered
            query = select(Run).where(Run.organisation_id == org.id).order_by(Run.id.desc()).limit(50)
            items = list(s.scalars(wanted.apply(query)))
        for run in items:
            list(run.projects)
        active = [r for r in items if r.state in ACTIVE]
        answer = page(
            "runs.html",
            s,
            org,
            runs=items,
            active=active,
            lozenge=LOZENGE,
            duration=duration,
            results=results,
            when=lambda d: pf.when(d, org.time_zone),
            plans=plans,
            filters=wanted,
            states=run_filters.STATES,
            triggers=run_filters.TRIGGERS,
        )
        return answer, 422 if wanted.errors else 200


# Settings (members, invitations, the Jira account): backend/ui/settings.py


from backend.ui import notifications as notifications  # noqa: E402
from backend.ui import run_detail as run_detail  # noqa: E402  (their routes join bp too)
from backend.ui import storages as storages  # noqa: E402
