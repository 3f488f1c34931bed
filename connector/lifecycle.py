"""Lifecycle events from Jira: Connect (installed, uninstalled, enabled, disabled) and Forge triggers.

Every handler is idempotent and order-independent: a repeated or late event leaves the same end state.
"""

from __future__ import annotations

import logging

import requests
from flask import Blueprint, jsonify, request

from connector.connect import request_target, token_from_request
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


def _is_site_url(value: object) -> bool:
    return (
        isinstance(value, str) and 0 < len(value) <= 255 and value.lower().startswith(("https://", "http://"))
    )


def _cloud_id_of(site_url: str) -> str:
    """Ask the Jira site for its cloudId (GET /_edge/tenant_info, as on Jira Cloud)."""
    try:
        resp = requests.get(site_url.rstrip("/") + "/_edge/tenant_info", timeout=10)
        resp.raise_for_status()
        cloud_id = resp.json()["cloudId"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as e:
        raise TokenError(f"cannot read the site's cloudId: {type(e).__name__}", 502) from None
    if not isinstance(cloud_id, str) or not 0 < len(cloud_id) <= 64:
        raise TokenError("the site's cloudId is not a short string", 502)
    return cloud_id


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


def _signed_install() -> tuple[dict, dict]:
    """Verify the signed install token first (it covers the request line, not the body), then read the
    body: a JSON object whose clientKey is the token's issuer. Return (claims, body)."""
    st = state()
    claims = st.connect.verify_signed_install(
        token_from_request(request.headers, request.args), *request_target()
    )
    body = _body()
    if body.get("clientKey") != claims["iss"]:
        raise TokenError("iss does not match clientKey")
    return claims, body


@bp.post("/connect/installed")
def connect_installed():
    """Record a signed install; a reinstall replaces the shared secret only because it is signed."""
    st = state()
    _claims, body = _signed_install()
    for field, limit in (("clientKey", 255), ("sharedSecret", 255), ("baseUrl", 255)):
        value = body.get(field)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise TokenError(f"installed payload lacks {field} (a string of 1-{limit} characters)", 400)
    if not _is_site_url(body["baseUrl"]):
        raise TokenError("installed payload's baseUrl is not an http(s) URL", 400)
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
    st = state()
    claims, _ = _signed_install()
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
        token_from_request(request.headers, request.args), *request_target()
    )
    st.tenants.update(tenant.cloud_id, enabled=(event == "enabled" and tenant.installed))
    return "", 204


@bp.post("/forge/events")
def forge_event():
    """Handle a Forge lifecycle trigger (installed, upgraded, uninstalled) carrying a verified FIT.

    Keyed by the token's cloudId; the installation is the token's `app.installationId`. Any order and
    any repetition ends in the same state: an uninstall is final for its installation (a reinstall gets a
    new id), so a late or replayed installed/upgraded of it changes nothing, and an uninstall of an older
    installation leaves the site's current one installed.
    """
    st = state()
    claims = st.forge.verify(request.headers.get("Authorization"))
    body = _body()
    context = claims["context"]
    cloud_id = context["cloudId"]
    body_context = body.get("context")
    body_cloud = body_context.get("cloudId") if isinstance(body_context, dict) else None
    if body_cloud and body_cloud != cloud_id:
        raise TokenError("event cloudId differs from the token's", 403)
    event = body.get("eventType")
    if not isinstance(event, str):
        raise TokenError("eventType must be a string", 400)
    if event not in FORGE_INSTALLED | FORGE_UNINSTALLED:
        raise TokenError(f"unknown event {event[:80]!r}", 400)
    app = claims.get("app") if isinstance(claims.get("app"), dict) else {}
    installation_id = app.get("installationId")
    if not isinstance(installation_id, str) or not 0 < len(installation_id) <= 255:
        raise TokenError("Forge token carries no app.installationId", 401)
    if body.get("installationId") not in (None, installation_id):
        raise TokenError("event installationId differs from the token's", 403)
    try:
        if event in FORGE_INSTALLED:
            site_url = next((u for u in (context.get("siteUrl"), body.get("siteUrl")) if _is_site_url(u)), "")
            if not site_url:
                raise TokenError("Forge event lacks the site URL", 400)
            tenant = st.tenants.forge_installed(cloud_id, installation_id, site_url.rstrip("/"))
            if tenant is not None:
                _register(tenant)
        else:
            tenant = st.tenants.forge_uninstalled(cloud_id, installation_id)
            if tenant is not None:
                _suspend(tenant)
    except ValueError as e:
        raise TokenError(str(e), 403) from None
    log.info(
        "forge event",
        extra={"tenant": cloud_id, "event": event, "applied": tenant is not None},
    )
    return jsonify({"ok": True})
