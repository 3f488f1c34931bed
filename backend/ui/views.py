"""Views of the management UI (server-rendered; the dashboard refreshes its run table from the API)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash

from backend.auth.sessions import load_session_user
from backend.db.models import Organisation, Run, User
from backend.services import services

bp = Blueprint("ui", __name__, template_folder="templates")


@bp.get("/login")
def login():
    return render_template("login.html", error=None)


@bp.post("/login")
def login_post():
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    with services().db.session() as s:
        user = s.scalar(select(User).where(User.email == email))
        ok = user is not None and user.password_hash and check_password_hash(user.password_hash, password)
    if not ok:
        return render_template("login.html", error="Wrong email or password."), 401
    session.clear()
    login_user(load_session_user(str(user.id)))
    return redirect(url_for("ui.dashboard"), code=303)


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("ui.login"), code=303)


@bp.get("/")
@login_required
def dashboard():
    visible = [c for c in current_user.cloud_ids if current_user.can_see(c)]
    wanted = request.args.get("org") or (visible[0] if visible else None)
    if wanted not in visible:
        return render_template("dashboard.html", org=None, runs=[], user=current_user), 200
    with services().db.session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == wanted))
        runs = list(
            s.scalars(select(Run).where(Run.organisation_id == org.id).order_by(Run.id.desc()).limit(20))
        )
        for run in runs:
            list(run.projects)
        return render_template("dashboard.html", org=org, runs=runs, user=current_user, orgs=visible)
