"""The Atlassian side of app installation: install action, lifecycle events, signing keys, Apps page.

Admin API (test only, no auth): `POST /_sandbox/apps/install` {"connector_url", "forge_app_id"?,
"connect"?, "forge"?, "forge_manifest"?} fetches the app's Connect descriptor, sends `installed` signed
with RS256 (kid served by `/connect-install-keys/<kid>`) and the Forge `avi:forge:installed:app` event
with a Forge Invocation Token (keys at `/_sandbox/forge/jwks.json`); with `forge_manifest` (a path to a
manifest.yml) it also deploys the Forge app: `sandbox/forge_host.py` then hosts its Custom UI on the
Forge Apps page (`forgeAppsPage` in the answer). `POST /_sandbox/apps/<key>/uninstall` sends `disabled`
then `uninstalled` (and `avi:forge:uninstalled:app` when installed on Forge); `GET /_sandbox/apps/<key>`
shows the install (with its shared secret);
`POST /_sandbox/apps/<key>/fit` mints a FIT for tests. The Apps page, as Jira renders a Connect admin
page: `/plugins/servlet/ac/<app key>/<module key>` (an iframe on the app's page URL with a signed JWT).
"""

from __future__ import annotations

import hashlib
import html
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Response, current_app, jsonify, request

from sandbox import forge_host
from sandbox.web import base, site

bp = Blueprint("atlassian", __name__)
bp.register_blueprint(forge_host.bp)  # Forge's hosting of Custom UI (sandbox/forge_host.py)
DEFAULT_FORGE_APP_ID = "ari:cloud:ecosystem::app/6f0c1a52-9d3e-4c8b-a0f7-keepstone0001"
FIT_ISSUER = "forge/invocation-token"


@dataclass
class Install:
    """One app installed on this site."""

    key: str
    descriptor: dict
    client_key: str
    shared_secret: str
    connector_url: str
    forge_app_id: str
    installation_id: str
    events: list[dict] = field(default_factory=list)
    environment_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    forge: dict | None = None  # the deployed Forge app (sandbox.forge_host.deploy), when one was given
    forge_events_url: str | None = None  # where the Forge lifecycle events go, once installed on Forge


@dataclass
class AtlassianState:
    """The keys this site signs with and the apps installed on it."""

    install_kid: str
    install_key: rsa.RSAPrivateKey
    forge_kid: str
    forge_key: rsa.RSAPrivateKey
    apps: dict[str, Install] = field(default_factory=dict)


_lock = threading.Lock()


def atlassian() -> AtlassianState:
    """Return this sandbox's Atlassian state, creating its keys on first use."""
    ext = current_app.extensions
    with _lock:
        if "atlassian" not in ext:
            ext["atlassian"] = AtlassianState(
                str(uuid.uuid4()),
                rsa.generate_private_key(public_exponent=65537, key_size=2048),
                str(uuid.uuid4()),
                rsa.generate_private_key(public_exponent=65537, key_size=2048),
            )
        return ext["atlassian"]


def _enc(value: str) -> str:
    return quote(value, safe="~")


def qsh(method: str, path: str, query: str = "") -> str:
    """Hash a request as Atlassian does (an independent implementation from the connector's)."""
    path = path.rstrip("/") or "/"
    values: dict[str, list[str]] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        if k != "jwt":
            values.setdefault(k, []).append(v)
    canon_q = "&".join(
        f"{k}={','.join(_enc(x) for x in sorted(v))}"
        for k, v in sorted((_enc(k), v) for k, v in values.items())
    )
    canon = f"{method.upper()}&{path.replace('&', '%26')}&{canon_q}"
    return hashlib.sha256(canon.encode()).hexdigest()


def _admin() -> Any:
    return next(u for u in site().users.values() if "site-admins" in u.groups)


def connect_token(app: Install, method: str, path: str, query: str = "", **extra) -> str:
    """Sign an HS256 Connect token for a call to the app (iss = clientKey, qsh of the call)."""
    now = int(time.time())
    admin = _admin()
    claims = {
        "iss": app.client_key,
        "sub": admin.account_id,
        "iat": now,
        "exp": now + 180,
        "qsh": qsh(method, path, query),
        "context": {"user": {"accountId": admin.account_id, "displayName": admin.display_name}},
    }
    claims.update(extra)
    return jwt.encode(claims, app.shared_secret, algorithm="HS256")


