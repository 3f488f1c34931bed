"""The Storages pages: the list (what each holds, replication, immutability, which plans use it), add and
edit with Test connection, delete (refused while plans use the storage).

A form becomes exactly the API's JSON body and is loaded with the API's `StorageIn` and checked by the
API's `_checked` (the kind's location and credentials schemas, then the service's rules in
backend/storages.py): one validation path. Test connection probes the values as submitted, stored or not,
with backend/storages.py's `probe`, and stores nothing. Secrets are never sent back to the browser: an
edit form's secret fields stay empty ("saved, enter a new one to replace"), and a blank one keeps what is
stored.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from marshmallow import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from backend import storages as st
from backend.api.storages import (
    IMMUTABILITY_MODES,
    MAX_STORAGES,
    StorageIn,
    _checked,
    _name_free,
    _replication,
    storage_json,
)
from backend.auth.roles import least_role
from backend.db.ids import is_id, new_id
from backend.db.models import Organisation, Plan, PlanReplica, StorageRecord
from backend.errors import ApiError
from backend.services import services
from backend.ui import repositories
from backend.ui.shell import current_org, member, organisations, page, visible
from backend.ui.views import bp

KIND_NAMES = {"local": "Local folder", "azure": "Azure Blob", "s3": "S3-compatible"}
# Form fields of each kind's location and credentials, as (form name, body key).
LOCATION_FIELDS = {
    "local": (("path", "path"),),
    "azure": (
        ("account_url", "account_url"),
        ("account_name", "account_name"),
        ("container", "container"),
        ("azure_prefix", "prefix"),
    ),
    "s3": (
        ("endpoint", "endpoint"),
        ("bucket", "bucket"),
        ("s3_prefix", "prefix"),
        ("signing_region", "signing_region"),
    ),
}
SECRET_FIELDS = {
    "local": (),
    "azure": (("account_key", "account_key"),),
    "s3": (("access_key_id", "access_key_id"), ("secret_access_key", "secret_access_key")),
}
ORDER = (
    "form", "name", "kind", "path", "account_url", "account_name", "container", "azure_prefix", "endpoint",
    "bucket", "s3_prefix", "signing_region", "account_key", "access_key_id", "secret_access_key", "region",
    "immutability_mode", "retain_days",
)  # fmt: skip
STEP_TEXT = {
    "connect": "Connect",
    "write": "Write a probe object",
    "read": "Read it back",
    "list": "List it",
    "delete": "Delete it",
    "immutability": "Check immutability",
}
REASON_TEXT = {
    "wrong_credentials": "Authentication: the storage refused the credentials",
    "missing_container": "Missing container or bucket",
    "unreachable": "Name resolution or network: the storage could not be reached",
    "not_allowed": "Not allowed by this service's rules",
    "mismatch": "The storage answered something else than was written",
    "not_enforced": "Immutability is not enforced by this storage",
    "storage_error": "Permission or storage error",
    "unreadable_credentials": "The stored credentials cannot be decrypted",
}


def _org(s: Session) -> Organisation | None:
    return current_org(s, organisations(s))


def storage_of(s: Session, storage_id: str) -> StorageRecord:
    """A storage of one of this session's organisations, else 404 (the same whether or not it exists)."""
    if not is_id("storage", storage_id):
        abort(404)
    record = s.scalar(
        select(StorageRecord)
        .join(Organisation, Organisation.id == StorageRecord.organisation_id)
        .where(StorageRecord.public_id == storage_id, Organisation.cloud_id.in_(visible()))
    )
    if record is None:
        abort(404)
    return record


def users_of(s: Session, storage_ids: list[int]) -> dict[int, list[tuple[str, str, str]]]:
    """(plan id, plan name, "primary" | "replica") of every plan using each storage."""
    out: dict[int, list[tuple[str, str, str]]] = {i: [] for i in storage_ids}
    if not storage_ids:
        return out
    for sid, pid, name in s.execute(
        select(Plan.storage_id, Plan.public_id, Plan.name).where(Plan.storage_id.in_(storage_ids))
    ):
        out[sid].append((pid, name, "primary"))
    for sid, pid, name in s.execute(
        select(PlanReplica.storage_id, Plan.public_id, Plan.name)
        .join(Plan, Plan.id == PlanReplica.plan_id)
        .where(PlanReplica.storage_id.in_(storage_ids))
    ):
        out[sid].append((pid, name, "replica"))
    for rows in out.values():
        rows.sort(key=lambda r: r[1].lower())
    return out


def size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


