"""Members of an organisation, their roles, and invitations of local users by email.

Rules kept here for the API and the Settings page alike (backend/ui/settings.py):
- an organisation always keeps an admin: the last one can be neither demoted nor removed (checked in the
  same statement that changes the row, with the organisation's row locked on PostgreSQL, so two admins
  demoting each other at once leave one);
- a role an admin gives is kept (`source` manual); a member made by More features follows what Jira says
  of them at each hand-off (`source` jira) until an admin changes their role;
- an invitation is a random one-time token shown once to the admin (there is no mail yet); only its SHA-256
  is stored; it expires after seven days; accepting it sets the new account's password, or, for an email
  that already has an account, needs that account signed in (so a link never resets anyone's password).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, jsonify, url_for
from marshmallow import Schema, fields, validate
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from backend.api.common import iso, load
from backend.auth.access import organisation
from backend.auth.roles import ROLES
from backend.db.ids import is_id
from backend.db.models import Invitation, Membership, Organisation, User
from backend.errors import Conflict, Invalid, NotFound
from backend.services import services

bp = Blueprint("members", __name__)
INVITATION_DAYS = 7
MIN_PASSWORD = 12


class MemberOut(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True, allow_none=True)
    jira_account_id = fields.String(required=True, allow_none=True)
    role = fields.String(required=True)
    source = fields.String(required=True)


class MemberList(Schema):
    items = fields.List(fields.Nested(MemberOut), required=True)


class RoleIn(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class InvitationIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=255))
    role = fields.String(load_default="viewer", validate=validate.OneOf(ROLES))


class InvitationOut(Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True)
    invited_by = fields.String(required=True)
    created = fields.DateTime(required=True)
    expires = fields.DateTime(required=True)
    token = fields.String(metadata={"description": "only in the answer that creates it: the one-time token"})
    accept_url = fields.String(metadata={"description": "only when created: the link to give the invitee"})


class InvitationList(Schema):
    items = fields.List(fields.Nested(InvitationOut), required=True)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- members --------------------------------------------------------------------------------------------


def members(s: Session, org: Organisation) -> list[tuple[Membership, User]]:
    rows = s.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organisation_id == org.id)
        .order_by(func.lower(User.display_name), User.id)
    )
    return [(m, u) for m, u in rows]


def member_json(m: Membership, u: User) -> dict[str, Any]:
    return {
        "id": m.public_id,
        "name": u.display_name or u.email or u.jira_account_id or "",
        "email": u.email,
        "jira_account_id": u.jira_account_id,
        "role": m.role,
        "source": m.source,
    }


def _member(s: Session, org: Organisation, member_id: str) -> Membership:
    found = (
        s.scalar(
            select(Membership).where(Membership.public_id == member_id, Membership.organisation_id == org.id)
        )
        if is_id("member", member_id)
        else None
    )
    if found is None:
        raise NotFound(f"no member {member_id[:64]}")
    return found


def _lock(s: Session, org: Organisation) -> None:
    """Serialise changes of one organisation's members (PostgreSQL; SQLite serialises every writer)."""
    s.execute(select(Organisation.id).where(Organisation.id == org.id).with_for_update())


def _other_admins(org_id: int, member_pk: int):
    return (
        select(func.count())
        .select_from(Membership)
        .where(Membership.organisation_id == org_id, Membership.role == "admin", Membership.id != member_pk)
        .scalar_subquery()
    )


