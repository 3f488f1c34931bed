"""Who is calling and what they may touch: the connector for one tenant (service JWT) or a member's session.

The API guard (backend/api/__init__.py) runs these in a fixed order before any view: authenticate (401),
authorise the tenant and the objects named in the URL (404, the same for "not yours" and "not there"),
then the caller's role in that organisation against the route's least role (403, backend/auth/roles.py),
and only then does a view parse its body and look anything else up. `guard_page` does the same for the
pages: signed in, the named object among the session's organisations (404), then the role (403).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import abort, current_app, g, render_template, request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.roles import PUBLIC_ROLE, RANK, Rule, allows, refusal, rule_for
from backend.db.ids import is_id
from backend.db.models import Membership, Organisation, Plan, Run, StorageRecord
from backend.errors import Forbidden, NotFound, Unauthorized
from backend.services import services

CLOUD_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
# URL parameters that name an object, with its model and its kind of public id.
OBJECTS: dict[str, tuple[type, str]] = {
    "plan_id": (Plan, "plan"),
    "run_id": (Run, "run"),
    "storage_id": (StorageRecord, "storage"),
}


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the connector acting for one tenant, or a signed-in user."""

    kind: str  # "service" | "user"
    tenants: frozenset[str]

    def may(self, cloud_id: str) -> bool:
        return cloud_id in self.tenants


def authenticate() -> Caller:
    """The caller of this request, or 401. A bearer token, if sent, must be valid: it is never ignored."""
    header = request.headers.get("Authorization", "")
    if header:
        if not header.startswith("Bearer "):
            raise Unauthorized("use a Bearer token")
        claims = services().tokens.verify(
            header[7:].strip(), services().config.service_audience, "service+jwt"
        )
        g.service_claims = claims
        return Caller("service", frozenset({claims["tenant"]}))
    if current_user.is_authenticated:
        return Caller("user", frozenset(c for c in current_user.cloud_ids if current_user.can_see(c)))
    raise Unauthorized("sign in, or call with the connector's service token")


def caller() -> Caller:
    """The caller the guard authenticated for this request."""
    if "caller" not in g:
        g.caller = authenticate()
    return g.caller


def authorise_tenant(cloud_id: str) -> None:
    """404 unless the caller may act for this tenant; decided without looking anything up."""
    if not CLOUD_ID.match(cloud_id) or not caller().may(cloud_id):
        raise NotFound(f"no organisation {cloud_id[:64]}")


def authorise_object(s: Session, param: str, public_id: str) -> Any:
    """The object a URL names, if it belongs to one of the caller's tenants; else 404, whether or not it exists."""
    model, kind = OBJECTS[param]
    missing = NotFound(f"no {kind} {public_id[:64]}")
    if not is_id(kind, public_id):
        raise missing
    obj = s.scalar(
        select(model)
        .join(Organisation, Organisation.id == model.organisation_id)
        .where(model.public_id == public_id, Organisation.cloud_id.in_(caller().tenants))
    )
    if obj is None:
        raise missing
    return obj


def role_in(s: Session, org_id: int | None) -> str | None:
    """The signed-in user's role in one organisation (None: not a member, or no organisation)."""
    if org_id is None or not current_user.is_authenticated:
        return None
    return s.scalar(
        select(Membership.role).where(
            Membership.user_id == current_user.user_id, Membership.organisation_id == org_id
        )
    )


def authorise_role(s: Session, rule: Rule, org_ids: set[int]) -> None:
    """403 unless the caller's role in the organisation the URL names is at least the route's.

    The connector acts as admin of its one tenant (already authorised). A route naming no organisation
    is open to any member at the viewer level only.
    """
    if rule.role == PUBLIC_ROLE or caller().kind == "service":
        return
    if not org_ids:
        role = "viewer" if caller().tenants else None
    else:
        roles = [role_in(s, org_id) for org_id in org_ids]
        role = min(roles, key=lambda r: RANK.get(r or "", -1))
    g.role = role
    if not allows(role, rule.role):
        raise Forbidden(refusal(role, rule), code="role")


def guard(view_args: dict[str, Any]) -> None:
    """Authenticate, authorise every tenant and object the URL names (stored in g), then the role."""
    caller()
    rule = rule_for(request.endpoint)
    if rule is None:  # deny by default: a route nobody gave a rule is refused to everyone
        raise Forbidden("this route has no access rule yet (see backend/auth/roles.py)", code="no_rule")
    org_ids: set[int] = set()
    with services().db.session() as s:
        if "cloud_id" in view_args:
            authorise_tenant(view_args["cloud_id"])
            org_id = s.scalar(select(Organisation.id).where(Organisation.cloud_id == view_args["cloud_id"]))
            if org_id is not None:
                org_ids.add(org_id)
        for param in [p for p in OBJECTS if p in view_args]:
            obj = authorise_object(s, param, view_args[param])
            g.setdefault("objects", {})[param] = obj.id
            org_ids.add(obj.organisation_id)
        authorise_role(s, rule, org_ids)


def _page_org(s: Session, view_args: dict[str, Any]) -> int | None:
    """The organisation a page acts on: the URL's object's (404 unless it is the session's), else the current one."""
    from backend.ui.shell import current_org, organisations, visible

    for param, (model, kind) in OBJECTS.items():
        if param in view_args:
            public_id = str(view_args[param])
            org_id = None
            if is_id(kind, public_id):
                org_id = s.scalar(
                    select(model.organisation_id)
                    .join(Organisation, Organisation.id == model.organisation_id)
                    .where(model.public_id == public_id, Organisation.cloud_id.in_(visible()))
                )
            if org_id is None:
                abort(404)
            return org_id
    org = current_org(s, organisations(s))
    return org.id if org is not None else None


def guard_page() -> Any:
    """Before every non-API view: its rule (none: 403), signed in (else the sign-in page), then the role."""
    endpoint = request.endpoint
    if endpoint is None or endpoint.startswith("api."):
        return None  # no route (a 404 follows), or the API's own guard
    rule = rule_for(endpoint)
    if rule is None:
        return _refused("This page has no access rule yet, so nobody may open it.")
    if rule.role == PUBLIC_ROLE:
        return None
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    with services().db.session() as s:
        org_id = _page_org(s, request.view_args or {})
        # No organisation at all: the page can only say so (no_org.html), which any signed-in user may see.
        role = role_in(s, org_id) if org_id is not None else "viewer"
    g.role = role
    if not allows(role, rule.role):
        return _refused(
            refusal(role, rule) + " An admin of the organisation can change your role (Settings)."
        )
    return None


def _refused(text: str) -> tuple[str, int]:
    """The 403 page: what this role may not do, in words; nothing of the request is carried out."""
    from backend.ui.shell import NAV, current_org, organisations

    if not current_user.is_authenticated:
        return render_template("error.html", status=403, title="Not allowed", text=text), 403
    with services().db.session() as s:
        orgs = organisations(s)
        body = render_template(
            "error.html",
            status=403,
            title="Not allowed",
            text=text,
            nav=NAV,
            orgs=orgs,
            org=current_org(s, orgs),
        )
    return body, 403


def organisation(s: Session, cloud_id: str) -> Organisation:
    """The organisation of a guarded route (its access was checked by the guard)."""
    authorise_tenant(cloud_id)
    org = s.scalar(select(Organisation).where(Organisation.cloud_id == cloud_id))
    if org is None:
        raise NotFound(f"no organisation {cloud_id}")
    return org


def target(s: Session, param: str) -> Any:
    """The object named by a guarded URL parameter, loaded in this session."""
    model, _ = OBJECTS[param]
    return s.get(model, g.objects[param])
