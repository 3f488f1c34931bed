"""Who is calling and what they may touch: the connector for one tenant (service JWT) or a member's session.

The API guard (backend/api/__init__.py) runs these in a fixed order before any view: authenticate (401),
authorise the tenant and the objects named in the URL (404, the same for "not yours" and "not there"),
and only then does a view parse its body and look anything else up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import g, request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.ids import is_id
from backend.db.models import Organisation, Plan, Run, StorageRecord
from backend.errors import NotFound, Unauthorized
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


def guard(view_args: dict[str, Any]) -> None:
    """Authenticate, then authorise every tenant and object the URL names (stored in g for the view)."""
    caller()
    if "cloud_id" in view_args:
        authorise_tenant(view_args["cloud_id"])
    names = [p for p in OBJECTS if p in view_args]
    if names:
        with services().db.session() as s:
            for param in names:
                g.setdefault("objects", {})[param] = authorise_object(s, param, view_args[param]).id


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
