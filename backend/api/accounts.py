"""The organisation's Jira credentials: checked against /rest/api/3/myself before they are kept."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, jsonify
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


class AccountOut(Schema):
    """The Jira account: never its token, not even masked."""

    site_url = fields.String(required=True)
    email = fields.String(required=True)
    account_id = fields.String(required=True)
    display_name = fields.String(required=True)
    checked_at = fields.DateTime(required=True, allow_none=True)


def account_json(account: JiraAccount) -> dict:
    # Never the token: not even masked.
    return {
        "site_url": account.site_url,
        "email": account.email,
        "account_id": account.account_id,
        "display_name": account.display_name,
        "checked_at": iso(account.checked_at),
    }


@bp.put("/organisations/<cloud_id>/account")
def put_account(cloud_id: str):
    svc = services()
    data = load(AccountIn())
    with svc.db.session() as s:
        org = organisation(s, cloud_id)
        site_url = org.site_url
    client = JiraClient(
        JiraCredentials(site_url, data["email"], data["api_token"]), max_attempts=2, timeout=(5, 15)
    )
    try:
        me = client.myself()
    except JiraAuthError:
        raise Invalid("Jira refused this email and API token", {"api_token": "rejected by Jira"}) from None
    except JiraUnavailable as e:
        raise Upstream(f"Jira at {site_url} could not be reached: {e}") from None
    except JiraError as e:
        raise Upstream(f"Jira at {site_url} answered an error: {e}") from None
    finally:
        client.close()
    with svc.db.session() as s:
        org = organisation(s, cloud_id)
        account = s.scalar(select(JiraAccount).where(JiraAccount.organisation_id == org.id))
        if account is None:
            account = JiraAccount(organisation_id=org.id)
            s.add(account)
        account.site_url, account.email = site_url, data["email"]
        account.token_sealed = vault.seal(svc.config.secret_key, data["api_token"], f"jira-token:{cloud_id}")
        account.account_id, account.display_name = me.get("accountId", ""), me.get("displayName", "")
        account.checked_at = datetime.now(UTC)
        s.commit()
        return jsonify(account_json(account))


@bp.get("/organisations/<cloud_id>/account")
def get_account(cloud_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        account = s.scalar(select(JiraAccount).where(JiraAccount.organisation_id == org.id))
        if account is None:
            raise NotFound("no Jira credentials yet")
        return jsonify(account_json(account))
