"""The connector's application factory: wires configuration, tenants, verifiers and blueprints."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask, jsonify

from connector import edge, handoff, lifecycle, openapi, panel
from connector.config import ConnectorConfig
from connector.connect import ConnectVerifier, InstallKeys
from connector.errors import TokenError
from connector.forge import ForgeVerifier
from connector.handoff import BackendClient, KeyRing
from connector.state import ConnectorState
from connector.tenants import TenantStore
from keepstone.web import harden

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTOR = ROOT / "manifest" / "atlassian-connect.json"


def descriptor(config: ConnectorConfig) -> dict:
    """Return the Connect descriptor with our base URL and key filled in."""
    data = json.loads(DESCRIPTOR.read_text())
    data["baseUrl"] = config.base_url.rstrip("/")
    data["key"] = config.app_key
    return data


def openapi_document(config: ConnectorConfig) -> dict:
    """Return the OpenAPI document of the connector's JSON endpoints, with our base URL as the server."""
    data = openapi.document()
    data["servers"] = [{"url": config.base_url.rstrip("/")}]
    return data


def create_app(config: ConnectorConfig | None = None) -> Flask:
    """Create the connector app for `config` (default: from KEEPSTONE_CONNECTOR_* variables)."""
    config = config or ConnectorConfig.from_env()
    app = Flask(__name__, static_folder=str(ROOT / "static" / "panel"), static_url_path="/static/panel")
    app.config["SECRET_KEY"] = config.secret_key
    harden(app)
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False  # no CORS here: OPTIONS is a 405 like any other method
    app.wsgi_app = edge.SlashInsensitive(app.wsgi_app)
    tenants = TenantStore(config.database_url, config.secret_key)
    keys = KeyRing(config.key_file)
    budget = (config.install_key_fetch_burst, config.install_key_fetch_rate)
    app.extensions["connector"] = ConnectorState(
        config=config,
        tenants=tenants,
        connect=ConnectVerifier(
            config.base_url,
            InstallKeys(config.connect_install_keys_url, *budget),
            tenants,
            config.token_leeway,
        ),
        forge=ForgeVerifier(config.forge_jwks_url, config.forge_app_id, config.token_leeway, *budget),
        keys=keys,
        backend=BackendClient(config.backend_url, keys),
    )
    for bp in (lifecycle.bp, panel.bp, handoff.bp):
        app.register_blueprint(bp)
    edge.json_errors(app)
    edge.security_headers(app, config.base_url)

    @app.errorhandler(TokenError)
    def refused(e: TokenError):
        return edge.error_response(e.status, e.message, code=_token_code(e.status))

    @app.get("/atlassian-connect.json")
    def connect_descriptor():
        return jsonify(descriptor(config))

    @app.get("/openapi.json")
    def openapi_json():
        return jsonify(openapi_document(config))

    @app.get("/healthz")
    def healthz():
        return jsonify({"ok": True})

    return app


def _token_code(status: int) -> str:
    return {400: "bad_request", 401: "invalid_token", 403: "forbidden"}.get(status, "refused")
