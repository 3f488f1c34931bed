"""Lifecycle events from Jira: Connect (installed, uninstalled, enabled, disabled) and Forge triggers.

Every handler is idempotent and order-independent: a repeated or late event leaves the same end state.
"""

from __future__ import annotations

import logging

import requests
from flask import Blueprint, jsonify, request

from connector.connect import token_from_request
from connector.errors import TokenError
from connector.state import state
from connector.tenants import Tenant

log = logging.getLogger(__name__)
bp = Blueprint("lifecycle", __name__)

FORGE_INSTALLED = {"avi:forge:installed:app", "avi:forge:upgraded:app"}
FORGE_UNINSTALLED = {"avi:forge:uninstalled:app"}


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise TokenError("body must be a JSON object", 400)
    return body


def _cloud_id_of(site_url: str) -> str:
    """Ask the Jira site for its cloudId (GET /_edge/tenant_info, as on Jira Cloud)."""
    try:
        resp = requests.get(site_url.rstrip("/") + "/_edge/tenant_info", timeout=10)
        resp.raise_for_status()
        return str(resp.json()["cloudId"])
    except (requests.RequestException, ValueError, KeyError) as e:
        raise TokenError(f"cannot read the site's cloudId: {e}", 502) from None


def _register(tenant: Tenant) -> None:
    """Create or update the organisation in the backend (idempotent PUT)."""
    host = tenant.site_url.split("://", 1)[-1].split("/", 1)[0]
    body = {"site_url": tenant.site_url, "display_name": host, "time_zone": "UTC"}
    try:
        resp = state().backend.call("PUT", f"/api/v1/organisations/{tenant.cloud_id}", tenant.cloud_id, body)
    except requests.RequestException as e:
        raise TokenError(f"backend unreachable: {e}", 502) from None
    if resp.status_code >= 300:
        raise TokenError(f"backend refused the organisation: {resp.status_code}", 502)


def _suspend(tenant: Tenant) -> None:
    """Stop the tenant's schedules in the backend; its backups stay."""
    try:
        state().backend.call("POST", f"/api/v1/organisations/{tenant.cloud_id}/suspend", tenant.cloud_id)
    except requests.RequestException as e:
        log.warning("suspend failed", extra={"tenant": tenant.cloud_id, "error": str(e)})


@bp.post("/connect/installed")
def connect_installed():
    """Record a signed install; a reinstall replaces the shared secret only because it is signed."""
    body = _body()
    st = state()
    st.connect.verify_signed_install(
        token_from_request(request.headers, request.args),
        "POST",
        request.path,
        request.query_string.decode(),
        body,
    )
    for field in ("clientKey", "sharedSecret", "baseUrl"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise TokenError(f"installed payload lacks {field}", 400)
    site_url = body["baseUrl"].rstrip("/")
    cloud_id = _cloud_id_of(site_url)
    tenant = st.tenants.upsert(
        cloud_id,
        site_url=site_url,
        client_key=body["clientKey"],
        shared_secret=body["sharedSecret"],
        installed=True,
        enabled=True,
    )
    _register(tenant)
    log.info("connect installed", extra={"tenant": cloud_id})
    return "", 204


@bp.post("/connect/uninstalled")
def connect_uninstalled():
    """Mark the tenant uninstalled and suspend it in the backend (backups are never deleted)."""
    body = _body()
    st = state()
    claims = st.connect.verify_signed_install(
        token_from_request(request.headers, request.args),
        "POST",
        request.path,
        request.query_string.decode(),
        body,
    )
    tenant = st.tenants.by_client_key(claims["iss"])
    if tenant is not None:
        st.tenants.update(tenant.cloud_id, installed=False, enabled=False)
        _suspend(tenant)
    return "", 204


@bp.post("/connect/<any(enabled, disabled):event>")
def connect_toggle(event: str):
    """Enable or disable the tenant (HS256 with its shared secret); enabling never revives an uninstall."""
    st = state()
    tenant, _ = st.connect.verify_request(
        token_from_request(request.headers, request.args),
        "POST",
        request.path,
        request.query_string.decode(),
    )
    st.tenants.update(tenant.cloud_id, enabled=(event == "enabled" and tenant.installed))
    return "", 204


@bp.post("/forge/events")
def forge_event():
    """Handle a Forge lifecycle trigger (installed, upgraded, uninstalled) carrying a verified FIT."""
    st = state()
    claims = st.forge.verify(request.headers.get("Authorization"))
    body = _body()
    context = claims["context"]
    cloud_id = context["cloudId"]
    body_cloud = (body.get("context") or {}).get("cloudId")
    if body_cloud and body_cloud != cloud_id:
        raise TokenError("event cloudId differs from the token's", 403)
    event = body.get("eventType")
    if event in FORGE_INSTALLED:
        site_url = str(context.get("siteUrl") or body.get("siteUrl") or "").rstrip("/")
        if not site_url:
            raise TokenError("Forge event lacks the site URL", 400)
        tenant = st.tenants.upsert(
            cloud_id,
            site_url=site_url,
            installation_id=(claims.get("app") or {}).get("installationId"),
            installed=True,
            enabled=True,
        )
        _register(tenant)
    elif event in FORGE_UNINSTALLED:
        tenant = st.tenants.get(cloud_id)
        if tenant is not None:
            st.tenants.update(cloud_id, installed=False, enabled=False)
            _suspend(tenant)
    else:
        raise TokenError(f"unknown event {event!r}", 400)
    return jsonify({"ok": True})
