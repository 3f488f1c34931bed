"""The admin panel inside Jira and its actions; the tenant always comes from the verified token."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import jwt
import requests
from flask import Blueprint, Response, jsonify, render_template, request

from connector.connect import request_target, token_from_request
from connector.edge import ERROR_CODES
from connector.errors import TokenError
from connector.handoff import safe_target, sso_form, sso_token
from connector.qsh import CONTEXT_QSH
from connector.state import state
from connector.tenants import Tenant

bp = Blueprint("panel", __name__)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CONTEXT_LIFETIME = 15 * 60


@dataclass
class Caller:
    """Who is calling: the tenant (from the verified token) and the Jira account."""

    tenant: Tenant
    account_id: str
    name: str


def _connect_caller(allow_context: bool, token: str | None = None) -> Caller:
    st = state()
    tenant, claims = st.connect.verify_request(
        token or token_from_request(request.headers, request.args),
        *request_target(),
        allow_context=allow_context,
    )
    if not tenant.installed or not tenant.enabled:
        raise TokenError("the app is not enabled on this site", 403)
    context = claims.get("context") if isinstance(claims.get("context"), dict) else {}
    user = context.get("user") if isinstance(context.get("user"), dict) else {}
    sub = claims.get("sub") if isinstance(claims.get("sub"), str) else ""
    name = user.get("displayName") if isinstance(user.get("displayName"), str) else ""
    return Caller(tenant, sub[:128], (name or sub or "Jira admin")[:255])


def _forge_caller() -> Caller:
    """The caller of a Forge UI call: the FIT's site (cloudId) and user (principal), nothing from the body."""
    st = state()
    claims = st.forge.verify(request.headers.get("Authorization"))
    tenant = st.tenants.get(claims["context"]["cloudId"])
    if tenant is None or not tenant.installed:
        raise TokenError("the app is not installed on this site", 403)
    app = claims.get("app") if isinstance(claims.get("app"), dict) else {}
    if tenant.installation_id and app.get("installationId") != tenant.installation_id:
        raise TokenError("the token is of another installation than the site's current one", 403)
    principal = claims.get("principal") or claims["context"].get("accountId") or ""
    if isinstance(principal, dict):
        principal = principal.get("accountId", "")
    account = principal[:128] if isinstance(principal, str) else ""
    return Caller(tenant, account, "Jira admin")


def context_token(tenant: Tenant, account_id: str, name: str) -> str:
    """Mint a context token for the panel's own calls (HS256 with the tenant's secret, qsh context-qsh)."""
    now = int(time.time())
    claims = {
        "iss": tenant.client_key,
        "sub": account_id,
        "iat": now,
        "exp": now + CONTEXT_LIFETIME,
        "qsh": CONTEXT_QSH,
        "context": {"user": {"accountId": account_id, "displayName": name}},
    }
    return jwt.encode(claims, tenant.shared_secret, algorithm="HS256")


def _frame_headers(resp: Response, tenant: Tenant, form_action: str = "'self'") -> Response:
    resp.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; form-action {form_action}; base-uri 'none'; object-src 'none'; "
        f"frame-ancestors {tenant.origin()}"
    )
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/panel")
def page():
    """Render the panel (a Connect page call: HS256 with the request's own qsh, no context token)."""
    caller = _connect_caller(allow_context=False)
    token = context_token(caller.tenant, caller.account_id, caller.name)
    html = render_template("panel.html", context_token=token, site_url=caller.tenant.site_url, days=DAYS)
    return _frame_headers(Response(html, mimetype="text/html"), caller.tenant)


# The backend's answers the panel passes on as they are; anything else (a 5xx, an unexpected status, a
# body that is not a JSON object) becomes a 502 of the connector's own, so the panel's API answers only
# what connector/openapi.py documents.
PASSED_ON = {200, 201, 202, 400, 404, 409, 422, 502}


