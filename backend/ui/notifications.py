"""The Notifications page: channels (email, webhook) with their rules and last delivery; add, edit, delete,
Send test.

Reads are for every member (viewer); writes are configuration (admin), declared with @least_role and
checked centrally before the view (backend/auth/roles.py). A channel is looked up in the page's current
organisation only. A form becomes the API's JSON body and is loaded with the API's schema (`ChannelIn`)
and the same service rules (`apply`): a bad submit stores nothing and shows each error beside its field.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from backend.api.notifications import (
    ChannelIn,
    apply,
    channel_json,
    channel_of,
    create_channel,
    last_deliveries,
    remove_channel,
    send_test,
)
from backend.auth.roles import least_role
from backend.db.models import NotificationChannel, NotificationMessage, Organisation, Plan
from backend.errors import ApiError
from backend.notify.channels import FORMATS, masked_url
from backend.notify.rules import EVENT_NAMES, EVENTS
from backend.services import services
from backend.ui.plan_form import when
from backend.ui.shell import current_org, member, organisations, page
from backend.ui.views import bp

DELIVERY_LOZENGE = {"delivered": "success", "failed": "removed", "pending": "moved", "sending": "inprogress"}
DELIVERY_WORDS = {"delivered": "delivered", "failed": "failed", "pending": "retrying", "sending": "sending"}
FORMAT_NAMES = {"json": "JSON (Keepstone's document, signed)", "slack": "Slack incoming webhook", "teams": "Microsoft Teams (Workflows, Adaptive Card)"}  # fmt: skip
EVENT_HINTS = {
    "failure": "A run failed or some of its projects did.",
    "warning": "A run finished with warnings (skipped attachments, a replica not copied).",
    "success": "A run succeeded.",
    "digest": "Once a day: every run of the day before, in the organisation's time zone.",
}


def _org(s: Session) -> Organisation | None:
    return current_org(s, organisations(s))


def _channel(s: Session, channel_id: str) -> tuple[Organisation, NotificationChannel]:
    org = _org(s)
    if org is None:
        abort(404)
    try:
        return org, channel_of(s, org, channel_id)
    except ApiError:
        abort(404)


def _plans(s: Session, org: Organisation) -> list[Plan]:
    return list(s.scalars(select(Plan).where(Plan.organisation_id == org.id).order_by(Plan.name)))


def body_of(form: MultiDict, kind: str) -> dict[str, Any]:
    """The API's JSON body from the form (the fields of the channel's kind only)."""
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "kind": kind,
        "events": form.getlist("events"),
        "plan_ids": form.getlist("plan_ids") if form.get("scope") == "selected" else [],
        "enabled": form.get("enabled") == "on",
    }
    if kind == "email":
        text = form.get("recipients", "")
        body["recipients"] = [
            a.strip() for a in text.replace(";", ",").replace("\n", ",").split(",") if a.strip()
        ]
    else:
        body["url"] = form.get("url", "").strip()
        body["format"] = form.get("format", "json")
        if form.get("secret", "").strip():
            body["secret"] = form.get("secret", "").strip()
    return body


def form_of(channel: NotificationChannel) -> MultiDict:
    data = channel_json(channel, None, set(channel.plans or []))
    form = MultiDict(
        {
            "name": data["name"],
            "kind": data["kind"],
            "recipients": ", ".join(data["recipients"]),
            "url": data["url"] or "",
            "format": data["format"],
            "scope": "selected" if data["scope"] == "plans" else "all",
        }
    )
    if data["enabled"]:
        form["enabled"] = "on"
    form.setlist("events", data["events"])
    form.setlist("plan_ids", data["plan_ids"])
    return form


def _recent(s: Session, channel: NotificationChannel | None, tz: str) -> list[dict[str, Any]]:
    """The channel's latest deliveries, newest first, for the edit page."""
    if channel is None:
        return []
    rows = s.scalars(
        select(NotificationMessage)
        .where(NotificationMessage.channel_id == channel.id)
        .order_by(NotificationMessage.id.desc())
        .limit(10)
    )
    return [
        {"m": m, "at": when(m.delivered_at or m.created, tz), "subject": (m.payload or {}).get("subject", "")}
        for m in rows
    ]


def _form_page(s: Session, org: Organisation, form: MultiDict, channel=None, errors=None, status=200):
    answer = page(
        "notifications_form.html",
        s,
        org,
        section="ui.notifications",
        channel=channel,
        v=form,
        errors=errors or {},
        plans=_plans(s, org),
        events=EVENTS,
        event_names=EVENT_NAMES,
        event_hints=EVENT_HINTS,
        formats=FORMATS,
        format_names=FORMAT_NAMES,
        email_enabled=bool(services().config.smtp_host),
        recent=_recent(s, channel, org.time_zone),
        lozenge=DELIVERY_LOZENGE,
        words=DELIVERY_WORDS,
    )
    return answer, status


def _flat(messages: Any) -> list[str]:
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _flat(value)]
    if isinstance(messages, list):
        return [m for value in messages for m in _flat(value)]
    return [str(messages)]


