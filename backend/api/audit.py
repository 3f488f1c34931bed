"""GET /organisations/{cloud_id}/audit: the organisation's audit log, newest first (admins only).

Filters as query parameters (actor, action, target, from, to; see backend/audit/query.py), cursor paging
(`limit`, `cursor` = the previous page's `next_cursor`), or `format=csv|json` for the whole filtered log
as a streamed download.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, stream_with_context
from marshmallow import Schema, ValidationError, fields

from backend.api.common import page_args, sequence_cursor
from backend.audit import query as aq
from backend.auth.access import organisation
from backend.auth.roles import least_role
from backend.errors import Invalid
from backend.services import services

bp = Blueprint("audit", __name__)
FORMATS = ("csv", "json")


class AuditActor(Schema):
    kind = fields.String(required=True, metadata={"description": "user | connector | cli | anonymous"})
    id = fields.String(required=True, metadata={"description": "email, jira:<accountId>, connector or cli"})
    name = fields.String(required=True)


class AuditTarget(Schema):
    id = fields.String(required=True, metadata={"description": "a public id (pln_..., stg_...) or an email"})
    name = fields.String(required=True)


class AuditEventOut(Schema):
    """One audit event (backend/audit/query.py event_json)."""

    seq = fields.Integer(required=True, metadata={"description": "the event's place in the hash chain"})
    time = fields.DateTime(required=True)
    organisation = fields.String(required=True, allow_none=True)
    actor = fields.Nested(AuditActor, required=True)
    address = fields.String(required=True)
    action = fields.String(required=True, metadata={"example": "plan.update"})
    target = fields.Nested(AuditTarget, required=True)
    changes = fields.Dict(
        required=True, metadata={"description": "field -> {before, after}; a secret is only '(changed)'"}
    )
    details = fields.Dict(required=True)
    hash = fields.String(required=True)


class AuditList(Schema):
    items = fields.List(fields.Nested(AuditEventOut), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


def openapi_parameters(param: Any) -> list[dict[str, Any]]:
    """The filters and the format, as OpenAPI parameters (`param` is backend/api/openapi.py's _param)."""
    text = {"type": "string", "maxLength": 255}
    return [
        param("actor", "query", text, "part of the actor's email, account id or name"),
        param(
            "action",
            "query",
            {"type": "string", "maxLength": 64},
            "an action, or a family (plan: every plan.*)",
        ),
        param("target", "query", text, "a target's public id, or part of its name"),
        param("from", "query", {"type": "string", "maxLength": 40}, "a date (YYYY-MM-DD) or an ISO time"),
        param(
            "to", "query", {"type": "string", "maxLength": 40}, "a date (the whole day counts) or an ISO time"
        ),
        param(
            "format",
            "query",
            {"type": "string", "enum": list(FORMATS)},
            "the whole filtered log as a download",
        ),
    ]


def filters_of_request() -> dict:
    try:
        return aq.AuditFilters().load_filters(request.args)
    except ValidationError as e:
        messages = e.messages if isinstance(e.messages, dict) else {"_": e.messages}
        raise Invalid("a filter is not valid", messages) from None


def download(org_id: int, cloud_id: str, filters: dict, fmt: str) -> Response:
    """The filtered log as a streamed CSV or JSON file."""
    db = services().db
    rows = aq.csv_rows(db, org_id, filters) if fmt == "csv" else aq.json_rows(db, org_id, filters)
    mimetype = "text/csv" if fmt == "csv" else "application/json"
    response = Response(stream_with_context(rows), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="keepstone-audit-{cloud_id}.{fmt}"'
    return response


@bp.get("/organisations/<cloud_id>/audit")
@least_role("admin", "see the audit log")
def list_audit(cloud_id: str):
    filters = filters_of_request()
    fmt = request.args.get("format", "")
    if fmt and fmt not in FORMATS:
        raise Invalid("format is csv or json", {"format": ["one of csv, json"]})
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        if fmt:
            return download(org.id, org.cloud_id, filters, fmt)
        limit, cursor = page_args(default=50, maximum=500)
        rows, more = aq.page(s, aq.filtered(aq.scoped(s, org), filters), limit, sequence_cursor(cursor))
        return jsonify(
            {"items": [aq.event_json(e) for e in rows], "next_cursor": str(more) if more else None}
        )
