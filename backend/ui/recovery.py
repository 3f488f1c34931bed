"""Settings, Recovery: whether the organisation has a recovery passphrase, and (admins) set, replace or
remove it. The rules and the work are the API's (backend/api/recovery.py: the same schema, the same
functions), so the form and PUT /recovery-passphrase cannot disagree; a bad submit changes nothing and
says why beside the field. The passphrase is never shown again, nor kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, request, url_for
from marshmallow import ValidationError

from backend.api.recovery import RecoveryIn, remove_passphrase, set_passphrase, status
from backend.auth.roles import least_role
from backend.services import services
from backend.ui.plan_form import when
from backend.ui.settings import _org
from backend.ui.shell import member, page
from backend.ui.views import bp


def _page(cloud_id: str, *, errors: dict[str, list[str]] | None = None, label: str = "", code: int = 200):
    with services().db.session() as s:
        org = _org(s) or abort(404)
        answer = page(
            "settings_recovery.html",
            s,
            org,
            section="ui.settings",
            tab="recovery",
            recovery=status(cloud_id),
            errors=errors or {},
            label=label,
            when=lambda d: when(datetime.fromisoformat(d), org.time_zone) if d else "",
        )
    return answer, code


def _summary(outcomes: list[dict[str, Any]]) -> tuple[str, str]:
    """One sentence about where the change went, and the flash category (error when one failed)."""
    done = sum(1 for o in outcomes if o["state"] in ("updated", "unchanged"))
    empty = sum(1 for o in outcomes if o["state"] == "empty")
    later = [o for o in outcomes if o["state"] in ("failed", "postponed")]
    parts = [f"{done} {'repository' if done == 1 else 'repositories'} up to date"]
    if empty:
        parts.append(f"{empty} without a repository yet (the first run adds it)")
    parts += [f"{o['repository']}: {o['message']}" for o in later]
    return "; ".join(parts) + ".", "error" if later else "success"


@bp.get("/settings/recovery")
@member
@least_role("viewer")
def recovery_settings():
    with services().db.session() as s:
        org = _org(s)
        if org is None:
            return page("no_org.html", s, title="Settings")
        cloud_id = org.cloud_id
    return _page(cloud_id)


@bp.post("/settings/recovery")
@member
@least_role("admin", "set the recovery passphrase")
def set_recovery():
    with services().db.session() as s:
        cloud_id = (_org(s) or abort(404)).cloud_id
    form = {"passphrase": request.form.get("passphrase", ""), "label": request.form.get("label", "").strip()}
    errors: dict[str, list[str]] = {}
    try:
        data = RecoveryIn().load(form)
    except ValidationError as e:
        errors = {k: v if isinstance(v, list) else [str(v)] for k, v in e.messages.items()}
    if not errors and request.form.get("again", "") != form["passphrase"]:
        errors = {"again": ["the two passphrases differ"]}
    if errors:
        return _page(cloud_id, errors=errors, label=form["label"], code=422)
    answer = set_passphrase(cloud_id, data)
    text, category = _summary(answer["repositories"])
    flash(f"Recovery passphrase set (fingerprint {answer['fingerprint']}): {text}", category)
    return redirect(url_for("ui.recovery_settings", org=cloud_id), code=303)


@bp.post("/settings/recovery/remove")
@member
@least_role("admin", "remove the recovery passphrase")
def remove_recovery():
    with services().db.session() as s:
        cloud_id = (_org(s) or abort(404)).cloud_id
    answer = remove_passphrase(cloud_id)
    text, category = _summary(answer["repositories"])
    flash(f"Recovery passphrase removed: {text}", category)
    return redirect(url_for("ui.recovery_settings", org=cloud_id), code=303)
