"""The central audit hook: every write request that changed something becomes one event.

After each request (API, UI pages, /login, /sso, any blueprint added later) the hook writes one event:
its action from ENDPOINTS when the endpoint is listed (Backup now, sign-in, token set, ...), else from
the most important tracked row the request committed (backend/audit/changes.py: plan.create,
storage.update, member.remove, ...), else, for a successful write nothing tracked, the endpoint's name.
The event carries the actor (user, connector or anonymous), the client address (`request.remote_addr`,
which honours KEEPSTONE_TRUSTED_PROXIES through ProxyFix), the target (public id and name), the
field-level changes, and details (method, endpoint, status, the URL's ids). A view that called
`audit.record(...)` itself is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from flask_login import current_user
from sqlalchemy import select

from backend.audit import changes as ch
from backend.audit.log import append

log = logging.getLogger("keepstone.audit")
SAFE = {"GET", "HEAD", "OPTIONS"}
# Most important first: a request that changed several rows is recorded as a change of the first kind.
PRIORITY = [
    "organisation",
    "plan",
    "storage",
    "member",
    "invitation",
    "account",
    "recovery",
    "notification",
    "user",
]
ACTIONS = {
    ("plan", "create"): "plan.create",
    ("plan", "update"): "plan.update",
    ("plan", "delete"): "plan.delete",
    ("storage", "create"): "storage.create",
    ("storage", "update"): "storage.update",
    ("storage", "delete"): "storage.delete",
    ("invitation", "create"): "member.invite",
    ("invitation", "update"): "member.invite.update",
    ("member", "create"): "member.add",
    ("member", "update"): "member.role",
    ("member", "delete"): "member.remove",
    ("account", "create"): "token.set",
    ("account", "update"): "token.set",
    ("user", "create"): "user.create",
    ("user", "update"): "user.update",
    ("user", "delete"): "user.delete",
    ("recovery", "create"): "recovery.set",
    ("recovery", "update"): "recovery.set",
    ("recovery", "delete"): "recovery.remove",
    ("organisation", "create"): "organisation.install",
    ("organisation", "update"): "organisation.update",
}


def _by_status(ok: str, failed: str | None = None) -> Callable[[int], str | None]:
    return lambda status: ok if status < 400 else (failed if status in (401, 403) else None)


# endpoint -> (action for the answer's status, or None: not recorded; the kind whose change is the target)
ENDPOINTS: dict[str, tuple[Callable[[int], str | None], str | None]] = {
    "ui.login_post": (_by_status("signin.ok", "signin.failed"), None),
    "ui.logout": (_by_status("signout"), None),
    "sso.sso": (_by_status("sso", "sso.failed"), None),
    "ui.switch_org": (lambda _status: None, None),
    "api.runs.start_run": (_by_status("backup.now"), None),
    "ui.run_plan": (_by_status("backup.now"), None),
    "api.runs.cancel_run": (_by_status("run.cancel"), None),
    "api.storages.test_storage": (_by_status("storage.test"), None),
    "api.accounts.put_account": (_by_status("token.set"), "account"),
    "api.accounts.check_account_now": (_by_status("token.check"), None),
    "ui.check_now": (_by_status("token.check"), None),
    "ui.test_storage": (_by_status("storage.test"), None),
    "ui.test_channel_page": (_by_status("notification.test"), None),
    "api.notifications.test_channel": (_by_status("notification.test"), None),
    "ui.restore_cancel": (_by_status("restore.cancel"), None),
    "api.organisations.suspend": (_by_status("organisation.suspend"), "organisation"),
}
SIGN_IN = {"ui.login_post", "sso.sso"}  # the only endpoints whose anonymous callers are recorded
# Endpoints recorded only when they committed a tracked change (a plan form's "Check plan" stores
# nothing; a refused delete redirects with a message; a repeated install changes nothing).
QUIET = {
    "ui.create_plan",
    "ui.update_plan",
    "ui.delete_plan",
    "ui.toggle_plan",
    "ui.duplicate_plan",
    "api.organisations.put_organisation",
    "ui.create_storage",
    "ui.update_storage",
    "ui.delete_storage",
    "ui.create_channel_page",
    "ui.update_channel_page",
    "ui.delete_channel_page",
    "ui.replace_token",
    "ui.change_role",
    "ui.remove_member",
    "ui.invite",
    "ui.withdraw_invitation",
    "ui.accept_invitation_post",
    "ui.restore_post",  # its dry run stores nothing; a restore it starts is recorded by the view (restore.start)
    "ui.set_recovery",
    "ui.remove_recovery",
    "api.recovery.put_recovery",
    "api.recovery.delete_recovery",
}


def register(endpoint: str, action: str, failed: str | None = None, kind: str | None = None) -> None:
    """Name the action of an endpoint whose writes the tracked rows do not describe (e.g. a test send)."""
    ENDPOINTS[endpoint] = (_by_status(action, failed), kind)


def address_of_request() -> str:
    return request.remote_addr or ""


def actor_of_request() -> dict[str, str]:
    """The caller: the connector (service token), the signed-in user, or whoever is signing in."""
    who = g.get("caller")
    if who is not None and who.kind == "service":
        return {"actor_kind": "connector", "actor": "connector", "actor_name": "Keepstone connector"}
    if current_user and current_user.is_authenticated:
        return _user(int(current_user.user_id))
    if g.get("audit_actor"):
        return g.audit_actor
    email = request.form.get("email", "").strip().lower() if request.endpoint == "ui.login_post" else ""
    return {"actor_kind": "anonymous", "actor": email, "actor_name": ""}


def _user(user_id: int) -> dict[str, str]:
    from backend.db.models import User
    from backend.services import services

    with services().db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            return {"actor_kind": "user", "actor": f"user {user_id}", "actor_name": ""}
        ident = user.email or (f"jira:{user.jira_account_id}" if user.jira_account_id else f"user {user_id}")
        return {"actor_kind": "user", "actor": ident, "actor_name": user.display_name or ""}


def _url_models() -> dict[str, type]:
    """URL parameters naming rows that bulk statements change (members; invitations)."""
    from backend.db import models

    out: dict[str, type] = {"member_id": models.Membership}
    if hasattr(models, "Invitation"):
        out["invitation_id"] = models.Invitation
    return out


def _before_view() -> None:
    if request.method in SAFE:
        return
    # Sign-out ends the session before the hook runs: remember who it was.
    if current_user and current_user.is_authenticated:
        g.audit_actor = _user(int(current_user.user_id))
    wanted = {p: m for p, m in _url_models().items() if p in (request.view_args or {})}
    if not wanted:
        return
    from backend.services import services

    # Only read here (the guard has not run yet); recorded only if the view then changes the row.
    with services().db.session() as s:
        for param, model in wanted.items():
            public_id = str(request.view_args[param])[:64]
            obj = s.scalar(select(model).where(model.public_id == public_id))
            if obj is not None:
                spec = ch.TRACKED[model]
                g.setdefault("audit_url_rows", []).append(
                    (
                        model,
                        obj.id,
                        {
                            "values": ch.snapshot(obj),
                            "target_id": str(getattr(obj, spec.id_attr) or "") if spec.id_attr else "",
                            "target_name": str(getattr(obj, spec.name_attr) or "") if spec.name_attr else "",
                            "organisation_id": obj.organisation_id,
                            "refs": {"user_id": obj.user_id} if hasattr(obj, "user_id") else {},
                        },
                    )
                )


def _url_changes(found: list[ch.Change]) -> list[ch.Change]:
    """Changes of the URL's rows that the ORM's flush did not see (bulk UPDATE or DELETE)."""
    rows = g.get("audit_url_rows") or []
    if not rows:
        return []
    from backend.services import services

    seen = {c.key for c in found}
    out = []
    with services().db.session() as s:
        for model, pk, before in rows:
            if any(k[0] == model.__name__ for k in seen):
                continue
            change = ch.url_change(before, s.get(model, pk), model, (pk,))
            if change is not None:
                out.append(change)
    return out


def _primary(found: list[ch.Change], kind: str | None) -> ch.Change | None:
    if kind is not None:
        return next((c for c in found if c.kind == kind), None)
    for wanted in PRIORITY:
        for change in found:
            if change.kind == wanted:
                return change
    return found[0] if found else None


def _names(found: list[ch.Change]) -> None:
    """Fill in what a flush could not name: a member's user."""
    from backend.db.models import User
    from backend.services import services

    needed = [c for c in found if c.kind == "member" and not c.target_id]
    if not needed:
        return
    with services().db.session() as s:
        for change in needed:
            user = s.get(User, change.refs.get("user_id"))
            if user is not None:
                change.target_id = user.email or (user.jira_account_id or "")
                change.target_name = user.display_name or ""


