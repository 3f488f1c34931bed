"""The snapshot browser and search: projects, then a project's snapshots, then a snapshot's issues, then
one issue as that snapshot holds it (ADF as HTML, comments, worklogs, attachments to download, its history
across snapshots with a field-level diff); `/search` finds which snapshots held a phrase.

Lists come from the catalog in the database (backend/catalog), so browsing never reads packs; only the
issue page opens the snapshot's repository, to read that one issue. Everything is scoped to the current
organisation: a snapshot or issue of another one is the same 404 as one that does not exist. Viewers may
browse (backend/auth/roles.py); restoring is elsewhere.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Response, abort, redirect, request, stream_with_context, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from backend.auth.roles import least_role
from backend.catalog import QueryError, issue_at, issue_history, search
from backend.catalog.locate import repository_of
from backend.catalog.search import facet_options
from backend.catalog.search import snapshot_issues as snapshot_issues_of
from backend.db.models import CatalogIssue, CatalogSnapshot, Organisation
from backend.repository import Repository, RepositoryError
from backend.restore.diff import diff
from backend.services import services
from backend.ui import plan_form as pf
from backend.ui.adf import render
from backend.ui.shell import current_org, member, organisations, page
from backend.ui.storages import size
from backend.ui.views import bp
from keepstone.render import value_text

PAGE = 100
FILTERS = ("status", "type", "assignee")
KEY = re.compile(r"[A-Z][A-Z0-9_]{0,63}-[1-9][0-9]{0,17}")
PROJECT = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
SNAPSHOT = re.compile(r"[0-9a-f]{64}")
SHOWN_FIELDS = {"issuetype": "Type", "status": "Status", "priority": "Priority", "resolution": "Resolution",
                "assignee": "Assignee", "reporter": "Reporter", "labels": "Labels", "components": "Components",
                "fixVersions": "Fix versions", "created": "Created", "updated": "Updated", "duedate": "Due"}  # fmt: skip
TIMES = {"created", "updated"}


def _org(s: Session) -> Organisation:
    org = current_org(s, organisations(s))
    if org is None:
        abort(404)
    return org


def _snapshot(s: Session, org: Organisation, project: str, snapshot_id: str) -> CatalogSnapshot:
    if not PROJECT.fullmatch(project) or not SNAPSHOT.fullmatch(snapshot_id):
        abort(404)
    snap = s.scalar(
        select(CatalogSnapshot).where(
            CatalogSnapshot.organisation_id == org.id,
            CatalogSnapshot.project == project,
            CatalogSnapshot.snapshot_id == snapshot_id,
        )
    )
    if snap is None:
        abort(404)
    return snap


def _when(org: Organisation):
    """A time as the pages show it, in the organisation's zone: a datetime, or an ISO text (Jira's too)."""

    def shown(value: datetime | str | None) -> str:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        return pf.when(value, org.time_zone)

    return shown


@bp.get("/snapshots")
@member
@least_role("viewer", "browse snapshots")
def snapshots():
    """Every project with snapshots: how many, and the newest (its time, issues and size); one statement
    however many projects (a window over the organisation's snapshots, the first of each project kept)."""
    with services().db.session() as s:
        org = current_org(s, organisations(s))
        if org is None:
            return page("no_org.html", s, title="Snapshots")
        by_project = {"partition_by": CatalogSnapshot.project}
        ranked = (
            select(
                CatalogSnapshot,
                func.count().over(**by_project).label("n"),
                func.row_number()
                .over(**by_project, order_by=(CatalogSnapshot.time.desc(), CatalogSnapshot.id.desc()))
                .label("rank"),
            )
            .where(CatalogSnapshot.organisation_id == org.id)
            .subquery()
        )
        newest = aliased(CatalogSnapshot, ranked)
        rows = s.execute(select(newest, ranked.c.n).where(ranked.c.rank == 1).order_by(ranked.c.project))
        projects = [{"key": snap.project, "snapshots": n, "newest": snap} for snap, n in rows]
        return page("snapshots.html", s, org, projects=projects, when=_when(org), size=size)


@bp.get("/snapshots/<project>")
@member
@least_role("viewer", "browse snapshots")
def project_snapshots(project: str):
    if not PROJECT.fullmatch(project):
        abort(404)
    with services().db.session() as s:
        org = _org(s)
        rows = list(
            s.scalars(
                select(CatalogSnapshot)
                .where(CatalogSnapshot.organisation_id == org.id, CatalogSnapshot.project == project)
                .order_by(CatalogSnapshot.time.desc(), CatalogSnapshot.id.desc())
            )
        )
        if not rows:
            abort(404)
        plans = {p.id: p.name for p in org.plans}
        return page(
            "snapshot_list.html", s, org, project=project, rows=rows, plans=plans, when=_when(org), size=size
        )


def _page_number() -> int:
    """?page= as a number from 0: anything but ASCII digits is the first page; a number too long for any
    snapshot is past the end (an empty page), never an error."""
    raw = request.args.get("page", "")
    if not (raw.isascii() and raw.isdigit()):
        return 0
    return int(raw) if len(raw) <= 12 else 10**12


@bp.get("/snapshots/<project>/<snapshot_id>")
@member
@least_role("viewer", "browse snapshots")
def snapshot_issues(project: str, snapshot_id: str):
    """A snapshot's issues in key order, found by key or summary and filtered by status, type and assignee
    (the catalog's facets of each issue version); 100 a page. The search, the filters and the paging are
    SQL (backend/catalog/search.py): a page costs the same few statements for 40,000 issues as for 40."""
    wanted = request.args.get("q", "").strip()[:200]
    number = _page_number()
    asked = {f: request.args[f] for f in FILTERS if request.args.get(f)}
    with services().db.session() as s:
        org = _org(s)
        snap = _snapshot(s, org, project, snapshot_id)
        options = facet_options(s, snap.id, FILTERS)
        chosen = {f: v for f, v in asked.items() if v in options[f]}  # a value not in the list: ignored
        found = snapshot_issues_of(s, snap.id, needle=wanted, facets=chosen, offset=number * PAGE, limit=PAGE)
        return page(
            "snapshot_issues.html",
            s,
            org,
            snap=snap,
            issues=found.rows,
            total=found.total,
            more=number + 1 if (number + 1) * PAGE < found.total else None,
            q=wanted,
            options=options,
            chosen=chosen,
            when=_when(org),
            size=size,
        )


def _repository(s: Session, org: Organisation, snap: CatalogSnapshot) -> Repository | None:
    return repository_of(s, services().config, org, snap)


def _read(repo: Repository, snapshot, name: str) -> Any:
    entry = snapshot.entry(name)
    return repo.read_json(entry) if entry is not None else None


@bp.get("/snapshots/<project>/<snapshot_id>/issues/<key>")
@member
@least_role("viewer", "browse snapshots")
def snapshot_issue(project: str, snapshot_id: str, key: str):
    if not KEY.fullmatch(key) or not key.startswith(project + "-"):
        abort(404)
    with services().db.session() as s:
        org = _org(s)
        snap = _snapshot(s, org, project, snapshot_id)
        if s.get(CatalogIssue, (snap.id, key)) is None:
            abort(404)
        history = issue_history(s, org.id, key)
        repo = _repository(s, org, snap)
        if repo is None:
            return page("snapshot_issue.html", s, org, snap=snap, key=key, doc=None, history=history,
                        problem="The storage that holds this snapshot cannot be opened now.")  # fmt: skip
        snapshot = repo.snapshot(snap.snapshot_id)
        doc = _read(repo, snapshot, f"issues/{key}") or {}
        fields = doc.get("fields") or {}
        comments = _read(repo, snapshot, f"comments/{key}") or []
        worklogs = _read(repo, snapshot, f"worklogs/{key}") or []
        attachments = [e for e in snapshot.entries.values() if e.name.startswith(f"attachments/{key}/")]
        by_name: dict[str, str] = {}
        for e in attachments:
            by_name.setdefault(str(e.attrs.get("filename")), str(e.attrs.get("id")))

        def media(_media_id: str, alt: str) -> tuple[str, str] | None:
            if alt in by_name:
                href = url_for("ui.snapshot_attachment", project=project, snapshot_id=snapshot_id, key=key,
                               attachment_id=by_name[alt])  # fmt: skip
                return href, alt
            return None

        versions = [h for h in history if h["snapshot_id"] != snap.snapshot_id]
        previous = [h for h in history if h["time"] < _iso_of(history, snap.snapshot_id)]
        changed = None
        compare = request.args.get("compare", "")
        base = next((h for h in history if h["snapshot_id"] == compare), None) or (
            previous[-1] if previous else None
        )
        if base is not None and base["version"] != _version_of(history, snap.snapshot_id):
            try:
                changed = diff(repo, key, base["snapshot_id"], snap.snapshot_id)
                changed["base"] = base
            except RepositoryError:
                changed = None  # the other snapshot is on a storage not reachable now
        when = _when(org)
        return page(
            "snapshot_issue.html",
            s,
            org,
            snap=snap,
            key=key,
            doc=doc,
            summary=fields.get("summary") or "",
            shown=[
                (label, when(fields[name]) if name in TIMES else value_text(fields.get(name)))
                for name, label in SHOWN_FIELDS.items()
                if value_text(fields.get(name))
            ],
            description=render(fields.get("description"), media) if fields.get("description") else None,
            comments=[{**c, "html": render(c.get("body"), media)} for c in comments if isinstance(c, dict)],
            worklogs=[w for w in worklogs if isinstance(w, dict)],
            attachments=attachments,
            history=history,
            versions=versions,
            changed=changed,
            problem="",
            when=when,
            size=size,
            value_text=value_text,
        )


def _iso_of(history: list[dict[str, Any]], snapshot_id: str) -> str:
    return next((h["time"] for h in history if h["snapshot_id"] == snapshot_id), "")


def _version_of(history: list[dict[str, Any]], snapshot_id: str) -> str:
    return next((h["version"] for h in history if h["snapshot_id"] == snapshot_id), "")


@bp.get("/snapshots/<project>/<snapshot_id>/issues/<key>/attachments/<attachment_id>")
@member
@least_role("viewer", "download attachments")
def snapshot_attachment(project: str, snapshot_id: str, key: str, attachment_id: str):
    if not KEY.fullmatch(key) or not key.startswith(project + "-") or not attachment_id.isdigit():
        abort(404)
    with services().db.session() as s:
        org = _org(s)
        snap = _snapshot(s, org, project, snapshot_id)
        repo = _repository(s, org, snap)
        if repo is None:
            abort(503)
        entry = repo.snapshot(snap.snapshot_id).entry(f"attachments/{key}/{attachment_id}")
    if entry is None:
        abort(404)
    name = str(entry.attrs.get("filename") or f"attachment-{attachment_id}")
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", name) or "attachment"
    headers = {  # RFC 6266: an ASCII fallback and the UTF-8 name
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}",
        "Content-Length": str(entry.size),
        "X-Content-Type-Options": "nosniff",
    }
    return Response(stream_with_context(repo.open_stream(entry)), mimetype="application/octet-stream",
                    headers=headers)  # fmt: skip