def _backend(method: str, path: str, caller: Caller, body: dict | None = None):
    try:
        resp = state().backend.call(method, path, caller.tenant.cloud_id, body)
    except requests.RequestException:
        return _error("backend_unavailable", "The Keepstone service is not reachable.", 502)
    try:
        data = resp.json()
    except ValueError:
        data = None
    status = resp.status_code
    if status not in PASSED_ON:
        return _error("bad_backend_answer", f"The Keepstone service answered {status}.", 502)
    if status >= 400 and not (isinstance(data, dict) and _is_error(data.get("error"))):
        return _error(ERROR_CODES.get(status, "refused"), "The Keepstone service refused this.", status)
    if not isinstance(data, dict):
        return _error("bad_backend_answer", "The Keepstone service answered something unexpected.", 502)
    return data, status


def _is_error(error: object) -> bool:
    return (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
    )


def _error(code: str, message: str, status: int, fields: dict | None = None):
    return {"error": {"code": code, "message": message, "fields": fields or {}}}, status


def _default_plan(caller: Caller) -> dict | None:
    data, status = _backend("GET", f"/api/v1/organisations/{caller.tenant.cloud_id}/plans", caller)
    if status != 200:
        return None
    plans = data.get("items", data.get("plans", []))
    plans = [p for p in plans if isinstance(p, dict)] if isinstance(plans, list) else []
    return next((p for p in plans if p.get("is_default")), plans[0] if plans else None)


def do_status(caller: Caller, body: dict):
    data, status = _backend("GET", f"/api/v1/organisations/{caller.tenant.cloud_id}/status", caller)
    if status == 200:
        plan = _default_plan(caller)
        data["schedule"] = (plan or {}).get("schedule")
    return data, status


def do_schedule(caller: Caller, body: dict):
    days, hour = body.get("days"), body.get("hour")
    fields = {}
    if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
        fields["days"] = "Pick at least one day."
    if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
        fields["hour"] = "Hour must be 0-23."
    if fields:
        return _error("invalid", "Schedule is not valid.", 400, fields)
    plan = _default_plan(caller)
    if plan is None:
        return _error("no_plan", "No backup plan exists yet.", 409)
    schedule = plan.get("schedule") if isinstance(plan.get("schedule"), dict) else {}
    time_zone = schedule.get("time_zone", "UTC")
    schedule = {"days": [d for d in DAYS if d in days], "hour": hour, "time_zone": time_zone}
    plan_id = requests.utils.quote(str(plan.get("id", "")), safe="")
    data, status = _backend("PATCH", f"/api/v1/plans/{plan_id}", caller, {"schedule": schedule})
    if status >= 300:
        return data, status
    return do_status(caller, {})


def do_backup(caller: Caller, body: dict):
    return _backend("POST", f"/api/v1/organisations/{caller.tenant.cloud_id}/runs", caller, {})


def do_account(caller: Caller, body: dict):
    email, token = body.get("email"), body.get("api_token")
    fields = {}
    if not isinstance(email, str) or not 0 < len(email) <= 255:
        fields["email"] = "An email of at most 255 characters is required."
    if not isinstance(token, str) or not 0 < len(token) <= 2048:
        fields["api_token"] = "An API token of at most 2048 characters is required."
    if fields:
        return _error("invalid", "Email and API token are required.", 400, fields)
    payload = {"email": email, "api_token": token}
    return _backend("PUT", f"/api/v1/organisations/{caller.tenant.cloud_id}/account", caller, payload)


def do_get_account(caller: Caller, body: dict):
    return _backend("GET", f"/api/v1/organisations/{caller.tenant.cloud_id}/account", caller)


ACTIONS = {
    ("GET", "status"): do_status,
    ("PUT", "schedule"): do_schedule,
    ("POST", "backup"): do_backup,
    ("PUT", "account"): do_account,
    ("GET", "account"): do_get_account,
}


def _body() -> dict:
    """The action's JSON object: none for GET, {} for an empty body; anything else that is not a JSON
    object (not JSON, nested too deep, an array) is refused before the action runs."""
    if request.method == "GET" or not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        raise TokenError("the body must be a JSON object", 400)
    return body


def _answer(result) -> Response:
    data, status = result
    resp = jsonify(data)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _act(action: str, caller: Caller) -> Response:
    """Run one action for an authenticated caller: look the action up, then read and check the body."""
    handler = ACTIONS.get((request.method, action))
    if handler is None:
        return _answer(_error("not_found", "No such action.", 404))
    return _answer(handler(caller, _body()))


