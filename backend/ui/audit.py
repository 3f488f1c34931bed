"""The Audit page: the organisation's audit log newest first, with filters, paging and CSV/JSON exports.

Admins only (`least_role`). The filters are the API's (backend/audit/query.py: actor, action, target,
from, to) and travel in the query string, so a filtered view can be bookmarked and its export links
carry the same filters; an invalid filter shows its error beside the field and lists nothing.
"""

from __future__ import annotations

from typing import Any

from flask import abort, request
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from backend.api.audit import download
from backend.audit import query as aq
from backend.auth.roles import least_role
from backend.services import services
from backend.ui import plan_form as pf
from backend.ui.shell import current_org, member, organisations, page
from backend.ui.views import bp

PAGE_SIZE = 50
ACTION_FAMILIES = [
    ("plan", "Plans"),
    ("schedule", "Schedules (from the panel)"),
    ("storage", "Storages"),
    ("member", "Members"),
    ("token", "Jira token"),
    ("backup", "Backup now"),
    ("run", "Runs"),
    ("restore", "Restores"),
    ("forget", "Forget"),
    ("prune", "Prune"),
    ("signin", "Sign-ins"),
    ("sso", "Jira hand-offs (SSO)"),
    ("notification", "Notifications"),
    ("recovery", "Recovery passphrase"),
    ("organisation", "Organisation"),
]
LOZENGE = {
    "create": "success",
    "delete": "removed",
    "failed": "removed",
    "ok": "success",
    "now": "inprogress",
}


def _filters() -> tuple[dict[str, Any], dict[str, list[str]]]:
    try:
        return aq.AuditFilters().load_filters(request.args), {}
    except ValidationError as e:
        messages = e.messages if isinstance(e.messages, dict) else {"_": e.messages}
        return {}, {k: v if isinstance(v, list) else [str(v)] for k, v in messages.items()}


def _before() -> int | None:
    value = request.args.get("before", "")
    return int(value) if value.isdigit() and len(value) <= 18 else None


def _kept_args(**extra: Any) -> dict[str, str]:
    """The filters of this view (for paging and export links), plus `extra`."""
    out = {k: v for k, v in request.args.items() if k in (*aq.FILTER_KEYS, "org") and v}
    out.update({k: str(v) for k, v in extra.items() if v is not None})
    return out


def lozenge_of(action: str) -> str:
    return LOZENGE.get(action.rsplit(".", 1)[-1], "")


def shown(value: Any) -> str:
    """A before/after value as the page shows it."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "(empty)"
    return str(value) if value != "" else "(empty)"


@bp.get("/audit")
@member
@least_role("admin", "see the audit log")
def audit():
    with services().db.session() as s:
        org = current_org(s, organisations(s))
        if org is None:
            return page("no_org.html", s, title="Audit")
        filters, errors = _filters()
        rows: list = []
        older = None
        if not errors:
            query = aq.filtered(aq.scoped(s, org), filters)
            rows, older = aq.page(s, query, PAGE_SIZE, _before())
        return page(
            "audit.html",
            s,
            org,
            rows=rows,
            v=MultiDict(request.args),
            errors=errors,
            filtered=bool(filters),
            older=_kept_args(before=older) if older else None,
            newest=_kept_args() if _before() else None,
            export_args=_kept_args(),
            families=ACTION_FAMILIES,
            lozenge_of=lozenge_of,
            shown=shown,
            when=lambda d: pf.when(d, org.time_zone),
        )


@bp.get("/audit/export.<fmt>")
@member
@least_role("admin", "export the audit log")
def audit_export(fmt: str):
    if fmt not in ("csv", "json"):
        abort(404)
    with services().db.session() as s:
        org = current_org(s, organisations(s))
        if org is None:
            abort(404)
        filters, errors = _filters()
        if errors:
            abort(400)
        return download(org.id, org.cloud_id, filters, fmt)
