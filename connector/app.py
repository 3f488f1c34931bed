"""The connector's application factory: wires configuration, tenants, verifiers and blueprints."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask, jsonify

from connector import handoff, lifecycle, panel
from connector.config import ConnectorConfig
from connector.connect import ConnectVerifier, InstallKeys
from connector.errors import TokenError
from connector.forge import ForgeVerifier
from connector.handoff import BackendClient, KeyRing
from connector.state import ConnectorState
from connector.tenants import TenantStore

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTOR = ROOT / "manifest" / "atlassian-connect.json"


def descriptor(config: ConnectorConfig) -> dict:
    """Return the Connect descriptor with our base URL and key filled in."""
    data = json.loads(DESCRIPTOR.read_text())
    data["baseUrl"] = config.base_url.rstrip("/")
    data["key"] = config.app_key
    return data


def create_app(config: ConnectorConfig | None = None) -> Flask:
    """Create the connector app for `config` (default: from KEEPSTONE_CONNECTOR_* variables)."""
    config = config or ConnectorConfig.from_env()
    app = Flask(__name__, static_folder=str(ROOT / "static" / "panel"), static_url_path="/static/panel")
    app.config["SECRET_KEY"] = config.secret_key
    tenants = TenantStore(config.database_url)
    keys = KeyRing(config.key_file)
    app.extensions["connector"] = ConnectorState(
        config=config,
        tenants=tenants,
        connect=ConnectVerifier(
            config.base_url, InstallKeys(config.connect_install_keys_url), tenants, config.token_leeway
        ),
        forge=ForgeVerifier(config.forge_jwks_url, config.forge_app_id, config.token_leeway),
        keys=keys,
        backend=BackendClient(config.backend_url, keys),
    )
    for bp in (lifecycle.bp, panel.bp, handoff.bp):
        app.register_blueprint(bp)

    @app.errorhandler(TokenError)
    def refused(e: TokenError):
        code = {400: "bad_request", 401: "invalid_token", 403: "forbidden"}.get(e.status, "refused")
        resp = jsonify({"error": {"code": code, "message": e.message, "fields": {}}})
        resp.status_code = e.status
        if e.status == 401:
            resp.headers["WWW-Authenticate"] = 'JWT realm="keepstone"'
        return resp

    @app.get("/atlassian-connect.json")
    def connect_descriptor():
        return jsonify(descriptor(config))

    @app.get("/healthz")
    def healthz():
        return jsonify({"ok": True})

    return app
