"""GET /api/v1/openapi.json: the API described from the same marshmallow schemas that validate it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from marshmallow import Schema, fields

from backend.api.accounts import AccountIn
from backend.api.organisations import OrganisationIn
from backend.api.plans import PlanIn, RotationSchema, ScheduleSchema
from backend.api.runs import RunIn

bp = Blueprint("openapi", __name__)
TYPES = {
    fields.Integer: "integer",
    fields.Float: "number",
    fields.Boolean: "boolean",
    fields.Dict: "object",
    fields.List: "array",
    fields.Url: "string",
    fields.Email: "string",
    fields.String: "string",
}


def schema_json(schema: Schema) -> dict[str, Any]:
    props, required = {}, []
    for name, field in schema.fields.items():
        if field.load_only is False and field.dump_only:
            continue
        if isinstance(field, fields.Nested):
            props[name] = {"$ref": f"#/components/schemas/{type(field.schema).__name__}"}
        else:
            kind = next((t for cls, t in TYPES.items() if isinstance(field, cls)), "string")
            props[name] = {"type": kind}
            if isinstance(field, fields.Email):
                props[name]["format"] = "email"
            if isinstance(field, fields.Url):
                props[name]["format"] = "uri"
        if field.required:
            required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def _op(summary: str, body: str | None = None, ok: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {ok: {"description": "OK"}, "4XX": {"$ref": "#/components/responses/Error"}},
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


@bp.get("/openapi.json")
def document():
    schemas = {
        cls.__name__: schema_json(cls())
        for cls in (OrganisationIn, AccountIn, PlanIn, ScheduleSchema, RotationSchema, RunIn)
    }
    schemas["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {"type": "object"},
                },
            }
        },
    }
    org = "/api/v1/organisations/{cloud_id}"
    paths = {
        org: {"put": _op("Create or update the tenant and its default plan", "OrganisationIn")},
        f"{org}/suspend": {"post": _op("Uninstall: stop schedules, keep backups")},
        f"{org}/status": {"get": _op("Status for the panel")},
        f"{org}/account": {
            "get": _op("The Jira account (never its token)"),
            "put": _op("Set or replace the API token (checked first)", "AccountIn"),
        },
        f"{org}/plans": {"get": _op("List plans"), "post": _op("Create a plan", "PlanIn", "201")},
        "/api/v1/plans/{plan_id}": {"get": _op("One plan"), "patch": _op("Change a plan", "PlanIn")},
        f"{org}/runs": {
            "get": _op("Runs, newest first (limit, cursor)"),
            "post": _op("Backup now", "RunIn", "202"),
        },
        "/api/v1/runs/{run_id}": {"get": _op("One run with per-project results")},
        "/api/v1/runs/{run_id}/cancel": {"post": _op("Cancel a run", ok="202")},
        "/api/v1/runs/{run_id}/logs": {"get": _op("A run's log lines (limit, cursor)")},
        "/api/v1/organisations": {"get": _op("The signed-in user's organisations")},
    }
    return jsonify(
        {
            "openapi": "3.0.3",
            "info": {"title": "Keepstone backend API", "version": "1"},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "responses": {
                    "Error": {
                        "description": "Error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    }
                },
                "securitySchemes": {"service": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            },
            "security": [{"service": []}],
        }
    )