def install_token(app: Install, path: str) -> str:
    """Sign a lifecycle token as Atlassian's signed install does (RS256, kid, aud = app baseUrl)."""
    st = atlassian()
    now = int(time.time())
    claims = {
        "iss": app.client_key,
        "aud": app.descriptor["baseUrl"].rstrip("/"),
        "iat": now,
        "exp": now + 180,
        "qsh": qsh("POST", path),
    }
    return jwt.encode(claims, st.install_key, algorithm="RS256", headers={"kid": st.install_kid})


def forge_token(app: Install, /, **extra) -> str:
    """Sign a Forge Invocation Token for this site (RS256 with the sandbox's Forge key)."""
    st = atlassian()
    now = int(time.time())
    claims = {
        "iss": FIT_ISSUER,
        "aud": app.forge_app_id,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "app": {
            "id": app.forge_app_id,
            "installationId": app.installation_id,
            "apiBaseUrl": base(),
            "environment": {"type": "DEVELOPMENT", "id": str(uuid.uuid4())},
            "module": {"key": "keepstone-admin", "type": "jira:adminPage"},
        },
        "context": {"cloudId": site().cloud_id, "siteUrl": base()},
        "principal": _admin().account_id,
    }
    claims.update(extra)
    return jwt.encode(claims, st.forge_key, algorithm="RS256", headers={"kid": st.forge_kid})


def _app_or_404(key: str) -> Install:
    app = atlassian().apps.get(key)
    if app is None:
        raise _NotInstalled(key)
    return app


class _NotInstalled(Exception):
    pass


@bp.errorhandler(_NotInstalled)
def _not_installed(e: _NotInstalled):
    return jsonify({"errorMessages": [f"App {e.args[0]!r} is not installed."]}), 404


def _send(app: Install, url: str, body: dict, token: str, scheme: str) -> dict:
    resp = requests.post(url, json=body, headers={"Authorization": f"{scheme} {token}"}, timeout=30)
    event = {"url": url, "event": body.get("eventType"), "status": resp.status_code}
    app.events.append(event)
    return event


@bp.post("/_sandbox/apps/install")
def install():
    """Install an app: fetch its descriptor, send signed lifecycle events (Connect and Forge)."""
    body = request.get_json(silent=True) or {}
    connector_url = str(body.get("connector_url", "")).rstrip("/")
    descriptor = requests.get(connector_url + "/atlassian-connect.json", timeout=10).json()
    key = descriptor["key"]
    old = atlassian().apps.get(key)
    app = Install(
        key=key,
        descriptor=descriptor,
        client_key=old.client_key if old else str(uuid.uuid4()),
        shared_secret=uuid.uuid4().hex + uuid.uuid4().hex,
        connector_url=connector_url,
        forge_app_id=body.get("forge_app_id") or DEFAULT_FORGE_APP_ID,
        installation_id=f"ari:cloud:ecosystem::installation/{uuid.uuid4()}",
    )
    if body.get("forge_manifest"):
        app.forge = forge_host.deploy(str(body["forge_manifest"]), connector_url)
        app.forge_app_id = app.forge["app_id"]
    atlassian().apps[key] = app
    events = []
    if body.get("connect", True):
        path = descriptor["lifecycle"]["installed"]
        payload = {
            "key": key,
            "clientKey": app.client_key,
            "sharedSecret": app.shared_secret,
            "baseUrl": base(),
            "displayUrl": base(),
            "productType": "jira",
            "description": "Keepstone sandbox site",
            "eventType": "installed",
            "installationId": app.installation_id,
        }
        base_url = descriptor["baseUrl"].rstrip("/")
        events.append(_send(app, base_url + path, payload, install_token(app, path), "JWT"))
    if body.get("forge", True):
        payload = {
            "eventType": "avi:forge:installed:app",
            "id": str(uuid.uuid4()),
            "installerAccountId": _admin().account_id,
            "app": {"id": app.forge_app_id, "version": "1"},
            "context": {"cloudId": site().cloud_id},
        }
        default_path = app.forge["events_path"] if app.forge else "/forge/events"
        url = connector_url + str(body.get("forge_events_path", default_path))
        app.forge_events_url = url
        events.append(_send(app, url, payload, forge_token(app), "Bearer"))
    module = descriptor.get("modules", {}).get("adminPages", [{}])[0].get("key", "")
    answer = {
        "key": key,
        "clientKey": app.client_key,
        "cloudId": site().cloud_id,
        "events": events,
        "appsPage": f"{base()}/plugins/servlet/ac/{key}/{module}",
    }
    if app.forge:
        answer["forgeAppsPage"] = base() + forge_host.apps_page_path(app)
    return jsonify(answer)


