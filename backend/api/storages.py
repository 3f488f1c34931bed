"""Storages as objects: where an organisation's plans write (a local folder, Azure Blob, S3-compatible).

GET|POST /organisations/{cloud_id}/storages, GET|PATCH|DELETE /storages/{storage_id}, and
POST /storages/{storage_id}/test (write, read, list and delete a probe object; which step failed and why).
Credentials go in and never come out, not even masked. Immutability (S3 Object Lock, Azure blob
immutability policies) is applied to every retained object a run writes; `enforced` says whether the last
test proved the storage refuses to delete a locked object, with the reason when it does not.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from backend import storages
from backend.api.common import iso, load
from backend.auth.access import organisation, target
from backend.db.ids import new_id
from backend.db.models import Organisation, Plan, PlanReplica, StorageRecord
from backend.errors import Conflict, Invalid
from backend.services import services

bp = Blueprint("storages", __name__)
MAX_STORAGES = 50  # per organisation
PRINTABLE = validate.Regexp(r"^[!-~]+$", error="printable ASCII without spaces")
NO_CONTROL = validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="no control characters")
PREFIX = validate.Regexp(
    storages.PREFIX.pattern, error="folders of letters, digits, . _ - separated by /; no '..'"
)
IMMUTABILITY_MODES = ("none", "governance", "compliance")


class LocalLocation(Schema):
    """A folder under the service's storage root (KEEPSTONE_STORAGE_ROOT/<cloud_id>/path)."""

    path = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=200), validate.Regexp(storages.LOCAL_PATH.pattern)],
        metadata={"example": "primary"},
    )


class AzureLocation(Schema):
    """An Azure Blob container (it must exist: Keepstone never creates one)."""

    account_url = fields.String(
        required=True,
        validate=validate.Length(min=8, max=255),
        metadata={"example": "https://acme.blob.core.windows.net"},
    )
    account_name = fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-z0-9]{3,24}$", error="3-24 lower-case letters or digits"),
    )
    container = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", error="3-63 lower-case letters, digits and -"
        ),
    )
    prefix = fields.String(load_default="", validate=[validate.Length(max=200), PREFIX])


class S3Location(Schema):
    """A bucket on S3 or an S3-compatible server (it must exist: Keepstone never creates one)."""

    endpoint = fields.String(
        required=True,
        validate=validate.Length(min=8, max=255),
        metadata={"example": "https://s3.eu-central-1.amazonaws.com"},
    )
    bucket = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", error="3-63 lower-case letters, digits, . and -"
        ),
    )
    prefix = fields.String(load_default="", validate=[validate.Length(max=200), PREFIX])
    signing_region = fields.String(
        load_default="us-east-1", validate=validate.Regexp(r"^[a-z0-9-]{1,32}$", error="like eu-central-1")
    )


