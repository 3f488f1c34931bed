"""Who may touch an organisation: the connector for that tenant (service JWT) or a member's session."""

from __future__ import annotations

from typing import Any

from flask import g, request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.models import Organisation
from backend.errors import Forbidden, NotFound, Unauthorized
from backend.services import services


def service_claims() -> dict[str, Any] | None:
    """The verified service token of this request, if it carries one."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    if not header.startswith("Bearer "):
        raise Unauthorized("use a Bearer token")
    if "service_claims" not in g:
        g.service_claims = services().tokens.verify(
            header[7:].strip(), services().config.service_audience, "service+jwt"
        )
    return g.service_claims


def check_tenant(cloud_id: str) -> None:
    """Raise unless the caller may act for this tenant."""
    claims = service_claims()
    if claims is not None:
        if claims["tenant"] != cloud_id:
            raise Forbidden("this token is for another organisation")
        return
    if not current_user.is_authenticated:
        raise Unauthorized("sign in, or call with the connector's service token")
    if not current_user.can_see(cloud_id):
        raise NotFound(f"no organisation {cloud_id}")


def organisation(s: Session, cloud_id: str) -> Organisation:
    """The organisation, after the access check."""
    check_tenant(cloud_id)
    org = s.scalar(select(Organisation).where(Organisation.cloud_id == cloud_id))
    if org is None:
        raise NotFound(f"no organisation {cloud_id}")
    return org


def owned(s: Session, model, object_id: int, what: str):
    """An object of an organisation (plan, run) and that organisation, if the caller may see them.

    Another tenant's object answers 404 like a missing one, so ids reveal nothing.
    """
    obj = s.get(model, object_id)
    if obj is None:
        raise NotFound(f"no {what} {object_id}")
    org = s.get(Organisation, obj.organisation_id)
    try:
        check_tenant(org.cloud_id)
    except (Forbidden, NotFound):
        raise NotFound(f"no {what} {object_id}") from None
    return obj, org