@bp.route("/panel/api/<action>", methods=["GET", "PUT", "POST"])
def api(action: str):
    """Run one panel action (context tokens accepted: these are the endpoints meant for them)."""
    return _act(action, _connect_caller(allow_context=True))


@bp.get("/panel/api/runs/<path:run_id>")
def run(run_id: str):
    """Show one run's progress (the backend checks that it belongs to the caller's tenant)."""
    caller = _connect_caller(allow_context=True)
    return _answer(_backend("GET", f"/api/v1/runs/{requests.utils.quote(run_id, safe='')}", caller))


@bp.post("/panel/more")
def more():
    """Hand the user to the backend: mint a one-time SSO token and auto-POST it to /sso."""
    token = request.form.get("jwt") or ""
    if not token:
        raise TokenError("missing JWT")
    caller = _connect_caller(allow_context=True, token=token)
    st = state()
    # The panel is a Jira admin page (Connect adminPages): Jira shows it to Jira administrators only.
    target = safe_target(request.form.get("target"))  # "Review in Keepstone": the run that warned
    sso = sso_token(
        st.keys, caller.tenant.cloud_id, caller.account_id, caller.name, jira_admin=True, target=target
    )
    resp = Response(sso_form(st.config.backend_url, sso), mimetype="text/html")
    backend_origin = "/".join(st.config.backend_url.split("/")[:3])
    resp = _frame_headers(resp, caller.tenant, form_action=backend_origin)
    # The backend's /sso checks Origin (login CSRF); under no-referrer browsers send `Origin: null`.
    # strict-origin sends the connector's origin only, never a path, and nothing over a downgrade.
    resp.headers["Referrer-Policy"] = "strict-origin"
    return resp


TICKET_LIFETIME = 60


@bp.get("/forge/panel/runs/<path:run_id>")
def forge_run(run_id: str):
    """One run's progress for the Forge Custom UI."""
    caller = _forge_caller()
    return _answer(_backend("GET", f"/api/v1/runs/{requests.utils.quote(run_id, safe='')}", caller))


@bp.post("/forge/panel/more")
def forge_more():
    """More features from the Forge Custom UI: a one-time, 60-second URL for `router.open` (Custom UI
    cannot open windows or post forms to other origins). Only the ticket's hash is stored."""
    caller = _forge_caller()
    target = safe_target(_body().get("target"))
    ticket = secrets.token_urlsafe(32)
    state().tenants.add_ticket(
        _ticket_hash(ticket), caller.tenant.cloud_id, caller.account_id, caller.name, TICKET_LIFETIME
    )
    url = f"{state().config.base_url.rstrip('/')}/forge/handoff/{ticket}"
    if target:
        url += "?to=" + requests.utils.quote(target, safe="/")  # checked again when the ticket is burnt
    return _answer(({"url": url, "expires_in": TICKET_LIFETIME}, 200))


def _ticket_hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


@bp.get("/forge/handoff/<ticket>")
def forge_handoff(ticket: str):
    """Burn the ticket and hand the user to the backend (the same auto-POST page as Connect's)."""
    found = state().tenants.burn_ticket(_ticket_hash(ticket)) if 0 < len(ticket) <= 128 else None
    if found is None:
        raise TokenError("this link was used already or has expired; open More features again")
    st = state()
    tenant = st.tenants.get(found.cloud_id)
    if tenant is None or not tenant.installed:
        raise TokenError("the app is not installed on this site", 403)
    # Tickets come from the Forge jira:adminPage only, which Jira shows to Jira administrators only.
    target = safe_target(request.args.get("to"))
    sso = sso_token(st.keys, found.cloud_id, found.account_id, found.name, jira_admin=True, target=target)
    resp = Response(sso_form(st.config.backend_url, sso), mimetype="text/html")
    backend_origin = "/".join(st.config.backend_url.split("/")[:3])
    resp.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'self'; form-action {backend_origin}; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
    resp.headers["Referrer-Policy"] = "strict-origin"  # the POST to /sso must carry our Origin
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/forge/panel/<action>", methods=["GET", "PUT", "POST"])
def forge_api(action: str):
    """Run one panel action for the Forge Custom UI (its resolver calls carry a FIT)."""
    return _act(action, _forge_caller())