class AzureCredentials(Schema):
    """The storage account's key (Shared Key: it signs requests and never travels). SAS tokens are not taken:
    they travel in every request's URL, which HTTP libraries log at debug level."""

    account_key = fields.String(required=True, validate=[validate.Length(min=1, max=200), PRINTABLE])

    @validates_schema
    def _base64(self, data, **_) -> None:
        try:
            base64.b64decode(data.get("account_key", ""), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError({"account_key": ["not a base64 account key"]}) from None


class S3Credentials(Schema):
    access_key_id = fields.String(required=True, validate=[validate.Length(min=1, max=128), PRINTABLE])
    secret_access_key = fields.String(required=True, validate=[validate.Length(min=1, max=256), PRINTABLE])


LOCATIONS: dict[str, type[Schema]] = {"local": LocalLocation, "azure": AzureLocation, "s3": S3Location}
CREDENTIALS: dict[str, type[Schema]] = {"azure": AzureCredentials, "s3": S3Credentials}


class ImmutabilitySchema(Schema):
    """Object Lock (S3) or blob immutability policies (Azure): governance lets an admin remove objects early
    when asked explicitly, compliance never; `retain_days` from each object's write."""

    mode = fields.String(required=True, validate=validate.OneOf(IMMUTABILITY_MODES))
    retain_days = fields.Integer(strict=True, validate=validate.Range(1, 36500))

    @validates_schema
    def _days(self, data, **_) -> None:
        if data.get("mode", "none") == "none" and "retain_days" in data:
            raise ValidationError({"retain_days": ["only with mode governance or compliance"]})
        if data.get("mode", "none") != "none" and "retain_days" not in data:
            raise ValidationError({"retain_days": ["a retention period is needed with this mode"]})


class LocationField(fields.Field):
    """The kind's location (LocalLocation, AzureLocation or S3Location): checked by kind in the view."""

    def _deserialize(self, value, attr, data, **kwargs) -> dict:
        if not isinstance(value, dict):
            raise ValidationError("an object: the location of this kind of storage")
        return value


class CredentialsField(LocationField):
    """The kind's credentials (AzureCredentials or S3Credentials; none for a local folder). Write-only."""


class StorageIn(Schema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=255), NO_CONTROL])
    kind = fields.String(required=True, validate=validate.OneOf(storages.KINDS))
    location = LocationField(required=True)
    credentials = CredentialsField(load_default=None, allow_none=True, load_only=True)
    region = fields.String(
        load_default="",
        validate=[validate.Length(max=64), NO_CONTROL],
        metadata={"description": "a label shown in the panel (e.g. 'eu-central (Frankfurt)')"},
    )
    immutability = fields.Nested(ImmutabilitySchema, load_default=lambda: {"mode": "none"})


class ImmutabilityOut(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(IMMUTABILITY_MODES))
    retain_days = fields.Integer(allow_none=True, required=True)
    enforced = fields.Boolean(
        required=True,
        metadata={
            "description": "true only when the last test (POST /storages/{id}/test) saw the storage refuse "
            "to delete a locked probe object with these settings"
        },
    )
    reason = fields.String(
        required=True, metadata={"description": "what the last test found, or why it is not known"}
    )
    checked = fields.DateTime(
        required=True, allow_none=True, metadata={"description": "when the last test checked it"}
    )


class ReplicaStatusOut(Schema):
    """How a plan's replica on this storage stands, as the plan's last run left it."""

    plan_id = fields.String(required=True, metadata={"example": "pln_3fj2k4m5q3w6r7t8y9ua"})
    state = fields.String(
        required=True,
        validate=validate.OneOf(("pending", "ok", "failed")),
        metadata={"description": "pending: no run has replicated to it yet"},
    )
    lag = fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "description": "snapshots of the plan on its primary that this replica lacks (null: unknown)"
        },
    )
    last_replicated = fields.DateTime(
        required=True, allow_none=True, metadata={"description": "the end of the last copy that completed"}
    )
    last_attempt = fields.DateTime(required=True, allow_none=True)
    bytes = fields.Integer(
        required=True, allow_none=True, metadata={"description": "bytes of data the replica stores"}
    )
    bytes_last_copy = fields.Integer(
        required=True, allow_none=True, metadata={"description": "bytes the last copy wrote"}
    )
    error = fields.String(
        required=True, metadata={"description": "why the last copy failed ('' if it did not)"}
    )


class StorageOut(Schema):
    """A storage as the API answers it: never its credentials, not even masked."""

    id = fields.String(required=True, metadata={"example": "stg_3fj2k4m5q3w6r7t8y9ua"})
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(storages.KINDS))
    location = LocationField(required=True)
    has_credentials = fields.Boolean(required=True)
    region = fields.String(required=True)
    immutability = fields.Nested(ImmutabilityOut, required=True)
    used_by = fields.List(
        fields.String(), required=True, metadata={"description": "ids of the plans using it"}
    )
    replication = fields.List(
        fields.Nested(ReplicaStatusOut),
        required=True,
        metadata={"description": "for each plan with this storage as a replica: lag, last replicated, bytes"},
    )
    created = fields.DateTime(required=True)


