"""Browser sessions for the management UI (flask-login), backed by a server-side record per sign-in.

The signed Flask cookie carries flask-login's user id and a random session id; the `browser_sessions`
row for that id (keyed by its SHA-256) is what makes the cookie count. The user loader refuses a cookie
whose row is missing, revoked (logout), idle longer than `session_idle_seconds` or older than
`session_absolute_seconds`, so a cookie captured before logout opens nothing after it. Last-seen is
written at most every `session_touch_seconds`, not on every request.

The session cookie is `Secure` per `Config.cookie_secure`: "on" always, "auto" when the request came
over https (with `trusted_proxies`, X-Forwarded-Proto counts), "off" never.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from flask import Flask, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, login_user, logout_user
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.db.models import BrowserSession, Membership, Organisation, User

login_manager = LoginManager()
login_manager.login_view = "ui.login"
SID = "sid"  # the key of the random session id inside the signed cookie


class SessionUser(UserMixin):
    def __init__(self, user: User, cloud_ids: list[str], tenant: str | None) -> None:
        self.id = str(user.id)
        self.user_id = user.id
        self.display_name = user.display_name or user.email or user.jira_account_id or "user"
        self.cloud_ids = cloud_ids
        self.tenant = tenant

    def can_see(self, cloud_id: str) -> bool:
        """Members only, and a session opened by an SSO hand-off is pinned to that one tenant."""
        return cloud_id in self.cloud_ids and (self.tenant is None or self.tenant == cloud_id)


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the Secure flag decided per request (Config.cookie_secure)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        mode = app.extensions["keepstone"].config.cookie_secure
        if mode == "auto":
            return request.is_secure
        return mode == "on"


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _memberships(s: Session, user_id: int) -> list[str]:
    return list(
        s.scalars(
            select(Organisation.cloud_id)
            .join(Membership, Membership.organisation_id == Organisation.id)
            .where(Membership.user_id == user_id)
        )
    )


def start_session(s: Session, user: User, tenant: str | None = None) -> None:
    """Sign this browser in as `user` (pinned to `tenant` if given): a new record, a new cookie."""
    from backend.services import services

    config = services().config
    now = datetime.now(UTC)
    # Sessions past their absolute lifetime can never count again: drop them while we are here.
    s.execute(
        delete(BrowserSession).where(
            BrowserSession.created < now - timedelta(seconds=config.session_absolute_seconds)
        )
    )
    sid = secrets.token_urlsafe(32)
    s.add(BrowserSession(id=_digest(sid), user_id=user.id, tenant=tenant, created=now, last_seen=now))
    s.commit()
    session.clear()  # no state of an earlier session (or a planted one) survives a sign-in
    session[SID] = sid
    login_user(SessionUser(user, _memberships(s, user.id), tenant))


def end_session() -> None:
    """Sign this browser out: revoke its record on the server, then forget the cookie's contents."""
    from backend.services import services

    sid = session.get(SID)
    if isinstance(sid, str):
        with services().db.session() as s:
            record = s.get(BrowserSession, _digest(sid))
            if record is not None and record.revoked_at is None:
                record.revoked_at = datetime.now(UTC)
                s.commit()
    logout_user()
    session.clear()


def load_session_user(user_id: str) -> SessionUser | None:
    """flask-login's user loader: the user, only while the cookie's session record still counts."""
    from backend.services import services

    sid = session.get(SID)
    if not isinstance(sid, str) or not user_id.isdigit():
        return None
    config = services().config
    now = datetime.now(UTC)
    with services().db.session() as s:
        record = s.get(BrowserSession, _digest(sid))
        if record is None or record.revoked_at is not None or record.user_id != int(user_id):
            return None
        last_seen = _aware(record.last_seen)
        if now - last_seen > timedelta(seconds=config.session_idle_seconds):
            return None
        if now - _aware(record.created) > timedelta(seconds=config.session_absolute_seconds):
            return None
        user = s.get(User, record.user_id)
        if user is None:
            return None
        if now - last_seen >= timedelta(seconds=config.session_touch_seconds):
            record.last_seen = now
            s.commit()
        return SessionUser(user, _memberships(s, user.id), record.tenant)


def init_app(app: Flask) -> None:
    app.session_interface = CookieSessionInterface()
    login_manager.init_app(app)
    login_manager.user_loader(load_session_user)
