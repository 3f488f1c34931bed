"""GET /api/v1/openapi.json: the API described from the same marshmallow schemas that validate it.

apispec turns the request schemas (the ones `load()` validates with) and the answer schemas into JSON
Schema; the fuzzer in tests/backend/test_api_fuzz.py checks every answer against this document.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, jsonify
from marshmallow import Schema, fields

from backend.api.accounts import AccountIn, AccountOut
from backend.api.catalog import HistoryOut, SearchOut
from backend.api.members import InvitationIn, InvitationList, InvitationOut, MemberList, MemberOut, RoleIn
from backend.api.notifications import ChannelIn, ChannelList, ChannelOut, DeliveryList, DeliveryOut
from backend.api.organisations import OrganisationIn, OrganisationList, OrganisationOut, StatusOut
from backend.api.plans import PlanIn, PlanList, PlanOut, SpecField
from backend.api.recovery import RecoveryIn, RecoveryOut
from backend.api.runs import LogList, RunIn, RunList, RunOut
from backend.api.storages import (
    AzureCredentials,
    AzureLocation,
    CredentialsField,
    LocalLocation,
    LocationField,
    S3Credentials,
    S3Location,
    StorageIn,
    StorageList,
    StorageOut,
    StorageTestOut,
)
from backend.auth.access import CLOUD_ID
from backend.backup.spec import DATA_DEFAULTS, BackupSpecSchema, DataKinds
from backend.db.ids import PATTERN

bp = Blueprint("openapi", __name__)


class ErrorDetail(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields = fields.Dict(required=True)


class Error(Schema):
    error = fields.Nested(ErrorDetail, required=True)


def _custom_fields(plugin: MarshmallowPlugin):
    """How our own marshmallow fields look in JSON Schema."""
    kinds = sorted(DATA_DEFAULTS)

    def convert(converter, field, **_) -> dict[str, Any]:
        if isinstance(field, DataKinds):
            return {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {k: {"type": "boolean"} for k in kinds},
                        "additionalProperties": False,
                    },
                    {"type": "array", "items": {"type": "string", "enum": kinds}},
                ]
            }
        if isinstance(field, SpecField):
            return plugin.converter.resolve_nested_schema(BackupSpecSchema)  # a $ref
        if isinstance(field, CredentialsField):  # before LocationField: it is one
            refs = [plugin.converter.resolve_nested_schema(s) for s in (AzureCredentials, S3Credentials)]
            return {
                "oneOf": refs,
                "nullable": True,
                "description": "the kind's credentials (none for a local folder); never answered",
            }
        if isinstance(field, LocationField):
            refs = [
                plugin.converter.resolve_nested_schema(s) for s in (LocalLocation, AzureLocation, S3Location)
            ]
            return {"oneOf": refs, "description": "the location of the storage's kind"}
        return {}

    return convert


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": "Error"}}}


READ_ERRORS = {
    "401": _error("no or invalid credentials (checked before anything else)"),
    "403": _error("the caller's role in the organisation is below the route's (backend/auth/roles.py)"),
    "404": _error("not there, or not yours: the same answer"),
    "422": _error("a query parameter breaks its schema; `fields` names it"),
}
WRITE_ERRORS = READ_ERRORS | {
    "400": _error("malformed JSON, or a session write without its CSRF token"),
    "413": _error("the body is larger than 1 MiB"),
    "415": _error("the body is not application/json"),
    "422": _error("well-formed JSON that breaks the schema; `fields` names each problem"),
}


def _param(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


CLOUD = _param("cloud_id", "path", {"type": "string", "pattern": CLOUD_ID.pattern}, "the Jira site's cloudId")
PLAN = _param("plan_id", "path", {"type": "string", "pattern": PATTERN.pattern}, "a plan's id (pln_...)")
RUN = _param("run_id", "path", {"type": "string", "pattern": PATTERN.pattern}, "a run's id (run_...)")
STORAGE = _param(
    "storage_id", "path", {"type": "string", "pattern": PATTERN.pattern}, "a storage's id (stg_...)"
)


def _page(maximum: int) -> list[dict[str, Any]]:
    return [
        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": maximum}, "page size"),
        _param(
            "cursor",
            "query",
            {"type": "string", "minLength": 1, "maxLength": 64},
            "`next_cursor` of the previous page",
        ),
    ]


def _op(
    summary: str,
    answer: str,
    ok: str = "200",
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    errors = WRITE_ERRORS if body else READ_ERRORS
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": params or [],
        "responses": {ok: {"description": "OK", "content": {"application/json": {"schema": answer}}}}
        | errors
        | (extra or {}),
    }
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _catalog_paths(org: str) -> dict[str, Any]:
    """Search and issue history from the snapshot catalog (backend/api/catalog.py)."""
    query = _param("q", "query", {"type": "string", "minLength": 1, "maxLength": 200}, "a word or phrase")
    query["required"] = True
    limit = _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200}, "most hits")
    key = _param(
        "key",
        "path",
        {"type": "string", "pattern": r"^[A-Z][A-Z0-9_]{0,63}-[1-9][0-9]{0,17}$"},
        "an issue key",
    )
    at = _param("at", "query", {"type": "string", "format": "date-time"}, "a moment with its UTC offset")
    return {
        f"{org}/search": {
            "get": _op(
                "Which snapshots held a phrase (summary, description, comments)",
                "SearchOut",
                params=[CLOUD, query, limit],
            )
        },
        f"{org}/issues/{{key}}/history": {
            "get": _op(
                "An issue across the snapshots, and its version at a moment",
                "HistoryOut",
                params=[CLOUD, key, at],
            )
        },
    }


def _notification_paths(org: str) -> dict[str, Any]:
    """Channels, their rules and deliveries (backend/api/notifications.py); writes are admins'."""
    channel = _param(
        "channel_id", "path", {"type": "string", "pattern": PATTERN.pattern}, "a channel's id (chn_...)"
    )
    one = f"{org}/notifications/channels/{{channel_id}}"
    return {
        f"{org}/notifications": {
            "get": _op("The organisation's channels and their last delivery", "ChannelList", params=[CLOUD])
        },
        f"{org}/notifications/channels": {
            "post": _op(
                "Add a channel (a webhook's signing secret is in this answer only)",
                "ChannelOut",
                "201",
                body="ChannelIn",
                params=[CLOUD],
            )
        },
        one: {
            "get": _op("One channel", "ChannelOut", params=[CLOUD, channel]),
            "patch": _op("Change a channel", "ChannelOut", body="ChannelIn", params=[CLOUD, channel]),
            "delete": {
                "summary": "Delete a channel",
                "parameters": [CLOUD, channel],
                "responses": {"204": {"description": "deleted"}} | READ_ERRORS,
            },
        },
        f"{one}/test": {"post": _op("Send a test message now", "DeliveryOut", params=[CLOUD, channel])},
        f"{one}/messages": {
            "get": _op("The channel's last 50 deliveries", "DeliveryList", params=[CLOUD, channel])
        },
    }