def _errors(e: Exception) -> dict[str, list[str]]:
    """{form field: [messages]} from marshmallow's messages or an ApiError's fields."""
    if isinstance(e, ValidationError):
        messages = e.messages if isinstance(e.messages, dict) else {"form": e.messages}
        return {("form" if k == "_schema" else k): list(dict.fromkeys(_flat(v))) for k, v in messages.items()}
    assert isinstance(e, ApiError)
    fields = {k: v if isinstance(v, list) else [str(v)] for k, v in e.fields.items()}
    return fields or {"form": [e.message]}


@bp.get("/notifications")
@member
def notifications():
    with services().db.session() as s:
        org = _org(s)
        if org is None:
            return page("no_org.html", s, title="Notifications")
        channels = list(
            s.scalars(
                select(NotificationChannel)
                .where(NotificationChannel.organisation_id == org.id)
                .order_by(NotificationChannel.name)
            )
        )
        last = last_deliveries(s, [c.id for c in channels])
        plan_names = {p.public_id: p.name for p in _plans(s, org)}
        rows = []
        for c in channels:
            data = channel_json(c, last.get(c.id), set(plan_names))
            m = last.get(c.id)
            rows.append(
                {
                    "c": data,
                    "plans": [plan_names[p] for p in data["plan_ids"]],
                    "last": m,
                    "last_at": when(m.delivered_at or m.created, org.time_zone) if m else "",
                    "next_at": when(m.next_attempt_at, org.time_zone) if m and m.state == "pending" else "",
                }
            )
        return page(
            "notifications.html",
            s,
            org,
            rows=rows,
            event_names=EVENT_NAMES,
            lozenge=DELIVERY_LOZENGE,
            words=DELIVERY_WORDS,
            email_enabled=bool(services().config.smtp_host),
        )


@bp.get("/notifications/new")
@member
@least_role("admin", "edit notifications")
def new_channel():
    with services().db.session() as s:
        org = _org(s)
        if org is None:
            return page("no_org.html", s, title="Notifications")
        kind = request.args.get("kind", "webhook")
        form = MultiDict({"kind": kind if kind in ("email", "webhook") else "webhook", "scope": "all"})
        form["enabled"] = "on"
        form.setlist("events", ["failure"])
        return _form_page(s, org, form)


@bp.post("/notifications/new")
@member
@least_role("admin", "edit notifications")
def create_channel_page():
    form = request.form
    with services().db.session() as s:
        org = _org(s)
        if org is None:
            abort(404)
        kind = form.get("kind", "")
        if kind not in ("email", "webhook"):
            return _form_page(s, org, form, errors={"kind": ["choose email or webhook"]}, status=422)
        try:
            data = ChannelIn().load(body_of(form, kind))
            channel, generated = create_channel(s, org, data)
        except (ValidationError, ApiError) as e:
            s.rollback()
            return _form_page(s, org, form, errors=_errors(e), status=422)
        if generated:
            return page(
                "notifications_secret.html",
                s,
                org,
                section="ui.notifications",
                channel=channel,
                secret=generated,
            )
        flash(f"Channel “{channel.name}” added. Send a test to check it.", "success")
        return redirect(url_for("ui.notifications", org=org.cloud_id), code=303)


@bp.get("/notifications/<channel_id>/edit")
@member
@least_role("admin", "edit notifications")
def edit_channel(channel_id: str):
    with services().db.session() as s:
        org, channel = _channel(s, channel_id)
        return _form_page(s, org, form_of(channel), channel=channel)


@bp.post("/notifications/<channel_id>/edit")
@member
@least_role("admin", "edit notifications")
def update_channel_page(channel_id: str):
    form = request.form
    with services().db.session() as s:
        org, channel = _channel(s, channel_id)
        try:
            body = body_of(form, channel.kind)
            if body.get("url") == masked_url(channel.address):
                del body["url"]  # left as shown (shortened): keep the stored URL
            data = ChannelIn().load(body, partial=("url",))
            with s.no_autoflush:
                apply(s, org, channel, data)
            s.commit()
        except (ValidationError, ApiError) as e:
            s.rollback()
            return _form_page(s, org, form, channel=channel, errors=_errors(e), status=422)
        flash(f"Channel “{channel.name}” saved.", "success")
        return redirect(url_for("ui.notifications", org=org.cloud_id), code=303)


@bp.post("/notifications/<channel_id>/test")
@member
@least_role("admin", "send test notifications")
def test_channel_page(channel_id: str):
    with services().db.session() as s:
        org, channel = _channel(s, channel_id)
        name = channel.name
        message = send_test(s, channel)
        if message.state == "delivered":
            flash(f"Test message to “{name}” delivered ({message.last_status}).", "success")
        elif message.state == "pending":
            flash(
                f"Test message to “{name}” not delivered yet: {message.last_error or message.last_status}. "
                "It is retried with backoff; the list shows how it goes.",
                "warning",
            )
        else:
            flash(f"Test message to “{name}” failed: {message.last_error or message.last_status}.", "error")
        return redirect(url_for("ui.notifications", org=org.cloud_id), code=303)


@bp.post("/notifications/<channel_id>/delete")
@member
@least_role("admin", "edit notifications")
def delete_channel_page(channel_id: str):
    with services().db.session() as s:
        org, channel = _channel(s, channel_id)
        name = channel.name
        remove_channel(s, channel)
        flash(f"Channel “{name}” deleted.", "success")
        return redirect(url_for("ui.notifications", org=org.cloud_id), code=303)
