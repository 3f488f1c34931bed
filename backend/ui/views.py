"""Views of the management UI: sign-in, the dashboard, error pages (the other pages: backend/ui/pages.py).

Sign-in does the same work whether or not the email has an account (an unknown email is checked against
a dummy hash made the same way as real ones), and is throttled per account and per client address
(Flask-Limiter; `init_app`). Every HTTP error outside /api/ and /sso is a styled page (`error.html`).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from datetime import datetime

from flask import Blueprint, Flask, current_app, redirect, render_template, request, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import login_required
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash, generate_password_hash

from backend.auth.sessions import end_session, start_session
from backend.config import Config
from backend.db.models import Run, User
from backend.services import services
from keepstone.terminal import size

bp = Blueprint("ui", __name__, template_folder="templates")
JSON_PATHS = ("/api/", "/sso")  # their errors stay JSON (backend/errors.py)


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password, made like every real one (werkzeug's default method and cost)."""
    return generate_password_hash(secrets.token_urlsafe(32))


def password_matches(user: User | None, password: str) -> bool:
    """Check the password; without an account (or a password) the same check runs on the dummy hash."""
    stored = user.password_hash if user is not None and user.password_hash else None
    ok = check_password_hash(stored or dummy_hash(), password)
    return ok and stored is not None


def _form_email() -> str:
    return request.form.get("email", "").strip().lower()


def account_key() -> str:
    """The throttle's per-account key: a digest of the normalised email (no address in the store)."""
    return "account:" + hashlib.sha256(_form_email().encode()).hexdigest()


def address_key() -> str:
    return "address:" + (get_remote_address() or "")


@bp.get("/login")
def login():
    return render_template("login.html", error=None)


@bp.post("/login")
def login_post():
    email = _form_email()
    password = request.form.get("password", "")
    with services().db.session() as s:
        user = s.scalar(select(User).where(User.email == email)) if email else None
        if not password_matches(user, password):
            return render_template("login.html", error="Wrong email or password."), 401
        start_session(s, user)
    return redirect(url_for("ui.dashboard"), code=303)


@bp.post("/logout")
def logout():
    end_session()
    return redirect(url_for("ui.login"), code=303)


@bp.get("/")
@login_required
def dashboard():
    from backend.ui.shell import current_org, organisations, page

    with services().db.session() as s:
        org = current_org(s, organisations(s))
        if org is None:
            return page("no_org.html", s, title="Dashboard")
        runs = list(
            s.scalars(select(Run).where(Run.organisation_id == org.id).order_by(Run.id.desc()).limit(10))
        )
        for run in runs:
            list(run.projects)
        plans = [p for p in org.plans if p.enabled]
        from backend.api import charts  # the charts' JSON; the archived projects are listed here too
        from backend.ui.plan_form import when

        return page(
            "dashboard.html",
            s,
            org,
            runs=runs,
            plans=len(org.plans),
            enabled=len(plans),
            when=lambda d: when(d, org.time_zone),
            archived=charts.archived_projects(s, org, charts.listed_by_latest_runs(s, org)),
            iso_when=lambda v: when(datetime.fromisoformat(v), org.time_zone),
            size=size,
        )


ERROR_TEXT = {
    400: ("Bad request", "The request could not be understood. Reload the page and try again."),
    401: ("Sign in needed", "Sign in to see this page."),
    403: ("Not allowed", "You may not open this page."),
    404: ("Page not found", "There is no page at this address."),
    405: ("Not allowed here", "This page does not accept that kind of request."),
    413: ("Too large", "The request was larger than Keepstone accepts."),
    429: ("Too many attempts", "Too many sign-in attempts. Wait a moment, then try again."),
    500: ("Something went wrong", "Keepstone could not answer this request. The error has been logged."),
}


def error_page(e: HTTPException):
    """A styled page for an HTTP error; only our own words, never the exception's details."""
    status = e.code or 500
    title, text = ERROR_TEXT.get(status) or ERROR_TEXT[500 if status >= 500 else 400]
    retry_after = _retry_after() if status == 429 else None
    # A 5xx page stays plain (no signed-in bar), so rendering it cannot fail on what just failed.
    body = render_template(
        "error.html", status=status, title=title, text=text, retry_after=retry_after, plain=status >= 500
    )
    response = e.get_response()  # keeps what the error itself sets, e.g. Allow on a 405
    response.set_data(body)
    response.mimetype = "text/html"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _retry_after() -> int | None:
    """Seconds until the breached sign-in limit lets the next attempt through."""
    limiter = current_app.extensions.get("keepstone_limiter")
    breached = limiter.current_limit if limiter is not None else None
    if breached is None:
        return None
    try:
        reset_at = breached.reset_at
    except Exception:  # the store went away mid-request: the page still answers, without a figure
        return None
    return max(1, int(reset_at - time.time()) + 1)


def init_app(app: Flask, config: Config) -> None:
    """Register the UI: its blueprint, the sign-in throttle, and styled error pages outside the API."""
    # Their routes join bp before it is registered: Settings (members, invitations, Jira accounts, the
    # recovery passphrase), audit, plans and runs, restore, the snapshot browser.
    from backend.ui import audit, pages, recovery, restore, settings, snapshots  # noqa: F401

    app.register_blueprint(bp)
    dummy_hash()  # made now, so the first unknown email is not the one slow answer that stands out
    limiter = Limiter(
        key_func=address_key,
        app=app,
        storage_uri=config.ratelimit_storage_url,
        strategy="moving-window",
        key_prefix=config.ratelimit_key_prefix,
        headers_enabled=False,  # Retry-After goes on the 429 only (error_page), not on every answer
        in_memory_fallback_enabled=True,  # the store down: still throttled, per process
    )
    app.extensions["keepstone_limiter"] = limiter
    view = app.view_functions["ui.login_post"]
    view = limiter.limit(config.login_limit_per_account, key_func=account_key, scope="login-account")(view)
    view = limiter.limit(config.login_limit_per_address, key_func=address_key, scope="login-address")(view)
    app.view_functions["ui.login_post"] = view

    # backend/errors.py answers every HTTPException as JSON under /api/ and /sso; elsewhere a page.
    json_errors = app.error_handler_spec[None][None].get(HTTPException)

    def http_error(e: HTTPException):
        if request.path.startswith(JSON_PATHS) and json_errors is not None:
            return json_errors(e)
        return error_page(e)

    app.register_error_handler(HTTPException, http_error)
