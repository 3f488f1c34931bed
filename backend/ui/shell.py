"""What every signed-in page shares: the navigation, the current organisation, access to plans.

Access follows the API's rules (backend/auth/access.py): a session sees the organisations it is a member
of, and only its pinned tenant after an SSO hand-off. The current organisation is `?org=` or the one
chosen with the switcher (kept in the signed session), always checked against that list; a plan is looked
up scoped to those organisations, so "not yours" and "not there" are the same 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, render_template, request, session
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.ids import is_id
from backend.db.models import Organisation, Plan

NAV: list[tuple[str, str]] = [
    ("ui.dashboard", "Dashboard"),
    ("ui.plans", "Plans"),
    ("ui.storages", "Storages"),
    ("ui.runs", "Runs"),
    ("ui.snapshots", "Snapshots"),
    ("ui.restore", "Restore"),
    ("ui.notifications", "Notifications"),
    ("ui.audit", "Audit"),
    ("ui.settings", "Settings"),
]
ORG_KEY = "org"  # the session key of the organisation chosen with the switcher


def visible() -> list[str]:
    """The cloud ids this session may act for (a pinned session: exactly one)."""
    return [c for c in current_user.cloud_ids if current_user.can_see(c)]


def organisations(s: Session) -> list[Organisation]:
    ids = visible()
    if not ids:
        return []
    return list(
        s.scalars(
            select(Organisation)
            .where(Organisation.cloud_id.in_(ids))
            .order_by(Organisation.display_name, Organisation.cloud_id)
        )
    )


def current_org(s: Session, orgs: list[Organisation]) -> Organisation | None:
    """?org=, else the switcher's choice, else the first; never one outside the session's list."""
    by_id = {o.cloud_id: o for o in orgs}
    for wanted in (request.args.get("org"), session.get(ORG_KEY)):
        if isinstance(wanted, str) and wanted in by_id:
            return by_id[wanted]
    return orgs[0] if orgs else None


def member(view: Callable[..., Any]) -> Callable[..., Any]:
    """Signed in (else the login page), then the view."""
    return login_required(view)


def plan_of(s: Session, plan_id: str) -> Plan:
    """A plan of one of this session's organisations, else 404 (the same whether or not it exists)."""
    if not is_id("plan", plan_id):
        abort(404)
    ids = visible()
    plan = s.scalar(
        select(Plan)
        .join(Organisation, Organisation.id == Plan.organisation_id)
        .where(Plan.public_id == plan_id, Organisation.cloud_id.in_(ids))
    )
    if plan is None:
        abort(404)
    return plan


def page(template: str, s: Session, org: Organisation | None = None, **context: Any) -> str:
    """Render a signed-in page with the navigation, the organisation and the switcher."""
    orgs = organisations(s)
    if org is None:
        org = current_org(s, orgs)
    return render_template(template, nav=NAV, orgs=orgs, org=org, user=current_user, **context)
