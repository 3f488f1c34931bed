"""The organisation's recovery passphrase: PUT sets or replaces it, DELETE removes it, GET says whether
one is set (its fingerprint and label, never the passphrase: the service does not keep it).

PUT /organisations/{cloud_id}/recovery-passphrase {passphrase, label?}: the wrap is added to every
repository of the organisation (primary storages, replicas, default repositories) and any earlier
recovery wrap removed; the answer says what happened at each. Admins only (backend/auth/roles.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates

from backend import audit, recovery
from backend.api.common import iso, load
from backend.auth.access import organisation
from backend.auth.roles import least_role
from backend.db.models import RecoveryKeyRecord
from backend.repository.crypto import RecoveryKey
from backend.services import services

bp = Blueprint("recovery", __name__)
NO_CONTROL = validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="no control characters")


class RecoveryIn(Schema):
    passphrase = fields.String(required=True, load_only=True, validate=validate.Length(max=1024))
    label = fields.String(load_default="", validate=[validate.Length(max=200), NO_CONTROL])

    @validates("passphrase")
    def _strong_enough(self, value: str, **_) -> None:
        if not value.strip():
            raise ValidationError("the recovery passphrase must not be empty")
        if len(value) < recovery.MIN_PASSPHRASE:
            raise ValidationError(f"at least {recovery.MIN_PASSPHRASE} characters")
        if "\n" in value or "\r" in value:
            raise ValidationError("one line (the CLI reads the first line of --password-file)")


class RepositoryOutcome(Schema):
    repository = fields.String(required=True)
    state = fields.String(
        required=True, validate=validate.OneOf(("updated", "unchanged", "empty", "postponed", "failed"))
    )
    added = fields.Integer(required=True)
    removed = fields.Integer(required=True)
    message = fields.String(required=True)


class RecoveryOut(Schema):
    """Whether a recovery passphrase is set: its fingerprint and label, never the passphrase."""

    set = fields.Boolean(required=True)
    fingerprint = fields.String(required=True, allow_none=True)
    label = fields.String(required=True)
    set_at = fields.DateTime(required=True, allow_none=True)
    repositories = fields.List(fields.Nested(RepositoryOutcome), required=True)


def _audit(
    action: str, cloud_id: str, before: str | None, after: RecoveryKeyRecord | None, outcomes: list
) -> None:
    """One audit event naming fingerprints only (the passphrase is never in it) and each outcome's count."""
    states: dict[str, int] = {}
    for line in outcomes:
        states[line["state"]] = states.get(line["state"], 0) + 1
    audit.record(
        action,
        cloud_id=cloud_id,
        target_id=after.fingerprint if after else (before or ""),
        target_name=after.label if after else "",
        changes={"fingerprint": {"before": before, "after": after.fingerprint if after else None}},
        details={"repositories": states},
    )


def _answer(row: RecoveryKeyRecord | None, outcomes: list | None = None) -> dict:
    return {
        "set": row is not None,
        "fingerprint": row.fingerprint if row else None,
        "label": row.label if row else "",
        "set_at": iso(row.set_at) if row else None,
        "repositories": outcomes or [],
    }


def set_passphrase(cloud_id: str, data: dict) -> dict:
    """Store the recovery key of a validated RecoveryIn body and add its wrap everywhere (the API's PUT and
    the Settings page's form); the answer."""
    svc = services()
    key = RecoveryKey.from_passphrase(data["passphrase"])
    with svc.db.session() as s:
        org = organisation(s, cloud_id)
        row = s.get(RecoveryKeyRecord, org.id)
        before = row.fingerprint if row else None
        if row is None:
            row = RecoveryKeyRecord(organisation_id=org.id)
            s.add(row)
        row.fingerprint, row.label, row.public = key.fingerprint, data.get("label", ""), key.to_dict()
        row.set_at = datetime.now(UTC)
        s.commit()
    outcomes = recovery.apply_everywhere(svc.db, svc.config, cloud_id)
    with svc.db.session() as s:
        row = s.get(RecoveryKeyRecord, organisation(s, cloud_id).id)
        _audit("recovery.set", cloud_id, before, row, outcomes)
        return _answer(row, outcomes)


def remove_passphrase(cloud_id: str) -> dict:
    """Forget the recovery key and remove its wraps everywhere; the answer."""
    svc = services()
    with svc.db.session() as s:
        org = organisation(s, cloud_id)
        row = s.get(RecoveryKeyRecord, org.id)
        before = row.fingerprint if row else None
        if row is not None:
            s.delete(row)
            s.commit()
    outcomes = recovery.apply_everywhere(svc.db, svc.config, cloud_id)
    _audit("recovery.remove", cloud_id, before, None, outcomes)
    return _answer(None, outcomes)


def status(cloud_id: str) -> dict:
    """Whether a recovery passphrase is set (no repository is opened)."""
    with services().db.session() as s:
        return _answer(s.get(RecoveryKeyRecord, organisation(s, cloud_id).id))


@bp.put("/organisations/<cloud_id>/recovery-passphrase")
@least_role("admin", "set the recovery passphrase")
def put_recovery(cloud_id: str):
    data = load(RecoveryIn())
    return jsonify(set_passphrase(cloud_id, data))


@bp.delete("/organisations/<cloud_id>/recovery-passphrase")
@least_role("admin", "remove the recovery passphrase")
def delete_recovery(cloud_id: str):
    return jsonify(remove_passphrase(cloud_id))


@bp.get("/organisations/<cloud_id>/recovery-passphrase")
@least_role("viewer")
def get_recovery(cloud_id: str):
    return jsonify(status(cloud_id))
