"""The organisation's Jira credentials: checked against /rest/api/3/myself before they are kept.

Besides the token (sealed, never answered), the account records who set it and when, and the last check
(Check now, or the check of a new token): its time, whether Jira accepted the token, and why not.
`store_account` and `check_account` are shared by the API below and the Settings page (backend/ui/settings.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, g, jsonify
from flask_login import current_user
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from backend import vault
from backend.api.common import iso, load
from backend.auth.access import organisation
from backend.db.models import JiraAccount
from backend.errors import Invalid, NotFound, Upstream
from backend.jira import JiraAuthError, JiraClient, JiraCredentials, JiraError, JiraUnavailable
from backend.services import services

bp = Blueprint("accounts", __name__)
PANEL = "the Keepstone panel in Jira"  # who set a token the connector sent (its service token)


class AccountIn(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=255))
    api_token = fields.String(
        required=True,
        load_only=True,
        validate=[
            validate.Length(min=1, max=2048),
            validate.Regexp(r"^[!-~]+$", error="an API token is printable ASCII without spaces"),
        ],
    )


class CheckOut(Schema):
    at = fields.DateTime(required=True, allow_none=True)
    ok = fields.Boolean(required=True, allow_none=True)
    message = fields.String(required=True)


class AccountOut(Schema):
    """The Jira account: never its token, not even masked."""

    site_url = fields.String(required=True)
    email = fields.String(required=True)
    account_id = fields.String(required=True)
    display_name = fields.String(required=True)
    checked_at = fields.DateTime(required=True, allow_none=True)
    set_by = fields.String(required=True)
    set_at = fields.DateTime(required=True, allow_none=True)
    last_check = fields.Nested(CheckOut, required=True)


def account_json(account: JiraAccount) -> dict:
    # Never the token: not even masked.
    return {
        "site_url": account.site_url,
        "email": account.email,
        "account_id": account.account_id,
        "display_name": account.display_name,
        "checked_at": iso(account.checked_at),
        "set_by": account.set_by,
        "set_at": iso(account.set_at),
        "last_check": {
            "at": iso(account.last_check_at),
            "ok": account.last_check_ok,
            "message": account.last_check_message,
        },
    }


def who_is_calling() -> str:
    """The words for who set a token: the signed-in member, or the panel (the connector's token)."""
    if "service_claims" in g or not current_user.is_authenticated:
        return PANEL
    return str(current_user.display_name)[:255]


def _myself(site_url: str, email: str, token: str) -> dict[str, Any]:
    """Ask Jira who these credentials are; Invalid if Jira refuses them, Upstream if it cannot answer."""
    client = JiraClient(JiraCredentials(site_url, email, token), max_attempts=2, timeout=(5, 15))
    try:
        return client.myself()
    except JiraAuthError:
        raise Invalid("Jira refused this email and API token", {"api_token": "rejected by Jira"}) from None
    except JiraUnavailable as e:
        raise Upstream(f"Jira at {site_url} could not be reached: {e}") from None
    except JiraError as e:
        raise Upstream(f"Jira at {site_url} answered an error: {e}") from None
    finally:
        client.close()


def store_account(cloud_id: str, email: str, api_token: str, set_by: str) -> dict:
    """Check the credentials with Jira, then keep them (sealed) with who set them; nothing is kept if Jira refuses."""
    svc = services()
    with svc.db.session() as s:
        site_url = organisation(s, cloud_id).site_url
    me = _myself(site_url, email, api_token)
    now = datetime.now(UTC)
    with svc.db.session() as s:
        org = organisation(s, cloud_id)
        account = s.scalar(select(JiraAccount).where(JiraAccount.organisation_id == org.id))
        if account is None:
            account = JiraAccount(organisation_id=org.id)
            s.add(account)
        account.site_url, account.email = site_url, email
        account.token_sealed = vault.seal_jira_token(svc.config.secret_key, api_token, cloud_id)
        account.account_id, account.display_name = me.get("accountId", ""), me.get("displayName", "")
        account.checked_at = account.set_at = account.last_check_at = now
        account.set_by = set_by[:255]
        account.last_check_ok, account.last_check_message = True, "Jira accepted the token"
        s.commit()
        return account_json(account)


def check_account(cloud_id: str) -> dict:
    """Ask Jira's /myself with the stored token now and record the answer (accepted, refused, unreachable)."""
    svc = services()
    with svc.db.session() as s:
        org = organisation(s, cloud_id)
        account = s.scalar(select(JiraAccount).where(JiraAccount.organisation_id == org.id))
        if account is None:
            raise NotFound("no Jira credentials yet")
        site_url, email = account.site_url, account.email
        token = vault.jira_token(svc.config.secret_key, account.token_sealed, cloud_id)
    ok: bool
    try:
        me = _myself(site_url, email, token)
        ok, message = (
            True,
            f"Jira accepted the token (signs in as {me.get('displayName') or me.get('accountId')})",
        )
    except Invalid:
        ok, message = False, "Jira refused the token: replace it with a new one"
    except Upstream as e:
        ok, message = False, e.message
    with svc.db.session() as s:
        org = organisation(s, cloud_id)
        account = s.scalar(select(JiraAccount).where(JiraAccount.organisation_id == org.id))
        if account is None:  # replaced away meanwhile: nothing to record on
            raise NotFound("no Jira credentials yet")
        account.last_check_at = datetime.now(UTC)
        account.last_check_ok, account.last_check_message = ok, message[:1000]
        if ok:
            account.checked_at = account.last_check_at
        s.commit()
        return account_json(account)


@bp.put("/organisations/<cloud_id>/account")
def put_account(cloud_id: str):
    data = load(AccountIn())
    return jsonify(store_account(cloud_id, data["email"], data["api_token"], who_is_calling()))


@bp.get("/organisations/<cloud_id>/account")
def get_account(cloud_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        account = s.scalar(select(JiraAccount).where(JiraAccount.organisation_id == org.id))
        if account is None:
            raise NotFound("no Jira credentials yet")
        return jsonify(account_json(account))


@bp.post("/organisations/<cloud_id>/account/check")
def check_account_now(cloud_id: str):
    """Check now: the stored token against Jira's /myself; the answer is recorded and returned (200 either way)."""
    return jsonify(check_account(cloud_id))