def set_role(s: Session, org: Organisation, member_id: str, role: str) -> Membership:
    """Give a member a role (kept from now on: source manual); the last admin stays admin (409)."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", {"role": [f"one of {', '.join(ROLES)}"]})
    _lock(s, org)
    m = _member(s, org, member_id)
    condition = Membership.id == m.id
    if role != "admin":  # demoting: only while another admin remains, decided in the UPDATE itself
        condition = and_(condition, (Membership.role != "admin") | (_other_admins(org.id, m.id) > 0))
    done = s.execute(
        update(Membership)
        .where(condition)
        .values(role=role, source="manual")
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        s.rollback()
        raise Conflict("the last admin cannot be demoted: make another member admin first", code="last_admin")
    s.commit()
    s.refresh(m)
    return m


def remove_member(s: Session, org: Organisation, member_id: str) -> None:
    """Remove a member (their sessions lose this organisation at once); never the last admin (409)."""
    _lock(s, org)
    m = _member(s, org, member_id)
    done = s.execute(
        delete(Membership)
        .where(Membership.id == m.id, (Membership.role != "admin") | (_other_admins(org.id, m.id) > 0))
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        s.rollback()
        raise Conflict("the last admin cannot be removed: make another member admin first", code="last_admin")
    s.commit()


# --- invitations ----------------------------------------------------------------------------------------


def invitation_json(inv: Invitation, token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": inv.public_id,
        "email": inv.email,
        "role": inv.role,
        "invited_by": inv.invited_by,
        "created": iso(inv.created),
        "expires": iso(inv.expires),
    }
    if token is not None:
        out["token"] = token
        out["accept_url"] = url_for("ui.accept_invitation", token=token, _external=True)
    return out


def pending(s: Session, org: Organisation) -> list[Invitation]:
    now = datetime.now(UTC)
    rows = s.scalars(
        select(Invitation)
        .where(
            Invitation.organisation_id == org.id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .order_by(Invitation.created.desc())
    )
    return [i for i in rows if _aware(i.expires) > now]


def invite(s: Session, org: Organisation, email: str, role: str, invited_by: str) -> tuple[Invitation, str]:
    """A new invitation and its one-time token (returned once, stored only as a hash); an earlier open one
    for the same email is withdrawn. 409 if the email is a member already."""
    email = email.strip().lower()
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", {"role": [f"one of {', '.join(ROLES)}"]})
    already = s.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organisation_id == org.id, func.lower(User.email) == email)
    )
    if already is not None:
        raise Conflict(f"{email} is a member already", {"email": ["a member already"]}, code="member")
    now = datetime.now(UTC)
    s.execute(
        update(Invitation)
        .where(
            Invitation.organisation_id == org.id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = secrets.token_urlsafe(32)
    inv = Invitation(
        organisation_id=org.id,
        email=email,
        role=role,
        token_hash=digest(token),
        invited_by=invited_by[:255],
        created=now,
        expires=now + timedelta(days=INVITATION_DAYS),
    )
    s.add(inv)
    s.commit()
    return inv, token


def revoke(s: Session, org: Organisation, invitation_id: str) -> None:
    inv = (
        s.scalar(
            select(Invitation).where(
                Invitation.public_id == invitation_id,
                Invitation.organisation_id == org.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
        )
        if is_id("invitation", invitation_id)
        else None
    )
    if inv is None:
        raise NotFound(f"no open invitation {invitation_id[:64]}")
    inv.revoked_at = datetime.now(UTC)
    s.commit()


@dataclass
class Open:
    """An invitation that may still be accepted, with what the accept page needs to know."""

    invitation: Invitation
    organisation: Organisation
    existing: User | None  # the account that already has this email, if any


def open_invitation(s: Session, token: str) -> Open | None:
    """The invitation of a token if it is unused, not withdrawn and not expired; else None (one answer for all)."""
    if not 20 <= len(token) <= 128:
        return None
    inv = s.scalar(select(Invitation).where(Invitation.token_hash == digest(token)))
    if inv is None or inv.accepted_at is not None or inv.revoked_at is not None:
        return None
    if _aware(inv.expires) <= datetime.now(UTC):
        return None
    org = s.get(Organisation, inv.organisation_id)
    if org is None:
        return None
    existing = s.scalar(select(User).where(func.lower(User.email) == inv.email))
    return Open(inv, org, existing)


def accept(s: Session, found: Open, *, signed_in_user_id: int | None, name: str, password: str) -> User:
    """Accept an open invitation: the account (new, with this password; or the signed-in existing one) becomes
    a member with the invitation's role. The token is burnt by a conditional UPDATE: it works once."""
    inv, user = found.invitation, found.existing
    errors: dict[str, list[str]] = {}
    if user is not None:
        if signed_in_user_id != user.id:
            raise Invalid(
                f"{inv.email} has an account already: sign in with it, then open this link again",
                {"_schema": ["sign in first"]},
                code="sign_in_first",
            )
    else:
        if len(password) < MIN_PASSWORD:
            errors["password"] = [f"at least {MIN_PASSWORD} characters"]
        if len(password) > 1024:
            errors["password"] = ["at most 1024 characters"]
        if len(name) > 255:
            errors["name"] = ["at most 255 characters"]
        if errors:
            raise Invalid("the form has errors", errors)
    now = datetime.now(UTC)
    burnt = s.execute(
        update(Invitation)
        .where(Invitation.id == inv.id, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    )
    if burnt.rowcount != 1:
        s.rollback()
        raise NotFound("this invitation was used already")
    if user is None:
        from werkzeug.security import generate_password_hash

        user = User(
            email=inv.email,
            display_name=name.strip() or inv.email,
            password_hash=generate_password_hash(password),
        )
        s.add(user)
        s.flush()
    exists = s.scalar(
        select(Membership).where(
            Membership.user_id == user.id, Membership.organisation_id == inv.organisation_id
        )
    )
    if exists is None:
        s.add(
            Membership(user_id=user.id, organisation_id=inv.organisation_id, role=inv.role, source="manual")
        )
    s.execute(
        update(Invitation)
        .where(Invitation.id == inv.id)
        .values(accepted_user_id=user.id)
        .execution_options(synchronize_session=False)
    )
    s.commit()
    return user


# --- the API --------------------------------------------------------------------------------------------


def _by() -> str:
    from backend.api.accounts import who_is_calling

    return who_is_calling()


@bp.get("/organisations/<cloud_id>/members")
def list_members(cloud_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        return jsonify({"items": [member_json(m, u) for m, u in members(s, org)]})


@bp.patch("/organisations/<cloud_id>/members/<member_id>")
def change_role(cloud_id: str, member_id: str):
    data = load(RoleIn())
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        m = set_role(s, org, member_id, data["role"])
        return jsonify(member_json(m, s.get(User, m.user_id)))


@bp.delete("/organisations/<cloud_id>/members/<member_id>")
def delete_member(cloud_id: str, member_id: str):
    with services().db.session() as s:
        remove_member(s, organisation(s, cloud_id), member_id)
    return "", 204


@bp.get("/organisations/<cloud_id>/invitations")
def list_invitations(cloud_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        return jsonify({"items": [invitation_json(i) for i in pending(s, org)]})


@bp.post("/organisations/<cloud_id>/invitations")
def create_invitation(cloud_id: str):
    data = load(InvitationIn())
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        inv, token = invite(s, org, data["email"], data["role"], _by())
        return jsonify(invitation_json(inv, token)), 201


@bp.delete("/organisations/<cloud_id>/invitations/<invitation_id>")
def delete_invitation(cloud_id: str, invitation_id: str):
    with services().db.session() as s:
        revoke(s, organisation(s, cloud_id), invitation_id)
    return "", 204