@bp.post("/_sandbox/apps/<key>/uninstall")
def uninstall(key: str):
    """Disable then uninstall the app, as Jira does (the two may arrive close together)."""
    app = _app_or_404(key)
    base_url = app.descriptor["baseUrl"].rstrip("/")
    lifecycle = app.descriptor["lifecycle"]
    payload = {"key": key, "clientKey": app.client_key, "baseUrl": base(), "productType": "jira"}
    events = [
        _send(
            app,
            base_url + lifecycle["disabled"],
            {**payload, "eventType": "disabled"},
            connect_token(app, "POST", lifecycle["disabled"]),
            "JWT",
        ),
        _send(
            app,
            base_url + lifecycle["uninstalled"],
            {**payload, "eventType": "uninstalled"},
            install_token(app, lifecycle["uninstalled"]),
            "JWT",
        ),
    ]
    if app.forge_events_url:  # the Forge side of the same app hears avi:forge:uninstalled:app
        payload = {
            "eventType": "avi:forge:uninstalled:app",
            "id": str(uuid.uuid4()),
            "app": {"id": app.forge_app_id, "version": "1"},
            "context": {"cloudId": site().cloud_id},
        }
        url = app.forge_events_url
        events.append(_send(app, url, payload, forge_token(app), "Bearer"))
    return jsonify({"events": events})


@bp.get("/_sandbox/apps/<key>")
def show(key: str):
    """Show one install, shared secret included (test only)."""
    app = _app_or_404(key)
    return jsonify(
        {
            "key": app.key,
            "clientKey": app.client_key,
            "sharedSecret": app.shared_secret,
            "baseUrl": app.descriptor["baseUrl"],
            "installKid": atlassian().install_kid,
            "forgeKid": atlassian().forge_kid,
            "forgeAppId": app.forge_app_id,
            "cloudId": site().cloud_id,
            "events": app.events,
        }
    )


@bp.post("/_sandbox/apps/<key>/fit")
def mint_fit(key: str):
    """Mint a Forge Invocation Token for this site (claims overridable; test only)."""
    app = _app_or_404(key)
    return jsonify({"token": forge_token(app, **(request.get_json(silent=True) or {}))})


@bp.get("/_sandbox/forge/jwks.json")
def forge_jwks():
    """Publish the key that signs this site's Forge Invocation Tokens."""
    st = atlassian()
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(st.forge_key.public_key(), as_dict=True)
    return jsonify({"keys": [{**jwk, "kid": st.forge_kid, "use": "sig", "alg": "RS256"}]})


@bp.get("/connect-install-keys/<kid>")
def install_key(kid: str):
    """Serve the public key of a Connect signed install by kid, as connect-install-keys does."""
    st = atlassian()
    if kid != st.install_kid:
        return Response("Not Found", status=404, mimetype="text/plain")
    pem = st.install_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Response(pem, mimetype="application/x-pem-file")


@bp.get("/plugins/servlet/ac/<key>/<module>")
def apps_page(key: str, module: str):
    """Render a Connect admin page as Jira does: Jira's chrome around the app's page in an iframe."""
    app = _app_or_404(key)
    pages = {p["key"]: p for p in app.descriptor.get("modules", {}).get("adminPages", [])}
    page = pages.get(module)
    if page is None:
        return Response("No such page", status=404, mimetype="text/plain")
    path = page["url"]
    query = urlencode({"xdm_e": base(), "xdm_c": f"channel-{key}__{module}", "cp": "", "lic": "none"})
    token = connect_token(app, "GET", path, query)
    src = f"{app.descriptor['baseUrl'].rstrip('/')}{path}?{query}&jwt={token}"
    title = html.escape(page.get("name", {}).get("value", key))
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title} - Apps - Jira</title><link rel='stylesheet' href='/_forge/jira.css'></head><body>"
        "<header><span class='logo'>Jira</span> <span class='site'>Keepstone sandbox</span></header>"
        "<div class='layout'><aside><p class='group'>Apps</p><p>Manage your apps</p>"
        f"<p class='current'>{title}</p></aside>"
        f"<main><h2>{title}</h2><iframe id='app-frame' name='app-frame' title='{title}' "
        f"src='{html.escape(src)}'></iframe></main></div></body></html>"
    )
    return Response(body, mimetype="text/html")
