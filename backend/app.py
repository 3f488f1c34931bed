"""The management service's application factory: it only wires the parts together."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from backend import errors
from backend.api import init_app as init_api
from backend.auth import roles, sessions
from backend.auth.sso import bp as sso_bp
from backend.auth.tokens import TokenVerifier
from backend.config import Config
from backend.db import Database, migrate
from backend.health import bp as health_bp
from backend.notify import init_app as init_notify
from backend.restores import RestoreService
from backend.runs import RunService, make_executor
from backend.services import Services
from backend.ui import views as ui
from keepstone.web import harden

STATIC = Path(__file__).resolve().parents[1] / "static"
csrf = CSRFProtect()
# Every answer, errors and static files included. 'self' only: no inline script or style in the UI.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def create_app(config: Config | None = None) -> Flask:
    """Create the backend app: migrate the database, start the run executor and (optionally) the scheduler."""
    config = config or Config()
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config.update(
        SECRET_KEY=config.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=config.cookie_secure == "on",
        WTF_CSRF_CHECK_DEFAULT=False,
        JSON_SORT_KEYS=False,
    )
    harden(app)
    if config.trusted_proxies > 0:  # only then do X-Forwarded-For/-Proto count (client address, https)
        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    migrate(config.database_url)
    db = Database(config.database_url)
    runs = RunService(config, db, make_executor(config))  # threads here, or Celery workers
    svc = Services(config, db, TokenVerifier(config.connector_jwks_url, config.connector_issuer), runs)
    app.extensions["keepstone"] = svc
    send = runs.executor.send if config.executor == "celery" else None  # type: ignore[attr-defined]
    svc.restores = RestoreService(config, db, send=send)  # restores from the UI; unfinished ones resume
    svc.restores.resume_unfinished()
    init_notify(app, config, db)  # the notification sender (backend/notify), a thread in this process
    errors.init_app(app)
    sessions.init_app(app)
    csrf.init_app(app)
    init_api(app)
    app.register_blueprint(sso_bp)
    app.register_blueprint(health_bp)  # GET /healthz (backend/health.py)
    ui.init_app(app, config)  # after errors.init_app: its pages leave /api/ and /sso errors to that JSON
    from backend import audit

    audit.init_app(app)  # one audit event per write request, whichever blueprint (backend/audit/hook.py)

    @app.before_request
    def protect_session_writes() -> None:
        # Browser sessions must prove the form/script is ours; bearer-token calls and the SSO hand-off
        # (whose signed token is the proof) need no CSRF token.
        # The API checks CSRF itself, after authentication (backend/api/__init__.py).
        if request.method in ("GET", "HEAD", "OPTIONS") or request.path == "/sso":
            return
        if request.path.startswith("/api/"):
            return
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return
        csrf.protect()

    roles.init_app(app)  # after the CSRF check: every non-API route's least role (backend/auth/roles.py)

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        # same-origin: our own pages keep the Referer that flask-wtf's https CSRF check needs; no other
        # site ever learns a Keepstone URL.
        headers.setdefault("Referrer-Policy", "same-origin")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", HSTS)
        if request.path.startswith(("/api/", "/sso")) or response.mimetype == "text/html":
            # API answers (the account above all) and pages (signed-in ones, the CSRF token in forms)
            headers["Cache-Control"] = "no-store"
        return response

    if config.scheduler:
        from backend.scheduler import PlanScheduler

        svc.scheduler = PlanScheduler(
            config.database_url, runs, config.misfire_grace_seconds, config.scheduler_sync_seconds
        )
        svc.scheduler.start()
    return app


def shutdown(app: Flask) -> None:
    """Stop what create_app started: the scheduler, the notification sender, the run and restore workers
    and the database pool. Safe to call twice."""
    svc: Services = app.extensions["keepstone"]
    if svc.scheduler is not None:
        svc.scheduler.shutdown()
        svc.scheduler = None
    if "keepstone_notify" in app.extensions:
        app.extensions["keepstone_notify"].stop()
    svc.runs.executor.shutdown()
    if svc.restores is not None:
        svc.restores.shutdown()
    svc.db.engine.dispose()