class StorageList(Schema):
    items = fields.List(fields.Nested(StorageOut), required=True)


class ProbeStepOut(Schema):
    step = fields.String(required=True, validate=validate.OneOf(storages.PROBE_STEPS))
    status = fields.String(required=True, validate=validate.OneOf(("ok", "failed", "skipped")))
    message = fields.String(required=True)


class ProbeImmutabilityOut(Schema):
    enforced = fields.Boolean(required=True)
    message = fields.String(required=True)


class StorageTestOut(Schema):
    """The probe's answer: every step in order, the first failure with its reason and the field to fix."""

    ok = fields.Boolean(required=True)
    steps = fields.List(fields.Nested(ProbeStepOut), required=True)
    failed_step = fields.String(required=True, allow_none=True, validate=validate.OneOf(storages.PROBE_STEPS))
    reason = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf((*storages.REASONS, "unreadable_credentials")),
    )
    field = fields.String(required=True, allow_none=True, metadata={"example": "credentials"})
    message = fields.String(required=True)
    immutability = fields.Nested(
        ProbeImmutabilityOut,
        required=True,
        allow_none=True,
        metadata={"description": "null when immutability is off or the probe stopped before that step"},
    )


def _used_by(s, storage_ids: list[int]) -> dict[int, list[str]]:
    """The public ids of the plans that use each storage, as primary or replica."""
    out: dict[int, list[str]] = {i: [] for i in storage_ids}
    if not storage_ids:
        return out
    for sid, pid in s.execute(
        select(Plan.storage_id, Plan.public_id).where(Plan.storage_id.in_(storage_ids))
    ):
        out[sid].append(pid)
    for sid, pid in s.execute(
        select(PlanReplica.storage_id, Plan.public_id)
        .join(Plan, Plan.id == PlanReplica.plan_id)
        .where(PlanReplica.storage_id.in_(storage_ids))
    ):
        if pid not in out[sid]:
            out[sid].append(pid)
    return out


def _replication(s, storage_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each storage's replica status, for every plan that has it as a replica."""
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in storage_ids}
    if not storage_ids:
        return out
    rows = s.execute(
        select(PlanReplica.storage_id, Plan.public_id, PlanReplica.replication)
        .join(Plan, Plan.id == PlanReplica.plan_id)
        .where(PlanReplica.storage_id.in_(storage_ids))
        .order_by(Plan.public_id)
    )
    for sid, pid, status in rows:
        status = status or {}
        out[sid].append(
            {
                "plan_id": pid,
                "state": status.get("state", "pending"),
                "lag": status.get("lag"),
                "last_replicated": status.get("last_replicated"),
                "last_attempt": status.get("last_attempt"),
                "bytes": status.get("bytes"),
                "bytes_last_copy": status.get("bytes_last_copy"),
                "error": status.get("error", ""),
            }
        )
    return out