@bp.get("/search/as-of")
@member
@least_role("viewer", "browse snapshots")
def issue_as_of():
    """What an issue looked like on a date: the newest snapshot holding it at or before the end of that day
    (in the organisation's zone); the search page with the reason when there is none."""
    key = request.args.get("key", "").strip().upper()
    day = request.args.get("date", "")
    with services().db.session() as s:
        org = current_org(s, organisations(s))
        if org is None:
            abort(404)
        error = ""
        try:
            moment = datetime.combine(date.fromisoformat(day), time.max, ZoneInfo(org.time_zone))
        except ValueError:
            error = "give a date like 2026-11-30"
        if not KEY.fullmatch(key):
            error = "give an issue key like ABC-12"
        if not error:
            found = issue_at(s, org.id, key, moment)
            if found is not None:
                return redirect(url_for("ui.snapshot_issue", project=key.rsplit("-", 1)[0],
                                        snapshot_id=found["snapshot_id"], key=key), code=303)  # fmt: skip
            error = f"no snapshot held {key} on or before {day}"
        return page("search.html", s, org, q="", hits=[], error="", as_of_error=error, key=key, day=day,
                    when=_when(org))  # fmt: skip


@bp.get("/search")
@member
@least_role("viewer", "search snapshots")
def search_page():
    with services().db.session() as s:
        org = current_org(s, organisations(s))
        if org is None:
            return page("no_org.html", s, title="Search")
        q = request.args.get("q", "")
        hits, error = [], ""
        if "q" in request.args:  # asked (a blank phrase is told so); a first visit is just the form
            try:
                hits = search(s, org.id, q)
            except QueryError as e:
                error = str(e)
        return page("search.html", s, org, q=q, hits=hits, error=error, when=_when(org))