@cache
def build() -> dict[str, Any]:
    """The whole document (built once per process: it depends only on the code)."""
    plugin = MarshmallowPlugin()
    spec = APISpec("Keepstone backend API", "1", "3.0.3", plugins=[plugin])
    plugin.converter.add_attribute_function(_custom_fields(plugin))
    for schema in (
        Error,
        OrganisationIn,
        OrganisationOut,
        OrganisationList,
        StatusOut,
        AccountIn,
        AccountOut,
        MemberOut,
        MemberList,
        RoleIn,
        InvitationIn,
        InvitationOut,
        InvitationList,
        PlanIn,
        PlanOut,
        PlanList,
        RunIn,
        RunOut,
        RunList,
        LogList,
        StorageIn,
        StorageOut,
        StorageList,
        StorageTestOut,
        RecoveryIn,
        RecoveryOut,
        SearchOut,
        HistoryOut,
        DeliveryOut,
        ChannelOut,
        ChannelList,
        DeliveryList,
        ChannelIn,
    ):
        spec.components.schema(schema.__name__, schema=schema)
    spec.components.security_scheme(
        "service", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "connector"}
    )
    spec.components.security_scheme(
        "session", {"type": "apiKey", "in": "cookie", "name": "session", "description": "signed-in user"}
    )
    conflict = {"409": _error("the organisation is suspended, or a run of the plan is active")}
    upstream = {"502": _error("Jira could not be reached or answered an error")}
    named = {"409": _error("another storage of the organisation has this name, or there are too many")}
    in_use = {"409": _error("plans use the storage; `fields.plans` names them")}
    jira_checked = {  # backend/plans_check.py: selected keys and the exclusion JQL are asked of Jira
        "400": _error("malformed JSON, a CSRF-less session write, or a project key or JQL Jira refuses"),
        "502": _error("Jira could not check the keys or JQL, so nothing was saved; `fields` names them"),
    }
    org = "/organisations/{cloud_id}"
    paths = {
        "/organisations": {"get": _op("The organisations the caller may act for", "OrganisationList")},
        org: {
            "put": _op(
                "Create or update the tenant and its default plan",
                "OrganisationOut",
                body="OrganisationIn",
                params=[CLOUD],
                extra={
                    "201": {
                        "description": "created",
                        "content": {"application/json": {"schema": "OrganisationOut"}},
                    }
                },
            )
        },
        f"{org}/suspend": {
            "post": _op("Uninstall: stop schedules, keep backups", "OrganisationOut", params=[CLOUD])
        },
        f"{org}/status": {"get": _op("Status for the panel", "StatusOut", params=[CLOUD])},
        f"{org}/recovery-passphrase": {
            "get": _op(
                "Whether a recovery passphrase is set (never the passphrase)", "RecoveryOut", params=[CLOUD]
            ),
            "put": _op(
                "Set or replace the recovery passphrase (admins); added to every repository, each outcome listed",
                "RecoveryOut",
                body="RecoveryIn",
                params=[CLOUD],
            ),
            "delete": _op(
                "Remove the recovery passphrase (admins) and its wraps", "RecoveryOut", params=[CLOUD]
            ),
        },
        f"{org}/account": {
            "get": _op("The Jira account (never its token)", "AccountOut", params=[CLOUD]),
            "put": _op(
                "Set or replace the API token (checked against Jira first)",
                "AccountOut",
                body="AccountIn",
                params=[CLOUD],
                extra=upstream,
            ),
        },
        f"{org}/plans": {
            "get": _op("List plans", "PlanList", params=[CLOUD]),
            "post": _op("Create a plan", "PlanOut", "201", body="PlanIn", params=[CLOUD], extra=jira_checked),
        },
        "/plans/{plan_id}": {
            "get": _op("One plan", "PlanOut", params=[PLAN]),
            "patch": _op(
                "Change a plan (any subset of its fields)",
                "PlanOut",
                body="PlanIn",
                params=[PLAN],
                extra=jira_checked,
            ),
            "delete": {
                "summary": "Delete a plan and its run history (the snapshots stay in their storage)",
                "parameters": [PLAN],
                "responses": {"204": {"description": "deleted"}}
                | READ_ERRORS
                | {"409": _error("the default plan, or a run of the plan is active")},
            },
        },
        f"{org}/runs": {
            "get": _op("Runs, newest first", "RunList", params=[CLOUD, *_page(100)]),
            "post": _op(
                "Backup now (the default plan unless plan_id is given)",
                "RunOut",
                "202",
                body="RunIn",
                params=[CLOUD],
                extra=conflict,
            ),
        },
        f"{org}/storages": {
            "get": _op("List storages (never their credentials)", "StorageList", params=[CLOUD]),
            "post": _op(
                "Create a storage (nothing is contacted; the test action proves its immutability)",
                "StorageOut",
                "201",
                body="StorageIn",
                params=[CLOUD],
                extra=named,
            ),
        },
        "/storages/{storage_id}": {
            "get": _op("One storage (never its credentials)", "StorageOut", params=[STORAGE]),
            "patch": _op(
                "Change a storage (any subset of its fields; a new kind needs its location and credentials)",
                "StorageOut",
                body="StorageIn",
                params=[STORAGE],
                extra=named,
            ),
            "delete": {
                "summary": "Delete a storage that no plan uses (its data stays where it is)",
                "parameters": [STORAGE],
                "responses": {"204": {"description": "deleted"}} | READ_ERRORS | in_use,
            },
        },
        "/storages/{storage_id}/test": {
            "post": _op(
                "Write, read, list and delete a probe object; which step failed and why",
                "StorageTestOut",
                params=[STORAGE],
            )
        },
        "/runs/{run_id}": {"get": _op("One run with per-project results", "RunOut", params=[RUN])},
        "/runs/{run_id}/cancel": {"post": _op("Cancel a run", "RunOut", "202", params=[RUN], extra=conflict)},
        "/runs/{run_id}/retry": {  # issue 17: Retry failed projects
            "post": _op(
                "Run the plan again for the projects that failed or were cancelled in this finished run",
                "RunOut",
                "202",
                params=[RUN],
                extra=conflict,
            )
        },
        "/runs/{run_id}/logs": {
            "get": _op("A run's log lines, oldest first", "LogList", params=[RUN, *_page(1000)])
        },
    }
    member = _param(
        "member_id", "path", {"type": "string", "pattern": PATTERN.pattern}, "a member's id (mbr_...)"
    )
    invitation = _param(
        "invitation_id",
        "path",
        {"type": "string", "pattern": PATTERN.pattern},
        "an invitation's id (inv_...)",
    )
    last_admin = {"409": _error("the last admin of the organisation cannot be demoted or removed")}
    paths |= {
        f"{org}/account/check": {
            "post": _op(
                "Check now: the stored token against Jira's /myself, recorded", "AccountOut", params=[CLOUD]
            )
        },
        f"{org}/members": {"get": _op("Members and their roles", "MemberList", params=[CLOUD])},
        f"{org}/members/{{member_id}}": {
            "patch": _op(
                "Change a member's role (kept from now on)",
                "MemberOut",
                body="RoleIn",
                params=[CLOUD, member],
                extra=last_admin,
            ),
            "delete": {
                "summary": "Remove a member",
                "parameters": [CLOUD, member],
                "responses": {"204": {"description": "removed"}} | READ_ERRORS | last_admin,
            },
        },
        f"{org}/invitations": {
            "get": _op("Open invitations (never their tokens)", "InvitationList", params=[CLOUD]),
            "post": _op(
                "Invite a local user: the one-time token and link are in this answer only (7 days)",
                "InvitationOut",
                "201",
                body="InvitationIn",
                params=[CLOUD],
                extra={"409": _error("the email is a member already")},
            ),
        },
        f"{org}/invitations/{{invitation_id}}": {
            "delete": {
                "summary": "Withdraw an open invitation (its link stops working)",
                "parameters": [CLOUD, invitation],
                "responses": {"204": {"description": "withdrawn"}} | READ_ERRORS,
            }
        },
    }
    paths |= _catalog_paths(org)
    paths |= _notification_paths(org)
    from backend.api import charts  # the dashboard's charts (issue 17)

    for name, schema in charts.SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    paths |= charts.openapi_paths(org, _op, _param, CLOUD)
    from backend.api.audit import AuditEventOut, AuditList, openapi_parameters  # the audit log (issue 16)

    spec.components.schema("AuditEventOut", schema=AuditEventOut)
    spec.components.schema("AuditList", schema=AuditList)
    audit = _op(
        "The audit log, newest first (admins)",
        "AuditList",
        params=[CLOUD, *openapi_parameters(_param), *_page(500)],
    )
    audit["responses"]["200"]["content"] |= {
        "text/csv": {"schema": {"type": "string"}},  # format=csv; format=json: an array of AuditEventOut
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/AuditList"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/AuditEventOut"}},
                ]
            }
        },
    }
    paths[f"{org}/audit"] = {"get": audit}
    for path, operations in paths.items():
        spec.path(path=f"/api/v1{path}", operations=operations)
    doc = spec.to_dict()
    doc["security"] = [{"service": []}, {"session": []}]
    # PATCH takes any subset of a plan: the same schema without its required list.
    patch = doc["paths"]["/api/v1/plans/{plan_id}"]["patch"]["requestBody"]["content"]["application/json"]
    partial = {k: v for k, v in doc["components"]["schemas"]["PlanIn"].items() if k != "required"}
    doc["components"]["schemas"]["PlanPatch"] = partial | {"minProperties": 1}
    patch["schema"] = {"$ref": "#/components/schemas/PlanPatch"}
    patch = doc["paths"]["/api/v1/storages/{storage_id}"]["patch"]["requestBody"]["content"][
        "application/json"
    ]
    partial = {k: v for k, v in doc["components"]["schemas"]["StorageIn"].items() if k != "required"}
    doc["components"]["schemas"]["StoragePatch"] = partial | {"minProperties": 1}
    patch["schema"] = {"$ref": "#/components/schemas/StoragePatch"}
    return doc


@bp.get("/openapi.json")
def document():
    return jsonify(build())
