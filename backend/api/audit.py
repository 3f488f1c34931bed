"""GET /organisations/{cloud_id}/audit: the organisation's audit log, newest first (admins only).

Filters as query parameters (actor, action, target, from, to; see backend/audit/query.py), cursor paging
(`limit`, `cursor` = the previous page's `next_cursor`), or `format=csv|json` for the whole filtered log
as a streamed download.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, stream_with_context
from marshmallow import ValidationError

from backend.api.common import page_args, sequence_cursor
from backend.audit import query as aq
from backend.auth.access import organisation
from backend.auth.roles import least_role
from backend.errors import Invalid
from backend.services import services

bp = Blueprint("audit", __name__)
FORMATS = ("csv", "json")


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