def where(record: StorageRecord) -> tuple[str, str]:
    """Where a storage is, in two lines: the folder, container or bucket (with prefix), then the host."""
    loc = record.location or {}
    prefix = f"/{loc['prefix']}" if loc.get("prefix") else ""
    if record.kind == "local":
        return loc.get("path", ""), "under the storage root"
    if record.kind == "azure":
        return f"{loc.get('container', '')}{prefix}", str(loc.get("account_url", ""))
    return f"{loc.get('bucket', '')}{prefix}", str(loc.get("endpoint", ""))


# --- the list ---------------------------------------------------------------------------------------


def _list_page(s: Session, org: Organisation, probe: dict[str, Any] | None = None, probed: str = ""):
    svc = services()
    records = list(
        s.scalars(
            select(StorageRecord)
            .where(StorageRecord.organisation_id == org.id)
            .order_by(StorageRecord.name, StorageRecord.id)
        )
    )
    ids = [r.id for r in records]
    users = users_of(s, ids)
    status = _replication(s, ids)
    names = {p.public_id: p.name for p in org.plans}
    held = repositories.many(records, svc.config, org.cloud_id)
    rows = []
    for record in records:
        data = storage_json(record, [u[0] for u in users[record.id]], status[record.id])
        found = held.get(record.id) or repositories.Contents(problem="not looked at")
        rows.append(
            {
                "record": record,
                "data": data,
                "where": where(record),
                "url": st.describe(record.kind, record.location, svc.config, org.cloud_id),
                "users": users[record.id],
                "replication": [
                    {**r, "plan": names.get(r["plan_id"], r["plan_id"])} for r in data["replication"]
                ],
                "held": found,
                "bytes": size(found.bytes),
            }
        )
    return page(
        "storages.html",
        s,
        org,
        rows=rows,
        kinds=KIND_NAMES,
        probe=probe,
        probed=probed,
        step_text=STEP_TEXT,
        reason_text=REASON_TEXT,
        section="ui.storages",
    )


@bp.get("/storages")
@member
def storages():
    with services().db.session() as s:
        org = _org(s)
        if org is None:
            return page("no_org.html", s, title="Storages")
        return _list_page(s, org)


# --- add and edit -------------------------------------------------------------------------------------


def form_of(record: StorageRecord | None) -> MultiDict:
    """A stored storage as the form's fields (never its credentials)."""
    if record is None:
        return MultiDict({"kind": "local", "immutability_mode": "none", "signing_region": "us-east-1"})
    items: list[tuple[str, str]] = [("name", record.name), ("kind", record.kind), ("region", record.region)]
    for form_name, key in LOCATION_FIELDS.get(record.kind, ()):
        items.append((form_name, str(record.location.get(key, ""))))
    immutability = record.immutability or {"mode": "none"}
    items.append(("immutability_mode", immutability.get("mode", "none")))
    if immutability.get("retain_days") is not None:
        items.append(("retain_days", str(immutability["retain_days"])))
    return MultiDict(items)


def body_of(form: MultiDict) -> dict[str, Any]:
    """The API body (StorageIn) the form stands for; blank secrets are left out (keep what is stored)."""
    kind = form.get("kind", "")
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "kind": kind,
        "region": form.get("region", "").strip(),
        "location": {},
    }
    for form_name, key in LOCATION_FIELDS.get(kind, ()):
        value = form.get(form_name, "").strip()
        if value or key not in ("prefix", "signing_region"):
            body["location"][key] = value
    secrets = {key: form.get(name, "") for name, key in SECRET_FIELDS.get(kind, ())}
    if any(v.strip() for v in secrets.values()):
        body["credentials"] = {k: v.strip() for k, v in secrets.items()}
    mode = form.get("immutability_mode", "none")
    immutability: dict[str, Any] = {"mode": mode}
    days = form.get("retain_days", "").strip()
    if days and mode != "none":
        immutability["retain_days"] = int(days) if days.isdigit() else days
    body["immutability"] = immutability
    return body


def field_of(kind: str, path: list[str]) -> str:
    """The form field beside which an error at this place of the body shows."""
    parts = [p for p in path if p != "_schema"]
    if not parts:
        return "form"
    head = parts[0]
    if head == "location":
        names = {key: name for name, key in LOCATION_FIELDS.get(kind, ())}
        if len(parts) > 1 and parts[1] in names:
            return names[parts[1]]
        return LOCATION_FIELDS[kind][0][0] if kind in LOCATION_FIELDS else "kind"
    if head == "credentials":
        secret = SECRET_FIELDS.get(kind) or ()
        names = {key: name for name, key in secret}
        if len(parts) > 1 and parts[1] in names:
            return names[parts[1]]
        return secret[-1][0] if secret else "kind"
    if head == "immutability":
        return "retain_days" if len(parts) > 1 and parts[1] == "retain_days" else "immutability_mode"
    return head if head in ORDER else "form"