def storage_json(
    record: StorageRecord, used_by: list[str], replication: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    # Never the credentials: not even masked.
    immutability = record.immutability or {"mode": "none"}
    mode = immutability.get("mode", "none")
    if mode == "none":
        reason = "immutability is off"
    else:
        reason = immutability.get("reason") or (
            "not tested with these settings yet: the storage test proves it (POST /storages/{id}/test)"
        )
    return {
        "id": record.public_id,
        "name": record.name,
        "kind": record.kind,
        "location": record.location,
        "has_credentials": bool(record.credentials_sealed),
        "region": record.region,
        "immutability": {
            "mode": mode,
            "retain_days": immutability.get("retain_days"),
            "enforced": mode != "none" and immutability.get("enforced") is True,
            "reason": reason,
            "checked": immutability.get("checked") if mode != "none" else None,
        },
        "used_by": used_by,
        "replication": replication or [],
        "created": iso(record.created),
    }


def _checked(
    kind: str, cloud_id: str, data: dict[str, Any], need_location: bool, need_credentials: bool
) -> dict[str, Any]:
    """The location and credentials of `data` checked for this kind (schema, then the service's rules);
    every problem is collected into one 422 naming its field."""
    errors: dict[str, Any] = {}
    out: dict[str, Any] = {}
    config = services().config
    if "location" in data:
        try:
            location = LOCATIONS[kind]().load(data["location"])
            storages.check_location(kind, location, config, cloud_id)
            out["location"] = location
        except ValidationError as e:
            errors["location"] = e.messages
        except storages.LocationRefused as e:
            errors["location"] = {e.field.removeprefix("location."): [e.message]}
    elif need_location:
        errors["location"] = [f"a {kind} storage needs its location"]
    creds = data.get("credentials")
    if kind == "local":
        if creds:
            errors["credentials"] = ["a local folder takes no credentials"]
        out["credentials"] = None
    elif creds is not None:
        try:
            out["credentials"] = CREDENTIALS[kind]().load(creds)
        except ValidationError as e:
            errors["credentials"] = e.messages
    elif need_credentials or "credentials" in data:
        errors["credentials"] = [f"a {kind} storage needs credentials"]
    immutability = data.get("immutability")
    if kind == "local" and immutability and immutability.get("mode") != "none":
        errors["immutability"] = {"mode": ["a local folder cannot enforce immutability: use none"]}
    if errors:
        raise Invalid("the storage does not match the schema or the service's rules", errors)
    return out


def _name_free(s, org_id: int, name: str, but: int | None = None) -> None:
    query = select(StorageRecord.id).where(
        StorageRecord.organisation_id == org_id, StorageRecord.name == name
    )
    if but is not None:
        query = query.where(StorageRecord.id != but)
    if s.scalar(query) is not None:
        raise Conflict(f"a storage named {name!r} exists already", {"name": ["already used"]})


@bp.get("/organisations/<cloud_id>/storages")
def list_storages(cloud_id: str):
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        records = list(
            s.scalars(
                select(StorageRecord)
                .where(StorageRecord.organisation_id == org.id)
                .order_by(StorageRecord.name, StorageRecord.id)
            )
        )
        used = _used_by(s, [r.id for r in records])
        status = _replication(s, [r.id for r in records])
        return jsonify({"items": [storage_json(r, used[r.id], status[r.id]) for r in records]})


@bp.post("/organisations/<cloud_id>/storages")
def create_storage(cloud_id: str):
    data = load(StorageIn())
    checked = _checked(data["kind"], cloud_id, data, need_location=True, need_credentials=True)
    svc = services()
    with svc.db.session() as s:
        org: Organisation = organisation(s, cloud_id)
        count = s.scalar(
            select(func.count()).select_from(StorageRecord).where(StorageRecord.organisation_id == org.id)
        )
        if count >= MAX_STORAGES:
            raise Conflict(f"an organisation has at most {MAX_STORAGES} storages")
        _name_free(s, org.id, data["name"])
        public_id = new_id("storage")
        record = StorageRecord(
            public_id=public_id,
            organisation_id=org.id,
            name=data["name"],
            kind=data["kind"],
            location=checked["location"],
            credentials_sealed=storages.seal_credentials(
                svc.config, cloud_id, public_id, checked["credentials"]
            ),
            region=data["region"],
            immutability=data["immutability"],
        )
        s.add(record)
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            raise Conflict(
                f"a storage named {data['name']!r} exists already", {"name": ["already used"]}
            ) from None
        return jsonify(storage_json(record, [])), 201


@bp.get("/storages/<storage_id>")
def get_storage(storage_id: str):
    with services().db.session() as s:
        record = target(s, "storage_id")
        status = _replication(s, [record.id])[record.id]
        return jsonify(storage_json(record, _used_by(s, [record.id])[record.id], status))


@bp.patch("/storages/<storage_id>")
def patch_storage(storage_id: str):
    data = load(StorageIn(), partial=True)
    if not data:
        raise Invalid("nothing to change")
    svc = services()
    with svc.db.session() as s:
        record: StorageRecord = target(s, "storage_id")
        cloud_id = s.get(Organisation, record.organisation_id).cloud_id
        if "immutability" in data and "mode" not in data["immutability"]:
            raise Invalid(
                "immutability needs its mode",
                {"immutability": {"mode": ["Missing data for required field."]}},
            )
        kind = data.get("kind", record.kind)
        changed_kind = kind != record.kind
        checked = _checked(kind, cloud_id, data, need_location=changed_kind, need_credentials=changed_kind)
        if (
            "immutability" not in data
            and kind == "local"
            and (record.immutability or {}).get("mode") != "none"
        ):
            raise Invalid(
                "a local folder cannot enforce immutability",
                {"immutability": {"mode": ["a local folder cannot enforce immutability: use none"]}},
            )
        if "name" in data:
            _name_free(s, record.organisation_id, data["name"], but=record.id)
            record.name = data["name"]
        record.kind = kind
        if "location" in checked:
            record.location = checked["location"]
        if "credentials" in checked:
            record.credentials_sealed = storages.seal_credentials(
                svc.config, cloud_id, record.public_id, checked["credentials"]
            )
        for key in ("region", "immutability"):
            if key in data:
                setattr(record, key, data[key])
        if checked.get("location") is not None or "credentials" in data or changed_kind:
            # Another place or key: what the last test proved no longer holds.
            record.immutability = storages.immutability_settings(record.immutability)
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            raise Conflict("a storage with this name exists already", {"name": ["already used"]}) from None
        status = _replication(s, [record.id])[record.id]
        return jsonify(storage_json(record, _used_by(s, [record.id])[record.id], status))


@bp.delete("/storages/<storage_id>")
def delete_storage(storage_id: str):
    with services().db.session() as s:
        record: StorageRecord = target(s, "storage_id")
        users = list(
            s.execute(
                select(Plan.public_id, Plan.name)
                .outerjoin(PlanReplica, PlanReplica.plan_id == Plan.id)
                .where(or_(Plan.storage_id == record.id, PlanReplica.storage_id == record.id))
                .distinct()
                .order_by(Plan.name)
            )
        )
        if users:
            named = ", ".join(f"{name!r} ({pid})" for pid, name in users)
            raise Conflict(
                f"storage {record.name!r} is in use by plans {named}: move them to another storage first",
                {"plans": [pid for pid, _ in users]},
            )
        s.delete(record)
        try:
            s.commit()
        except IntegrityError:  # a plan took it meanwhile
            s.rollback()
            raise Conflict(f"storage {record.name!r} is in use by a plan", {"plans": []}) from None
        return "", 204


@bp.post("/storages/<storage_id>/test")
def test_storage(storage_id: str):
    """Write, read, list and delete a probe object; answers every step and the first failure."""
    svc = services()
    with svc.db.session() as s:
        record: StorageRecord = target(s, "storage_id")
        cloud_id = s.get(Organisation, record.organisation_id).cloud_id
        try:
            found = storages.target_of(record, svc.config, cloud_id)
        except ValueError:
            found = None
    if found is None:
        steps = [{"step": st, "status": "skipped", "message": ""} for st in storages.PROBE_STEPS]
        steps[0] = {"step": "connect", "status": "failed", "message": "the credentials cannot be unsealed"}
        return jsonify(
            {
                "ok": False,
                "steps": steps,
                "failed_step": "connect",
                "reason": "unreadable_credentials",
                "field": "credentials",
                "message": "the stored credentials cannot be decrypted with this service's secret key: set them again",
            }
        )
    result = storages.probe(found, svc.config)
    if result.immutability is not None:
        with svc.db.session() as s:
            storages.remember_check(target(s, "storage_id"), found.immutability, result.immutability)
            s.commit()
    return jsonify(result.to_dict())
