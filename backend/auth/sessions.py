"""Browser sessions for the management UI (flask-login), scoped to the organisation they were opened for."""

from __future__ import annotations

from flask import Flask, session
from flask_login import LoginManager, UserMixin
from sqlalchemy import select

from backend.db.models import Membership, Organisation, User

login_manager = LoginManager()
login_manager.login_view = "ui.login"


class SessionUser(UserMixin):
    def __init__(self, user: User, cloud_ids: list[str]) -> None:
        self.id = str(user.id)
        self.user_id = user.id
        self.display_name = user.display_name or user.email or user.jira_account_id or "user"
        self.cloud_ids = cloud_ids

    def can_see(self, cloud_id: str) -> bool:
        """Members only, and a session opened by an SSO hand-off is pinned to that one tenant."""
        pinned = session.get("tenant")
        return cloud_id in self.cloud_ids and (pinned is None or pinned == cloud_id)


def load_session_user(user_id: str) -> SessionUser | None:
    from backend.services import services

    with services().db.session() as s:
        user = s.get(User, int(user_id)) if user_id.isdigit() else None
        if user is None:
            return None
        cloud_ids = list(
            s.scalars(
                select(Organisation.cloud_id)
                .join(Membership, Membership.organisation_id == Organisation.id)
                .where(Membership.user_id == user.id)
            )
        )
        return SessionUser(user, cloud_ids)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(load_session_user)