def errors_of(kind: str, messages: Any, path: list[str] | None = None, out: dict | None = None) -> dict:
    """The API's error fields (nested, marshmallow-shaped) as {form field: [messages]}."""
    path = path or []
    out = {} if out is None else out
    if isinstance(messages, dict):
        for key, value in messages.items():
            errors_of(kind, value, [*path, str(key)], out)
    elif isinstance(messages, list):
        for m in messages:
            errors_of(kind, m, path, out)
    else:
        where = field_of(kind, path)
        out.setdefault(where, [])
        if str(messages) not in out[where]:
            out[where].append(str(messages))
    return out


def load(
    form: MultiDict, cloud_id: str, record: StorageRecord | None
) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, list[str]]]:
    """The body loaded by the API's schema and checks: (data, checked, {}) or (None, {}, errors)."""
    body = body_of(form)
    kind = body["kind"]
    try:
        data = StorageIn().load(body)
    except ValidationError as e:
        return None, {}, errors_of(kind, e.messages)
    if "credentials" not in body:
        data.pop("credentials", None)  # blank: keep the stored ones
    changed_kind = record is None or record.kind != kind
    try:
        checked = _checked(kind, cloud_id, data, need_location=True, need_credentials=changed_kind)
    except ApiError as e:
        return None, {}, errors_of(kind, e.fields)
    return data, checked, {}


def _form_page(
    s: Session,
    org: Organisation,
    form: MultiDict,
    record: StorageRecord | None,
    errors: dict[str, list[str]] | None = None,
    probe: dict[str, Any] | None = None,
    status: int = 200,
):
    errors = errors or {}
    ordered = {k: errors[k] for k in sorted(errors, key=lambda n: ORDER.index(n) if n in ORDER else 99)}
    return page(
        "storage_form.html",
        s,
        org,
        record=record,
        v=form,
        errors=ordered,
        probe=probe,
        kinds=KIND_NAMES,
        modes=IMMUTABILITY_MODES,
        step_text=STEP_TEXT,
        reason_text=REASON_TEXT,
        saved_secrets=bool(record and record.credentials_sealed and record.kind == form.get("kind")),
        section="ui.storages",
    ), status


@bp.get("/storages/new")
@member
@least_role("admin", "edit storages")
def new_storage():
    with services().db.session() as s:
        org = _org(s)
        if org is None:
            return page("no_org.html", s, title="Storages")
        return _form_page(s, org, form_of(None), None)


@bp.get("/storages/<storage_id>/edit")
@member
@least_role("admin", "edit storages")
def edit_storage(storage_id: str):
    with services().db.session() as s:
        record = storage_of(s, storage_id)
        return _form_page(s, s.get(Organisation, record.organisation_id), form_of(record), record)


def _probe(org: Organisation, record: StorageRecord | None, data: dict, checked: dict) -> dict[str, Any]:
    """Probe the submitted values (the stored credentials when none were typed); nothing is stored."""
    svc = services()
    creds = checked.get("credentials")
    if creds is None and record is not None and record.kind == data["kind"]:
        try:
            creds = st.target_of(record, svc.config, org.cloud_id).credentials
        except ValueError:
            return {
                "ok": False,
                "steps": [{"step": "connect", "status": "failed", "message": ""}],
                "failed_step": "connect",
                "reason": "unreadable_credentials",
                "field": "credentials",
                "message": "the stored credentials cannot be decrypted with this service's secret key: enter them again",
            }
    target = st.Target(
        record.public_id if record else "stg_probe",
        data["name"],
        data["kind"],
        checked["location"],
        org.cloud_id,
        creds or {},
        st.immutability_settings(data.get("immutability")),
    )
    return st.probe(target, svc.config).to_dict()


