"""Settings: the organisation's members (roles, removal, invitations) and the Jira account Keepstone uses.

Each route declares its least role with `@least_role` (backend/auth/roles.py), checked before the view
for the organisation of the page (?org=, the switcher). The rules themselves (the last admin, one-time
invitation tokens, Jira's check of a token) live in backend/api/members.py and backend/api/accounts.py,
shared with the API, so a form and an API call can never disagree. A bad submit changes nothing and says
why beside the field.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api import members as mb
from backend.api.accounts import AccountIn, check_account, store_account
from backend.auth.roles import PUBLIC_ROLE, ROLE_TEXT, ROLES, least_role
from backend.auth.sessions import start_session
from backend.db.models import JiraAccount, Organisation
from backend.errors import ApiError, Invalid, NotFound
from backend.services import services
from backend.ui.plan_form import when
from backend.ui.shell import current_org, member, organisations, page
from backend.ui.views import bp


def _org(s: Session) -> Organisation | None:
    return current_org(s, organisations(s))


def _members_page(
    s: Session,
    org: Organisation,
    *,
    invited: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
):
    rows = mb.members(s, org)
    admins = sum(1 for m, _ in rows if m.role == "admin")
    answer = page(
        "settings.html",
        s,
        org,
        section="ui.settings",
        tab="members",
        rows=rows,
        admins=admins,
        me=current_user.user_id,
        roles=ROLES,
        role_text=ROLE_TEXT,
        invitations=mb.pending(s, org),
        invited=invited,
        errors=errors or {},
        form=form or {},
        when=lambda d: when(d, org.time_zone),
        days=mb.INVITATION_DAYS,
    )
    return answer, status


def _back(org: Organisation, endpoint: str = "ui.settings"):
    return redirect(url_for(endpoint, org=org.cloud_id), code=303)


@bp.get("/settings")
@member
@least_role("viewer")
def settings():
    with services().db.session() as s:
        org = _org(s)
        if org is None:
            return page("no_org.html", s, title="Settings")
        return _members_page(s, org)


@bp.post("/settings/members/<member_id>/role")
@member
@least_role("admin", "change roles")
def change_role(member_id: str):
    with services().db.session() as s:
        org = _org(s) or abort(404)
        try:
            m = mb.set_role(s, org, member_id, request.form.get("role", ""))
        except NotFound:
            abort(404)
        except ApiError as e:
            flash(f"Nothing changed: {e.message}.", "error")
            return _back(org)
        flash(f"Role changed to {m.role}.", "success")
        return _back(org)


@bp.post("/settings/members/<member_id>/remove")
@member
@least_role("admin", "remove members")
def remove_member(member_id: str):
    with services().db.session() as s:
        org = _org(s) or abort(404)
        try:
            mb.remove_member(s, org, member_id)
        except NotFound:
            abort(404)
        except ApiError as e:
            flash(f"Nothing changed: {e.message}.", "error")
            return _back(org)
        flash("Member removed: they can no longer open this organisation.", "success")
        return _back(org)


@bp.post("/settings/invitations")
@member
@least_role("admin", "invite members")
def invite():
    form = {"email": request.form.get("email", "").strip(), "role": request.form.get("role", "viewer")}
    with services().db.session() as s:
        org = _org(s) or abort(404)
        try:
            data = mb.InvitationIn().load(form)
            inv, token = mb.invite(s, org, data["email"], data["role"], str(current_user.display_name))
        except ValidationError as e:
            errors = {k: v if isinstance(v, list) else [str(v)] for k, v in e.messages.items()}
            return _members_page(s, org, errors=errors, form=form, status=422)
        except ApiError as e:
            errors = {k: v if isinstance(v, list) else [str(v)] for k, v in e.fields.items()} or {
                "email": [e.message]
            }
            return _members_page(s, org, errors=errors, form=form, status=e.status)
        # The link is shown once, in this answer (never flashed: the session cookie would carry it).
        return _members_page(s, org, invited=mb.invitation_json(inv, token), status=201)


@bp.post("/settings/invitations/<invitation_id>/withdraw")
@member
@least_role("admin", "withdraw invitations")
def withdraw_invitation(invitation_id: str):
    with services().db.session() as s:
        org = _org(s) or abort(404)
        try:
            mb.revoke(s, org, invitation_id)
        except NotFound:
            abort(404)
        flash("Invitation withdrawn: its link no longer works.", "success")
        return _back(org)


# --- the Jira account -----------------------------------------------------------------------------------


def _jira_page(
    s: Session, org: Organisation, *, errors: dict[str, list[str]] | None = None, email: str = "", status=200
):
    account = s.scalar(select(JiraAccount).where(JiraAccount.organisation_id == org.id))
    answer = page(
        "settings_jira.html",
        s,
        org,
        section="ui.settings",
        tab="jira",
        account=account,
        errors=errors or {},
        email=email or (account.email if account else ""),
        when=lambda d: when(d, org.time_zone) if d else "",
    )
    return answer, status


@bp.get("/settings/jira")
@member
@least_role("viewer")
def jira_accounts():
    with services().db.session() as s:
        org = _org(s)
        if org is None:
            return page("no_org.html", s, title="Settings")
        return _jira_page(s, org)


@bp.post("/settings/jira/token")
@member
@least_role("admin", "replace the Jira token")
def replace_token():
    form = {"email": request.form.get("email", "").strip(), "api_token": request.form.get("api_token", "")}
    with services().db.session() as s:
        org = _org(s) or abort(404)
        cloud_id = org.cloud_id
    errors: dict[str, list[str]] = {}
    try:
        data = AccountIn().load(form)
        store_account(cloud_id, data["email"], data["api_token"], str(current_user.display_name))
    except ValidationError as e:
        errors = {k: v if isinstance(v, list) else [str(v)] for k, v in e.messages.items()}
    except Invalid as e:
        errors = {k: v if isinstance(v, list) else [str(v)] for k, v in e.fields.items()}
    except ApiError as e:  # Jira unreachable: nothing kept
        errors = {"api_token": [f"not checked, so not kept: {e.message}"]}
    if errors:
        with services().db.session() as s:
            return _jira_page(s, _org(s) or abort(404), errors=errors, email=form["email"], status=422)
    flash("API token replaced: Jira accepted it.", "success")
    return redirect(url_for("ui.jira_accounts", org=cloud_id), code=303)


@bp.post("/settings/jira/check")
@member
@least_role("operator", "check the Jira token")
def check_now():
    with services().db.session() as s:
        org = _org(s) or abort(404)
        cloud_id = org.cloud_id
    try:
        result = check_account(cloud_id)
    except NotFound:
        flash("There is no API token to check yet.", "error")
        return redirect(url_for("ui.jira_accounts", org=cloud_id), code=303)
    check = result["last_check"]
    flash(check["message"] + ".", "success" if check["ok"] else "error")
    return redirect(url_for("ui.jira_accounts", org=cloud_id), code=303)


# --- accepting an invitation (anyone with the link) -----------------------------------------------------


def _invite_page(found: mb.Open | None, errors: dict[str, list[str]] | None = None, status: int = 200):
    if found is None:
        return render_template("invite.html", found=None, errors={}, plain=False), 404
    return (
        render_template(
            "invite.html",
            found=found,
            errors=errors or {},
            signed_in_as_invitee=current_user.is_authenticated
            and found.existing is not None
            and current_user.user_id == found.existing.id,
        ),
        status,
    )


@bp.get("/invite/<token>")
@least_role(PUBLIC_ROLE)
def accept_invitation(token: str):
    with services().db.session() as s:
        return _invite_page(mb.open_invitation(s, token))


@bp.post("/invite/<token>")
@least_role(PUBLIC_ROLE)
def accept_invitation_post(token: str):
    name = request.form.get("name", "")
    password = request.form.get("password", "")
    with services().db.session() as s:
        found = mb.open_invitation(s, token)
        if found is None:
            return _invite_page(None)
        errors: dict[str, list[str]] = {}
        if found.existing is None and password != request.form.get("password2", ""):
            errors["password2"] = ["the two passwords differ"]
        signed_in = current_user.user_id if current_user.is_authenticated else None
        if not errors:
            try:
                user = mb.accept(s, found, signed_in_user_id=signed_in, name=name, password=password)
            except NotFound:
                return _invite_page(None)
            except Invalid as e:
                errors = {k: v if isinstance(v, list) else [str(v)] for k, v in e.fields.items()}
        if errors:
            return _invite_page(found, errors, status=422)
        org_name = found.organisation.display_name or found.organisation.site_url
        role, cloud_id = found.invitation.role, found.organisation.cloud_id
        if signed_in != user.id:
            start_session(s, user)
    flash(f"Welcome to {org_name}: you are a member with the {role} role.", "success")
    return redirect(url_for("ui.dashboard", org=cloud_id), code=303)
