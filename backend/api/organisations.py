"""Organisations (tenants keyed by Jira cloudId): install/update, suspend, status for the panel."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates
from sqlalchemy import select

from backend.api.common import iso, load
from backend.auth.access import caller, organisation
from backend.backup import BackupSpec
from backend.db.models import Organisation, Plan
from backend.panel_status import panel_status
from backend.repository.retention import DEFAULT_ROTATION
from backend.services import services

bp = Blueprint("organisations", __name__)
DEFAULT_SCHEDULE = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "hour": 2}


class OrganisationIn(Schema):
    site_url = fields.Url(
        required=True, require_tld=False, schemes={"http", "https"}, validate=validate.Length(max=255)
    )
    display_name = fields.String(load_default="", validate=validate.Length(max=255))
    time_zone = fields.String(load_default="UTC", validate=validate.Length(min=1, max=64))

    @validates("time_zone")
    def _zone(self, value: str, **_) -> None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"unknown time zone {value!r}") from None


class OrganisationOut(Schema):
    cloud_id = fields.String(required=True)
    site_url = fields.String(required=True)
    display_name = fields.String(required=True)
    time_zone = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(("active", "suspended")))
    created = fields.DateTime(required=True)


class OrganisationList(Schema):
    items = fields.List(fields.Nested(OrganisationOut), required=True)


class CurrentRun(Schema):
    id = fields.String(required=True)
    state = fields.String(required=True)
    progress = fields.Dict(required=True)


class RunSummary(Schema):
    """A finished run as the panel names it: the last good one, or the last attempt that went worse."""

    id = fields.String(required=True)
    plan = fields.String(required=True)
    state = fields.String(required=True)
    at = fields.DateTime(required=True, allow_none=True)
    reason = fields.String(required=True)
    warnings = fields.Integer(required=True)


class PlanRef(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)


class StatusOut(Schema):
    """What the panel inside Jira shows."""

    cloud_id = fields.String(required=True)
    protected_projects = fields.Integer(required=True)
    service_region = fields.String(required=True)
    storage_region = fields.String(required=True)
    state = fields.String(required=True)
    last_backup_at = fields.DateTime(required=True, allow_none=True)
    last_backup_state = fields.String(required=True, allow_none=True)
    next_backup_at = fields.DateTime(required=True, allow_none=True)
    current_run = fields.Nested(CurrentRun, required=True, allow_none=True)
    has_account = fields.Boolean(required=True)
    last_backup = fields.Nested(RunSummary, required=True, allow_none=True)
    last_attempt = fields.Nested(RunSummary, required=True, allow_none=True)
    warnings = fields.Integer(required=True)
    next_backup_plan = fields.Nested(PlanRef, required=True, allow_none=True)
    first_step = fields.String(required=True, allow_none=True)


def org_json(org: Organisation) -> dict:
    return {
        "cloud_id": org.cloud_id,
        "site_url": org.site_url,
        "display_name": org.display_name,
        "time_zone": org.time_zone,
        "state": org.state,
        "created": iso(org.created),
    }


def default_plan(org: Organisation) -> Plan:
    return Plan(
        organisation=org,
        name="Default plan",
        is_default=True,
        enabled=True,
        spec=BackupSpec().to_dict(),
        schedule=dict(DEFAULT_SCHEDULE),
        rotation=dict(DEFAULT_ROTATION),
        storage_url=services().config.repository_url(org.cloud_id),
    )


@bp.put("/organisations/<cloud_id>")
def put_organisation(cloud_id: str):
    data = load(OrganisationIn())
    svc = services()
    with svc.db.session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == cloud_id))
        created = org is None
        if created:
            org = Organisation(cloud_id=cloud_id, **data)
            s.add(org)
            s.add(default_plan(org))
        else:
            for k, v in data.items():
                setattr(org, k, v)
            org.state = "active"
        s.commit()
        if svc.scheduler:
            for plan in org.plans:
                svc.scheduler.sync(plan.id, plan.schedule, org.time_zone, plan.enabled)
        return jsonify(org_json(org)), 201 if created else 200


@bp.post("/organisations/<cloud_id>/suspend")
def suspend(cloud_id: str):
    svc = services()
    with svc.db.session() as s:
        org = organisation(s, cloud_id)
        org.state = "suspended"
        s.commit()
        if svc.scheduler:
            for plan in org.plans:
                svc.scheduler.sync(plan.id, {}, org.time_zone, False)
        return jsonify(org_json(org))


@bp.get("/organisations")
def my_organisations():
    """The organisations the caller may act for: a member's (pinned session: one), or the token's tenant."""
    with services().db.session() as s:
        orgs = s.scalars(
            select(Organisation)
            .where(Organisation.cloud_id.in_(caller().tenants))
            .order_by(Organisation.display_name, Organisation.cloud_id)
        )
        return jsonify({"items": [org_json(o) for o in orgs]})


@bp.get("/organisations/<cloud_id>/status")
def status(cloud_id: str):
    svc = services()
    with svc.db.session() as s:
        org = organisation(s, cloud_id)
        return jsonify(
            {
                "cloud_id": org.cloud_id,
                "service_region": svc.config.service_region,
                "storage_region": _storage_region(org, svc.config.storage_region),
                **panel_status(s, org),
            }
        )


def _storage_region(org: Organisation, default: str) -> str:
    """The region label of the default plan's primary storage, when it has one; else the service's."""
    plan = next((p for p in org.plans if p.is_default), None)
    if plan is not None and plan.storage is not None and plan.storage.region:
        return plan.storage.region
    return default
