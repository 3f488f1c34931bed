"""The management service's application factory: it only wires the parts together."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_wtf.csrf import CSRFProtect

from backend import errors
from backend.api import init_app as init_api
from backend.auth import sessions
from backend.auth.sso import bp as sso_bp
from backend.auth.tokens import TokenVerifier
from backend.config import Config
from backend.db import Database, migrate
from backend.runs import RunService, ThreadRunExecutor
from backend.services import Services
from backend.ui.views import bp as ui_bp

STATIC = Path(__file__).resolve().parents[1] / "static"
csrf = CSRFProtect()


def create_app(config: Config | None = None) -> Flask:
    """Create the backend app: migrate the database, start the run executor and (optionally) the scheduler."""
    config = config or Config()
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config.update(
        SECRET_KEY=config.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_CHECK_DEFAULT=False,
        JSON_SORT_KEYS=False,
    )
    migrate(config.database_url)
    db = Database(config.database_url)
    runs = RunService(config, db, ThreadRunExecutor(config.run_workers))
    svc = Services(config, db, TokenVerifier(config.connector_jwks_url, config.connector_issuer), runs)
    app.extensions["keepstone"] = svc
    errors.init_app(app)
    sessions.init_app(app)
    csrf.init_app(app)
    init_api(app)
    app.register_blueprint(sso_bp)
    app.register_blueprint(ui_bp)

    @app.before_request
    def protect_session_writes() -> None:
        # Browser sessions must prove the form/script is ours; bearer-token calls and the SSO hand-off
        # (whose signed token is the proof) need no CSRF token.
        if request.method in ("GET", "HEAD", "OPTIONS") or request.path == "/sso":
            return
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return
        csrf.protect()

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
        return response

    if config.scheduler:
        from backend.scheduler import PlanScheduler

        svc.scheduler = PlanScheduler(config.database_url, runs, config.misfire_grace_seconds)
        svc.scheduler.start()
    return app


def shutdown(app: Flask) -> None:
    """Stop what create_app started: the scheduler, the run workers and the database pool."""
    svc: Services = app.extensions["keepstone"]
    if svc.scheduler is not None:
        svc.scheduler.shutdown()
        svc.scheduler = None
    svc.runs.executor.shutdown()
    svc.db.engine.dispose()