SECRET_URL_PARTS = {"token", "ticket"}


def _view_target(s: Any) -> tuple[str, str, int | None]:
    """The object the URL names: (public id, name, organisation id)."""
    from backend.db.models import Organisation, Plan, Run, StorageRecord

    args = request.view_args or {}
    for param, model in (("plan_id", Plan), ("storage_id", StorageRecord), ("run_id", Run)):
        if param in args:
            obj = s.scalar(select(model).where(model.public_id == str(args[param])[:64]))
            if obj is None:
                return str(args[param])[:64], "", None
            name = obj.plan.name if isinstance(obj, Run) else obj.name
            return obj.public_id, name, obj.organisation_id
    other = next((str(v)[:64] for k, v in args.items() if k.endswith("_id") and k != "cloud_id"), None)
    if "cloud_id" in args:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == str(args["cloud_id"])[:64]))
        if (
            other
        ):  # an object the audit does not name (a channel, a restore job): its id, in the URL's organisation
            return other, "", org.id if org else None
        return str(args["cloud_id"])[:64], (org.display_name if org else ""), org.id if org else None
    return other or "", "", None


def _response_json(response: Response) -> dict[str, Any]:
    if response.is_streamed or response.mimetype != "application/json":
        return {}
    body = response.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def event_of(response: Response) -> dict[str, Any] | None:
    """The event this request makes, or None."""
    from backend.db.models import Organisation, Plan
    from backend.services import services

    found = ch.committed()
    found += _url_changes(found)
    status = response.status_code
    listed = ENDPOINTS.get(request.endpoint or "")
    kind = None
    if listed is not None:
        action = listed[0](status)
        kind = listed[1]
    elif found:
        first = _primary(found, None)
        assert first is not None
        action = ACTIONS.get((first.kind, first.op), f"{first.kind}.{first.op}")
    elif request.method not in SAFE and status < 400 and request.endpoint and request.endpoint not in QUIET:
        action = request.endpoint
    else:
        action = None
    if action is None:
        return None
    who = actor_of_request()
    if who["actor_kind"] == "anonymous" and not found and request.endpoint not in SIGN_IN:
        return None  # refused before anything happened (sent to the sign-in page, a stale session)
    _names(found)
    primary = _primary(found, kind) if (kind or not listed) else None
    if (
        primary is not None
        and action == "plan.update"
        and who["actor_kind"] == "connector"
        and all(f.startswith("schedule.") for f in primary.fields)
    ):
        action = "schedule.update"  # the panel's schedule form (it PATCHes only the schedule)
    if primary is not None and action == "member.invite.update" and "revoked_at" in primary.fields:
        action = "member.invite.withdraw"
    details: dict[str, Any] = {
        "method": request.method,
        "endpoint": request.endpoint or "",
        "status": status,
    }
    # URL parts that are secrets themselves (an invitation's one-time token, a hand-off ticket) never go in.
    ids = {k: str(v)[:64] for k, v in (request.view_args or {}).items() if k not in SECRET_URL_PARTS}
    if ids:
        details["ids"] = ids
    others = [c for c in found if c is not primary]
    if others:
        details["also"] = [
            {"kind": c.kind, "op": c.op, "id": c.target_id, "name": c.target_name, "changes": c.fields}
            for c in others
        ]
    with services().db.session() as s:
        if primary is not None:
            target_id, target_name, org_id = primary.target_id, primary.target_name, primary.organisation_id
        else:
            target_id, target_name, org_id = _view_target(s)
        body = _response_json(response)
        if action == "backup.now" and body.get("plan_id"):
            plan = s.scalar(select(Plan).where(Plan.public_id == str(body["plan_id"])))
            if plan is not None:
                target_id, target_name, org_id = plan.public_id, plan.name, plan.organisation_id
            details["run_id"] = str(body.get("id", ""))
        if action.startswith("signin") or action == "signout":
            target_id, target_name = who["actor"], who["actor_name"]
        cloud_id = (request.view_args or {}).get("cloud_id")
        if org_id is not None:
            cloud_id = s.scalar(select(Organisation.cloud_id).where(Organisation.id == org_id)) or cloud_id
        if cloud_id is None and (request.endpoint or "").startswith("ui.") and current_user.is_authenticated:
            from backend.ui.shell import current_org, organisations

            page_org = current_org(s, organisations(s))  # the page's organisation (?org=, the switcher)
            cloud_id = page_org.cloud_id if page_org is not None and not action.startswith("sign") else None
        if action.startswith("sso"):
            cloud_id = getattr(current_user, "tenant", None) if current_user.is_authenticated else None
            target_id = target_id or (cloud_id or "")
    return {
        **who,
        "action": action,
        "cloud_id": cloud_id,
        "address": address_of_request(),
        "target_id": target_id,
        "target_name": target_name,
        "changes": primary.fields if primary is not None else {},
        "details": details,
    }


def _after(response: Response) -> Response:
    if g.get("audit_recorded"):
        return response
    try:
        event = event_of(response)
        if event is not None:
            from backend.services import services

            append(services().db, **event)
    except Exception:  # the change is stored already: the answer stands; the failure is logged loudly
        log.exception("audit: could not record %s %s", request.method, request.path)
    return response


def init_app(app: Flask) -> None:
    """Track changes in every ORM session and record each request's event after it."""
    ch.install()
    app.before_request(_before_view)
    app.after_request(_after)
