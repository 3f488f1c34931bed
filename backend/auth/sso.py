"""POST /sso: the connector's one-time hand-off becomes a first-party session for one tenant."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, make_response, redirect, request, session
from flask_login import login_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.db.models import Membership, Organisation, UsedToken, User
from backend.errors import Forbidden, Unauthorized
from backend.services import services

bp = Blueprint("sso", __name__)


@bp.post("/sso")
def sso():
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
        if (
            s.scalar(
                select(Membership).where(Membership.user_id == user.id, Membership.organisation_id == org.id)
            )
            is None
        ):
            s.add(Membership(user_id=user.id, organisation_id=org.id))
        s.commit()
        from backend.auth.sessions import load_session_user

        session.clear()
        session["tenant"] = org.cloud_id
        login_user(load_session_user(str(user.id)))
    response = make_response(redirect("/", code=303))
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