def _save(storage_id: str | None):
    """Create (None) or replace a storage from the form; Test connection probes and stores nothing."""
    form = request.form
    testing = form.get("action") == "test"
    svc = services()
    with svc.db.session() as s:
        if storage_id is None:
            org = _org(s)
            if org is None:
                abort(404)
            record = None
        else:
            record = storage_of(s, storage_id)
            org = s.get(Organisation, record.organisation_id)
        data, checked, errors = load(form, org.cloud_id, record)
        if errors:
            return _form_page(s, org, form, record, errors, status=422)
        assert data is not None
        if testing:
            probe = _probe(org, record, data, checked)
            errors = {}
            if not probe["ok"] and probe.get("field"):
                errors = errors_of(data["kind"], {probe["field"].split(".")[0]: _nest(probe)})
            return _form_page(s, org, form, record, errors, probe=probe)
        try:
            _name_free(s, org.id, data["name"], but=record.id if record else None)
        except ApiError as e:
            return _form_page(s, org, form, record, errors_of(data["kind"], e.fields), status=409)
        if record is None:
            count = s.scalar(
                select(func.count()).select_from(StorageRecord).where(StorageRecord.organisation_id == org.id)
            )
            if count >= MAX_STORAGES:
                errors = {"form": [f"an organisation has at most {MAX_STORAGES} storages"]}
                return _form_page(s, org, form, record, errors, status=409)
            public_id = new_id("storage")
            target = StorageRecord(public_id=public_id, organisation_id=org.id)
            s.add(target)
        else:
            target = record
        target.name, target.kind = data["name"], data["kind"]
        target.location = checked["location"]
        if "credentials" in checked:
            target.credentials_sealed = st.seal_credentials(
                svc.config, org.cloud_id, target.public_id, checked["credentials"]
            )
        target.region, target.immutability = data["region"], data["immutability"]
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            errors = {"name": ["already used"]}
            return _form_page(s, org, form, record, errors, status=409)
        flash(f"Storage “{target.name}” {'added' if record is None else 'saved'}.", "success")
        return redirect(url_for("ui.storages", org=org.cloud_id), code=303)


def _nest(probe: dict[str, Any]) -> Any:
    """The probe's message placed at its field (e.g. location.container -> {"container": [...]})."""
    parts = probe["field"].split(".")[1:]
    node: Any = [probe["message"]]
    for part in reversed(parts):
        node = {part: node}
    return node


@bp.post("/storages/new")
@member
@least_role("admin", "edit storages")
def create_storage():
    return _save(None)


@bp.post("/storages/<storage_id>/edit")
@member
@least_role("admin", "edit storages")
def update_storage(storage_id: str):
    return _save(storage_id)


# --- test from the list, delete -----------------------------------------------------------------------


@bp.post("/storages/<storage_id>/test")
@member
@least_role("operator", "test storages")
def test_storage(storage_id: str):
    svc = services()
    with svc.db.session() as s:
        record = storage_of(s, storage_id)
        org = s.get(Organisation, record.organisation_id)
        try:
            target = st.target_of(record, svc.config, org.cloud_id)
        except ValueError:
            probe: dict[str, Any] = {
                "ok": False,
                "steps": [{"step": "connect", "status": "failed", "message": ""}],
                "failed_step": "connect",
                "reason": "unreadable_credentials",
                "field": "credentials",
                "message": "the stored credentials cannot be decrypted with this service's secret key: set them again",
            }
        else:
            probed = st.probe(target, svc.config)
            st.remember_check(record, target.immutability, probed.immutability)
            s.commit()
            probe = probed.to_dict()
        return _list_page(s, org, probe=probe, probed=record.public_id)


def _plans_using(s: Session, record: StorageRecord) -> list[tuple[str, str]]:
    return list(
        s.execute(
            select(Plan.public_id, Plan.name)
            .outerjoin(PlanReplica, PlanReplica.plan_id == Plan.id)
            .where(or_(Plan.storage_id == record.id, PlanReplica.storage_id == record.id))
            .distinct()
            .order_by(Plan.name)
        )
    )


@bp.get("/storages/<storage_id>/delete")
@member
@least_role("admin", "edit storages")
def confirm_delete_storage(storage_id: str):
    with services().db.session() as s:
        record = storage_of(s, storage_id)
        org = s.get(Organisation, record.organisation_id)
        return page(
            "storages_delete.html",
            s,
            org,
            record=record,
            users=_plans_using(s, record),
            kinds=KIND_NAMES,
            section="ui.storages",
        )


@bp.post("/storages/<storage_id>/delete")
@member
@least_role("admin", "edit storages")
def delete_storage(storage_id: str):
    with services().db.session() as s:
        record = storage_of(s, storage_id)
        org = s.get(Organisation, record.organisation_id)
        name, cloud_id = record.name, org.cloud_id
        users = _plans_using(s, record)
        if users:
            named = ", ".join(f"“{n}”" for _, n in users)
            flash(
                f"“{name}” was not deleted: plans {named} use it. Move them to another storage first.",
                "error",
            )
            return redirect(url_for("ui.storages", org=cloud_id), code=303)
        s.delete(record)
        try:
            s.commit()
        except IntegrityError:  # a plan took it meanwhile
            s.rollback()
            flash(f"“{name}” was not deleted: a plan started using it.", "error")
            return redirect(url_for("ui.storages", org=cloud_id), code=303)
        flash(f"Storage “{name}” deleted. What it holds stays where it is.", "success")
        return redirect(url_for("ui.storages", org=cloud_id), code=303)
