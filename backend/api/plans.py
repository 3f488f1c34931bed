"""Backup plans: what to back up (the engine's BackupSpec), when (schedule), how long to keep (rotation),
where to (a primary storage, none meaning the default repository URL, and replicas)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from backend import storages
from backend.api.common import iso, load
from backend.auth.access import organisation, target
from backend.backup import BackupSpec, SpecError
from backend.backup.spec import BackupSpecSchema
from backend.db.ids import is_id
from backend.db.models import (
    ActiveRun,
    CatalogSnapshot,
    Organisation,
    Plan,
    PlanReplica,
    ProjectRun,
    Run,
    RunLog,
    ScheduledFire,
    StorageRecord,
)
from backend.errors import Conflict, Invalid
from backend.plans_check import check_plan
from backend.repository.retention import DEFAULT_ROTATION, MAX_COUNT, SCHEMES, Policy, PolicyError
from backend.scheduler import DAYS, ScheduleError, next_fire, trigger_for
from backend.services import services

bp = Blueprint("plans", __name__)
MAX_REPLICAS = 8


class ScheduleSchema(Schema):
    days = fields.List(fields.String(validate=validate.OneOf(DAYS)), validate=validate.Length(max=7))
    hour = fields.Integer(strict=True, validate=validate.Range(0, 23))
    cron = fields.String(validate=validate.Length(min=1, max=255))
    time_zone = fields.String(validate=validate.Length(min=1, max=64))

    @validates_schema
    def _possible(self, data, **_) -> None:
        if not data.get("cron") and ("days" not in data or "hour" not in data):
            raise ValidationError("give days and hour, or a cron expression")
        if "days" in data and not data["days"]:
            raise ValidationError({"days": ["choose at least one day"]})
        try:
            trigger_for(data, "UTC")
        except ScheduleError as e:
            raise ValidationError({e.field: [str(e)]}) from None


class RotationSchema(Schema):
    """How long to keep: gfs (calendar counts), custom (any rules), unlimited. See docs/retention.md.

    Counts are whole numbers >= 0 (0 turns a rule off). Stored plans from before the keep_* names
    ({"scheme": "gfs", "daily": 7, ...}) still load: the old names are read as keep_daily etc., and a
    loaded policy is stored in its canonical keep_* form.
    """

    scheme = fields.String(required=True, validate=validate.OneOf(SCHEMES))
    keep_last = fields.Integer(strict=True, validate=validate.Range(0, MAX_COUNT))
    keep_hourly = fields.Integer(strict=True, validate=validate.Range(0, MAX_COUNT))
    keep_daily = fields.Integer(strict=True, validate=validate.Range(0, MAX_COUNT))
    keep_weekly = fields.Integer(strict=True, validate=validate.Range(0, MAX_COUNT))
    keep_monthly = fields.Integer(strict=True, validate=validate.Range(0, MAX_COUNT))
    keep_yearly = fields.Integer(strict=True, validate=validate.Range(0, MAX_COUNT))
    keep_within = fields.String(validate=validate.Length(min=2, max=32), metadata={"example": "30d"})
    # the names stored before keep_*: accepted, never answered
    hourly = fields.Integer(strict=True, load_only=True, validate=validate.Range(0, MAX_COUNT))
    daily = fields.Integer(strict=True, load_only=True, validate=validate.Range(0, MAX_COUNT))
    weekly = fields.Integer(strict=True, load_only=True, validate=validate.Range(0, MAX_COUNT))
    monthly = fields.Integer(strict=True, load_only=True, validate=validate.Range(0, MAX_COUNT))
    yearly = fields.Integer(strict=True, load_only=True, validate=validate.Range(0, MAX_COUNT))

    @validates_schema
    def _applicable(self, data, **_) -> None:
        if "scheme" not in data:
            raise ValidationError({"scheme": ["choose one of " + ", ".join(SCHEMES)]})
        try:
            Policy.from_dict(data)
        except PolicyError as e:
            raise ValidationError({e.field: [e.message]}) from None

    @post_load
    def _canonical(self, data, **_) -> dict:
        return Policy.from_dict(data).to_dict()


class SpecField(fields.Field):
    """The plan's backup spec, loaded by the engine's one schema (BackupSpecSchema) and stored as its dict."""

    def _deserialize(self, value, attr, data, **kwargs) -> dict:
        try:
            return BackupSpec.from_dict(value).to_dict()
        except SpecError as e:
            raise ValidationError(e.messages) from None


class PlanIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    spec = SpecField(load_default=lambda: BackupSpec().to_dict())
    schedule = fields.Nested(ScheduleSchema, required=True)
    rotation = fields.Nested(
        RotationSchema,
        load_default=lambda: dict(DEFAULT_ROTATION),
    )
    enabled = fields.Boolean(load_default=True, truthy={True}, falsy={False})
    storage_id = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "the primary storage (stg_...); null: the service's default repository"},
    )
    replica_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        load_default=list,
        validate=validate.Length(max=MAX_REPLICAS),
        metadata={
            "description": "replica storages: each run copies the plan's new snapshots to them (per-replica status on the storage)"
        },
    )

    @validates_schema
    def _distinct(self, data, **_) -> None:
        replicas = data.get("replica_ids") or []
        if len(set(replicas)) != len(replicas):
            raise ValidationError({"replica_ids": ["each storage at most once"]})
        if data.get("storage_id") is not None and data["storage_id"] in replicas:
            raise ValidationError({"replica_ids": ["the primary storage cannot be its own replica"]})


class PlanOut(Schema):
    """A plan as the API answers it (described in the OpenAPI document, checked by the fuzzer)."""

    id = fields.String(required=True, metadata={"example": "pln_2cj7x4m5q3w6r7t8y9ua"})
    name = fields.String(required=True)
    is_default = fields.Boolean(required=True)
    enabled = fields.Boolean(required=True)
    spec = fields.Nested(BackupSpecSchema, required=True)
    schedule = fields.Nested(ScheduleSchema, required=True)
    rotation = fields.Nested(RotationSchema, required=True)
    storage_url = fields.String(required=True)
    storage_id = fields.String(required=True, allow_none=True)
    replica_ids = fields.List(fields.String(), required=True)
    next_run_at = fields.DateTime(required=True, allow_none=True)
    created = fields.DateTime(required=True)
    notes = fields.List(fields.String(), required=True)


class PlanList(Schema):
    items = fields.List(fields.Nested(PlanOut), required=True)


def plan_json(plan: Plan, org: Organisation) -> dict:
    svc = services()
    upcoming = svc.scheduler.next_run(plan.id) if svc.scheduler else None
    if upcoming is None and plan.enabled and plan.schedule and org.state == "active":
        upcoming = next_fire(plan.schedule, org.time_zone)
    return {
        "id": plan.public_id,
        "name": plan.name,
        "is_default": plan.is_default,
        "enabled": plan.enabled,
        "spec": plan.spec,
        "schedule": plan.schedule,
        "rotation": plan.rotation,
        "storage_url": storages.describe(plan.storage.kind, plan.storage.location, svc.config, org.cloud_id)
        if plan.storage
        else plan.storage_url,
        "storage_id": plan.storage.public_id if plan.storage else None,
        "replica_ids": [link.storage.public_id for link in plan.replica_links],
        "next_run_at": iso(upcoming),
        "created": iso(plan.created),
        "notes": BackupSpec.from_dict(plan.spec).resolved()[1],
    }


def _sync(plan: Plan, org: Organisation) -> None:
    if services().scheduler:
        services().scheduler.sync(
            plan.id, plan.schedule, org.time_zone, plan.enabled and org.state == "active"
        )


def _place(s, plan: Plan, org: Organisation, data: dict) -> None:
    """Set the plan's primary storage and replicas from their public ids (422 naming the field for an id
    that is not a storage of this organisation); other fields of `data` are left to the caller."""
    wanted: dict[str, Any] = {}
    if "storage_id" in data:
        wanted["storage_id"] = data.pop("storage_id")
    if "replica_ids" in data:
        wanted["replica_ids"] = data.pop("replica_ids")
    ids = ([wanted["storage_id"]] if wanted.get("storage_id") else []) + wanted.get("replica_ids", [])
    found: dict[str, StorageRecord] = {}
    if ids:
        shaped = [i for i in ids if is_id("storage", i)]
        found = {
            r.public_id: r
            for r in s.scalars(
                select(StorageRecord).where(
                    StorageRecord.public_id.in_(shaped), StorageRecord.organisation_id == org.id
                )
            )
        }
    errors: dict[str, Any] = {}
    primary = wanted.get("storage_id")
    if primary and primary not in found:
        errors["storage_id"] = [f"no storage {primary[:64]} in this organisation"]
    unknown = [i for i in wanted.get("replica_ids", []) if i not in found]
    if unknown:
        errors["replica_ids"] = [f"no storage {i[:64]} in this organisation" for i in unknown]
    if errors:
        raise Invalid("the plan names storages this organisation does not have", errors)
    if "storage_id" in wanted:
        plan.storage = found[primary] if primary else None
    if "replica_ids" in wanted:
        existing = {link.storage_id: link for link in plan.replica_links}
        links = []
        for position, public_id in enumerate(wanted["replica_ids"]):
            record = found[public_id]
            link = existing.get(record.id) or PlanReplica(storage=record)
            link.position = position
            links.append(link)
        plan.replica_links = links
    if plan.storage is not None and any(link.storage is plan.storage for link in plan.replica_links):
        raise Invalid(
            "the primary storage cannot be its own replica",
            {"replica_ids": ["the primary storage cannot be its own replica"]},
        )


@bp.get("/organisations/<cloud_id>/plans")
def list_plans(cloud_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        return jsonify({"items": [plan_json(p, org) for p in org.plans]})


@bp.post("/organisations/<cloud_id>/plans")
def create_plan(cloud_id: str):
    data = load(PlanIn())
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        plan = Plan(organisation_id=org.id, storage_url=services().config.repository_url(cloud_id))
        with s.no_autoflush:
            _place(s, plan, org, data)
            check_plan(s, org, data["spec"])  # keys and JQL asked of Jira: 400/502 naming the field
        for key, value in data.items():
            setattr(plan, key, value)
        s.add(plan)
        s.commit()
        _sync(plan, org)
        return jsonify(plan_json(plan, org)), 201


@bp.get("/plans/<plan_id>")
def get_plan(plan_id: str):
    with services().db.session() as s:
        plan = target(s, "plan_id")
        return jsonify(plan_json(plan, plan.organisation))


@bp.patch("/plans/<plan_id>")
def patch_plan(plan_id: str):
    data = load(PlanIn(), partial=True)
    if not data:
        raise Invalid("nothing to change")
    with services().db.session() as s:
        plan = target(s, "plan_id")
        with s.no_autoflush:
            _place(s, plan, plan.organisation, data)
            if "spec" in data:
                check_plan(s, plan.organisation, data["spec"])  # keys and JQL asked of Jira: 400/502
        for key, value in data.items():
            setattr(plan, key, value)
        s.commit()
        _sync(plan, plan.organisation)
        return jsonify(plan_json(plan, plan.organisation))


def remove_plan(s, plan: Plan) -> None:
    """Delete a plan and its run history; the snapshots its runs wrote stay in their storage.

    409 for the default plan (the panel's Backup now runs it: disable it instead) and while a run of the
    plan is queued or running."""
    if plan.is_default:
        raise Conflict("the default plan runs the panel's Backup now: disable it instead of deleting it")
    if s.get(ActiveRun, plan.id) is not None:
        raise Conflict("a run of this plan is active: cancel it or wait until it ends")
    pk, org = plan.id, plan.organisation
    runs = select(Run.id).where(Run.plan_id == pk)
    s.execute(delete(RunLog).where(RunLog.run_id.in_(runs)))
    s.execute(delete(ProjectRun).where(ProjectRun.run_id.in_(runs)))
    s.execute(delete(Run).where(Run.plan_id == pk))
    s.execute(delete(ScheduledFire).where(ScheduledFire.plan_id == pk))
    # Its snapshots stay, and so do their catalog rows: they name no plan any more ("a plan that is gone").
    s.execute(update(CatalogSnapshot).where(CatalogSnapshot.plan_id == pk).values(plan_id=None))
    s.delete(plan)
    try:
        s.commit()
    except IntegrityError:  # a run started meanwhile
        s.rollback()
        raise Conflict("a run of this plan started: cancel it or wait until it ends") from None
    if services().scheduler:
        services().scheduler.sync(pk, {}, org.time_zone, False)


@bp.delete("/plans/<plan_id>")
def delete_plan(plan_id: str):
    with services().db.session() as s:
        remove_plan(s, target(s, "plan_id"))
        return "", 204


def default_plan_id(s, org: Organisation) -> int:
    plan = s.scalar(select(Plan).where(Plan.organisation_id == org.id, Plan.is_default.is_(True)))
    if plan is None:
        from backend.api.organisations import default_plan

        plan = default_plan(org)
        s.add(plan)
        s.commit()
    return plan.id
