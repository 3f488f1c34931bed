"""Notification channels and their rules, under /organisations/{cloud_id}/notifications.

GET  /organisations/{cloud_id}/notifications                          channels, each with its last delivery
POST /organisations/{cloud_id}/notifications/channels                 add an email or webhook channel
GET|PATCH|DELETE /organisations/{cloud_id}/notifications/channels/{channel_id}
POST /organisations/{cloud_id}/notifications/channels/{channel_id}/test    send a test message now
GET  /organisations/{cloud_id}/notifications/channels/{channel_id}/messages  the latest deliveries

The guard authorises the organisation; a channel is looked up within it (another's is the same 404 as a
missing one). A webhook's signing secret is returned once, when it is made, and never again.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from backend.api.common import iso, load
from backend.auth.access import organisation
from backend.auth.roles import least_role
from backend.db.ids import is_id, new_id
from backend.db.models import NotificationChannel, NotificationMessage, Organisation, Plan
from backend.errors import Conflict, Invalid, NotFound
from backend.notify import outbox
from backend.notify.channels import (
    FORMATS,
    KINDS,
    MAX_RECIPIENTS,
    ChannelRefused,
    check_email,
    check_webhook_url,
    masked_url,
    new_secret,
    seal_secret,
)
from backend.notify.rules import EVENTS
from backend.services import services

bp = Blueprint("notifications", __name__)
MAX_CHANNELS = 20  # per organisation
NO_CONTROL = validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="no control characters")
PRINTABLE = validate.Regexp(r"^[!-~]+$", error="printable ASCII without spaces")


class ChannelIn(Schema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=255), NO_CONTROL])
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    recipients = fields.List(
        fields.String(validate=validate.Length(min=3, max=254)),
        validate=validate.Length(min=1, max=MAX_RECIPIENTS),
        metadata={"description": "email: the addresses that get the messages"},
    )
    url = fields.String(
        validate=validate.Length(min=8, max=2000),
        metadata={"description": "webhook: an https URL (http only for hosts the operator listed)"},
    )
    format = fields.String(
        load_default="json",
        validate=validate.OneOf(FORMATS),
        metadata={"description": "webhook body: json (Keepstone's document), slack or teams"},
    )
    secret = fields.String(
        load_only=True,
        validate=[validate.Length(min=16, max=256), PRINTABLE],
        metadata={"description": "webhook signing secret; one is generated (and answered once) if left out"},
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENTS)),
        load_default=lambda: ["failure"],
        validate=validate.Length(max=len(EVENTS)),
    )
    plan_ids = fields.List(
        fields.String(validate=validate.Length(max=32)),
        load_default=list,
        validate=validate.Length(max=100),
        metadata={"description": "the plans whose runs count; empty: every plan of the organisation"},
    )
    enabled = fields.Boolean(load_default=True)

    @validates_schema
    def _by_kind(self, data: dict[str, Any], partial: Any = False, **_) -> None:
        kind = data.get("kind")
        errors: dict[str, list[str]] = {}
        if kind == "email":
            if "recipients" not in data and not partial:
                errors["recipients"] = ["an email channel needs at least one recipient"]
            bad = [m for m in (check_email(a.strip()) for a in data.get("recipients") or []) if m]
            if bad:
                errors["recipients"] = bad[:5]
            for name in ("url", "secret"):
                if name in data:
                    errors[name] = ["only for a webhook channel"]
            if data.get("format", "json") != "json":
                errors["format"] = ["only for a webhook channel"]
        elif kind == "webhook":
            if "url" not in data and not partial:
                errors["url"] = ["a webhook channel needs a URL"]
            if "recipients" in data:
                errors["recipients"] = ["only for an email channel"]
        if errors:
            raise ValidationError(errors)


class DeliveryOut(Schema):
    id = fields.String(required=True, metadata={"description": "the idempotency key, sent with every try"})
    event = fields.String(required=True)
    state = fields.String(
        required=True, validate=validate.OneOf(("pending", "sending", "delivered", "failed"))
    )
    attempts = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"example": "HTTP 200"})
    error = fields.String(required=True)
    created = fields.DateTime(required=True)
    delivered_at = fields.DateTime(required=True, allow_none=True)
    next_attempt_at = fields.DateTime(required=True, allow_none=True)


class ChannelOut(Schema):
    id = fields.String(required=True, metadata={"example": "chn_3fj2k4m5q3w6r7t8y9ua"})
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    recipients = fields.List(fields.String(), required=True)
    url = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "shortened to scheme, host and first segment: the rest is often a secret"},
    )
    format = fields.String(required=True)
    has_secret = fields.Boolean(required=True)
    events = fields.List(fields.String(), required=True)
    plan_ids = fields.List(fields.String(), required=True)
    scope = fields.String(
        required=True,
        validate=validate.OneOf(("organisation", "plans")),
        metadata={"description": "plans: only runs of plan_ids count (none, once all of them are deleted)"},
    )
    enabled = fields.Boolean(required=True)
    created = fields.DateTime(required=True)
    last_delivery = fields.Nested(DeliveryOut, required=True, allow_none=True)
    secret = fields.String(metadata={"description": "only in the answer that made the channel"})


def delivery_json(m: NotificationMessage | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "id": m.key,
        "event": m.event,
        "state": m.state,
        "attempts": m.attempts,
        "status": m.last_status,
        "error": m.last_error,
        "created": iso(m.created),
        "delivered_at": iso(m.delivered_at),
        "next_attempt_at": iso(m.next_attempt_at) if m.state == "pending" else None,
    }


def last_deliveries(s: Session, channel_ids: list[int]) -> dict[int, NotificationMessage]:
    if not channel_ids:
        return {}
    latest = (
        select(NotificationMessage.channel_id, func.max(NotificationMessage.id).label("id"))
        .where(NotificationMessage.channel_id.in_(channel_ids))
        .group_by(NotificationMessage.channel_id)
    ).subquery()
    rows = s.scalars(select(NotificationMessage).join(latest, latest.c.id == NotificationMessage.id))
    return {m.channel_id: m for m in rows}


def channel_json(c: NotificationChannel, last: NotificationMessage | None, plans: set[str]) -> dict[str, Any]:
    email = c.kind == "email"
    return {
        "id": c.public_id,
        "name": c.name,
        "kind": c.kind,
        "recipients": [a for a in c.address.split(",") if a] if email else [],
        "url": None if email else masked_url(c.address),
        "format": c.format,
        "has_secret": bool(c.secret_sealed),
        "events": list(c.events or []),
        "plan_ids": [p for p in c.plans or [] if p in plans],  # a deleted plan drops out
        "scope": "plans" if c.plans else "organisation",
        "enabled": c.enabled,
        "created": iso(c.created),
        "last_delivery": delivery_json(last),
    }


def plan_ids_of(s: Session, org: Organisation) -> set[str]:
    return set(s.scalars(select(Plan.public_id).where(Plan.organisation_id == org.id)))


def channel_of(s: Session, org: Organisation, channel_id: str) -> NotificationChannel:
    """A channel of this organisation, else 404 (the same whether or not it exists elsewhere)."""
    missing = NotFound(f"no channel {channel_id[:64]}")
    if not is_id("channel", channel_id):
        raise missing
    channel = s.scalar(
        select(NotificationChannel).where(
            NotificationChannel.public_id == channel_id, NotificationChannel.organisation_id == org.id
        )
    )
    if channel is None:
        raise missing
    return channel


def apply(s: Session, org: Organisation, channel: NotificationChannel, data: dict[str, Any]) -> str | None:
    """Check the service's rules and set the fields; the generated secret if one was made. Invalid (422)
    naming the field otherwise, with nothing changed."""
    config = services().config
    kind = data.get("kind", channel.kind)
    if "kind" in data and channel.kind and data["kind"] != channel.kind:
        raise Invalid("a channel's kind cannot change: add a new channel", {"kind": ["cannot change"]})
    if kind == "email" and not config.smtp_host:
        raise Invalid(
            "email is off on this service: the operator sets KEEPSTONE_SMTP_HOST",
            {"kind": ["email is not configured on this service (KEEPSTONE_SMTP_HOST)"]},
        )
    if "url" in data:
        try:
            data["url"] = check_webhook_url(data["url"], config)
        except ChannelRefused as e:
            raise Invalid(f"{e.field}: {e.message}", {e.field: [e.message]}) from None
    if "plan_ids" in data:
        known = plan_ids_of(s, org)
        unknown = [p for p in data["plan_ids"] if p not in known]
        if unknown:
            raise Invalid(
                "no such plan", {"plan_ids": [f"no plan {p[:40]} in this organisation" for p in unknown]}
            )
    if "name" in data:
        clash = s.scalar(
            select(NotificationChannel.id).where(
                NotificationChannel.organisation_id == org.id,
                NotificationChannel.name == data["name"],
                NotificationChannel.id != (channel.id or -1),
            )
        )
        if clash is not None:
            raise Conflict(f"a channel named {data['name']!r} exists", {"name": ["already used"]})
    channel.kind = kind
    for name in ("name", "format", "enabled"):
        if name in data:
            setattr(channel, name, data[name])
    if "events" in data:
        channel.events = [e for e in EVENTS if e in data["events"]]
    if "plan_ids" in data:
        channel.plans = list(dict.fromkeys(data["plan_ids"]))
    if "recipients" in data:
        channel.address = ",".join(dict.fromkeys(a.strip().lower() for a in data["recipients"]))
    if "url" in data:
        channel.address = data["url"]
    generated = None
    if kind == "webhook" and ("secret" in data or not channel.secret_sealed):
        secret = data.get("secret") or new_secret()
        generated = None if "secret" in data else secret
        channel.secret_sealed = seal_secret(config, org.cloud_id, channel.public_id, secret)
    return generated


def create_channel(
    s: Session, org: Organisation, data: dict[str, Any]
) -> tuple[NotificationChannel, str | None]:
    count = s.scalar(
        select(func.count())
        .select_from(NotificationChannel)
        .where(NotificationChannel.organisation_id == org.id)
    )
    if (count or 0) >= MAX_CHANNELS:
        raise Conflict(f"an organisation has at most {MAX_CHANNELS} channels")
    channel = NotificationChannel(organisation_id=org.id, public_id=new_id("channel"), kind="", address="")
    channel.format, channel.events, channel.plans, channel.enabled = "json", [], [], True
    with s.no_autoflush:
        generated = apply(s, org, channel, data)
    s.add(channel)
    s.commit()
    return channel, generated


def remove_channel(s: Session, channel: NotificationChannel) -> None:
    s.execute(delete(NotificationMessage).where(NotificationMessage.channel_id == channel.id))
    s.delete(channel)
    s.commit()


def send_test(s: Session, channel: NotificationChannel) -> NotificationMessage:
    """Enqueue a test message and try it at once (a failure stays in the outbox and is retried)."""
    message = outbox.enqueue_test(s, services().config, channel)
    s.commit()
    current_app.extensions["keepstone_notify"].deliver_now(message.id)
    s.refresh(message)
    return message


class ChannelList(Schema):
    email_enabled = fields.Boolean(required=True, metadata={"description": "SMTP is configured"})
    items = fields.List(fields.Nested(ChannelOut), required=True)


class DeliveryList(Schema):
    items = fields.List(fields.Nested(DeliveryOut), required=True)


@bp.get("/organisations/<cloud_id>/notifications")
@least_role("viewer")
def list_channels(cloud_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        channels = list(
            s.scalars(
                select(NotificationChannel)
                .where(NotificationChannel.organisation_id == org.id)
                .order_by(NotificationChannel.name)
            )
        )
        last = last_deliveries(s, [c.id for c in channels])
        plans = plan_ids_of(s, org)
        return jsonify(
            {
                "email_enabled": bool(services().config.smtp_host),
                "items": [channel_json(c, last.get(c.id), plans) for c in channels],
            }
        )


@bp.post("/organisations/<cloud_id>/notifications/channels")
@least_role("admin", "edit notifications")
def add_channel(cloud_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        data = load(ChannelIn())
        channel, generated = create_channel(s, org, data)
        body = channel_json(channel, None, plan_ids_of(s, org))
        if generated:
            body["secret"] = generated
        return jsonify(body), 201


@bp.get("/organisations/<cloud_id>/notifications/channels/<channel_id>")
@least_role("viewer")
def get_channel(cloud_id: str, channel_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        channel = channel_of(s, org, channel_id)
        last = last_deliveries(s, [channel.id]).get(channel.id)
        return jsonify(channel_json(channel, last, plan_ids_of(s, org)))


@bp.patch("/organisations/<cloud_id>/notifications/channels/<channel_id>")
@least_role("admin", "edit notifications")
def update_channel(cloud_id: str, channel_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        channel = channel_of(s, org, channel_id)
        data = load(ChannelIn(), partial=True)
        if data.get("url") == masked_url(channel.address):
            del data["url"]  # the shortened URL an answer showed: keep the stored one
        data.setdefault("kind", channel.kind)
        ChannelIn()._by_kind(data, partial=True)  # the kind's rules, with the stored kind
        with s.no_autoflush:
            apply(s, org, channel, data)
        s.commit()
        last = last_deliveries(s, [channel.id]).get(channel.id)
        return jsonify(channel_json(channel, last, plan_ids_of(s, org)))


@bp.delete("/organisations/<cloud_id>/notifications/channels/<channel_id>")
@least_role("admin", "edit notifications")
def delete_channel(cloud_id: str, channel_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        remove_channel(s, channel_of(s, org, channel_id))
        return "", 204


@bp.post("/organisations/<cloud_id>/notifications/channels/<channel_id>/test")
@least_role("admin", "send test notifications")
def test_channel(cloud_id: str, channel_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        channel = channel_of(s, org, channel_id)
        return jsonify(delivery_json(send_test(s, channel)))


@bp.get("/organisations/<cloud_id>/notifications/channels/<channel_id>/messages")
@least_role("viewer")
def channel_messages(cloud_id: str, channel_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        channel = channel_of(s, org, channel_id)
        rows = s.scalars(
            select(NotificationMessage)
            .where(NotificationMessage.channel_id == channel.id)
            .order_by(NotificationMessage.id.desc())
            .limit(50)
        )
        return jsonify({"items": [delivery_json(m) for m in rows]})
