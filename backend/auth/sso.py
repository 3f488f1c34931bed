"""POST /sso: the connector's one-time hand-off becomes a first-party session for one tenant.

Order: the page that POSTed must be the connector's (Origin, or Referer when a browser sends no Origin:
login CSRF), then the token (RS256, typ/aud/iss, lifetime), then the tenant, then the jti is burnt.

The role: the connector's `jira_admin` claim says whether Jira counts the user as a Jira administrator
(the panel is a Jira admin page, which Jira shows to administrators only). An administrator becomes an
admin member, anyone else (or a token without the claim) a viewer. A member made this way (`source`
jira) follows that claim at every hand-off; a role an admin gave (`source` manual) is kept.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Blueprint, make_response, redirect, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.auth.sessions import start_session
from backend.config import origin_of
from backend.db.models import Membership, Organisation, UsedToken, User
from backend.errors import Forbidden, Unauthorized
from backend.services import services

bp = Blueprint("sso", __name__)


def check_origin() -> None:
    """Refuse a hand-off whose form was not served by the connector (a cross-site login CSRF).

    Browsers send `Origin` on every cross-origin POST; `Referer` is the fallback for one that does not.
    A request with neither, or with `Origin: null` (a sandboxed or no-referrer page), is refused.
    """
    allowed = services().config.sso_origins
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        origin = origin_of(referer) if referer else ""
    else:
        origin = origin_of(origin)
    if not origin or origin not in allowed:
        raise Forbidden("the hand-off must come from the Keepstone connector's page", code="bad_origin")


# The pages a hand-off may open instead of the dashboard: a run (the panel's "Review in Keepstone").
TARGET = re.compile(r"/runs/run_[a-z2-7]{1,40}")


def implied_role(claims: dict) -> str:
    """The role Jira's permissions imply: Jira administrators are admins, everyone else a viewer."""
    return "admin" if claims.get("jira_admin") is True else "viewer"


@bp.post("/sso")
def sso():
    check_origin()
    token = request.form.get("token", "")
    if not token:
        raise Unauthorized("no hand-off token")
    svc = services()
    claims = svc.tokens.verify(token, svc.config.sso_audience, "sso-handoff+jwt")
    with svc.db.session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == claims["tenant"]))
        if org is None or org.state != "active":
            raise Forbidden("the organisation is not installed")
        try:  # burn the jti: a second insert of the same id fails, atomically, in any process
            s.add(UsedToken(jti=str(claims["jti"]), expires=datetime.fromtimestamp(claims["exp"], UTC)))
            s.flush()
        except IntegrityError:
            s.rollback()
            raise Unauthorized("this hand-off token was already used") from None
        user = s.scalar(select(User).where(User.jira_account_id == claims["sub"]))
        if user is None:
            user = User(jira_account_id=claims["sub"], display_name=str(claims.get("name") or "Jira admin"))
            s.add(user)
            s.flush()
        implied = implied_role(claims)
        membership = s.scalar(
            select(Membership).where(Membership.user_id == user.id, Membership.organisation_id == org.id)
        )
        if membership is None:
            s.add(Membership(user_id=user.id, organisation_id=org.id, role=implied, source="jira"))
        elif membership.source == "jira":
            membership.role = implied
        s.commit()
        start_session(s, user, tenant=org.cloud_id)
    target = claims.get("target")  # signed by the connector; checked here again (never an open redirect)
    response = make_response(
        redirect(target if isinstance(target, str) and TARGET.fullmatch(target) else "/", code=303)
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
