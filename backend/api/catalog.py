"""The snapshot catalog over HTTP: full-text search across an organisation's snapshots, and one issue's
history (which snapshots held it, in which version) or its version at a moment. Answers come from the
database (backend/catalog); no pack is read. Viewers may ask (backend/auth/roles.py)."""

from __future__ import annotations

import re
from datetime import datetime

from flask import Blueprint, jsonify, request
from marshmallow import EXCLUDE, Schema, fields, validate

from backend.auth.access import organisation
from backend.auth.roles import least_role
from backend.catalog import QueryError, issue_at, issue_history, search
from backend.errors import Invalid, NotFound
from backend.services import services

bp = Blueprint("catalog", __name__)
ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,63}-[1-9][0-9]{0,17}")


class SearchArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    q = fields.String(required=True, validate=validate.Length(min=1, max=200))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class HistoryArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    at = fields.AwareDateTime(load_default=None)


class SnapshotRef(Schema):
    snapshot_id = fields.String(required=True)
    project = fields.String(required=True)
    time = fields.DateTime(required=True)


class SearchHit(Schema):
    key = fields.String(required=True)
    summary = fields.String(required=True)
    version = fields.String(required=True)
    snippet = fields.String(required=True)
    snapshots = fields.List(fields.Nested(SnapshotRef), required=True)


class SearchOut(Schema):
    items = fields.List(fields.Nested(SearchHit), required=True)


class IssueVersion(Schema):
    snapshot_id = fields.String(required=True)
    time = fields.DateTime(required=True)
    version = fields.String(required=True)
    summary = fields.String(required=True)
    updated = fields.String(required=True)


class HistoryOut(Schema):
    """Every snapshot that held the issue, oldest first; with `?at=`, `at` is the one that moment saw."""

    key = fields.String(required=True)
    items = fields.List(fields.Nested(IssueVersion), required=True)
    at = fields.Nested(IssueVersion, required=True, allow_none=True)


@bp.get("/organisations/<cloud_id>/search")
@least_role("viewer", "search snapshots")
def search_snapshots(cloud_id: str):
    args = SearchArgs().load(request.args)  # a ValidationError is a 422 naming the field
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        try:
            hits = search(s, org.id, args["q"], args["limit"])
        except QueryError as e:
            raise Invalid(str(e), {"q": [str(e)]}) from e
        return jsonify({"items": [h.to_dict() for h in hits]})


@bp.get("/organisations/<cloud_id>/issues/<key>/history")
@least_role("viewer", "browse snapshots")
def history(cloud_id: str, key: str):
    if not ISSUE_KEY.fullmatch(key):
        raise Invalid("not an issue key like ABC-12", {"key": ["not an issue key like ABC-12"]})
    args = HistoryArgs().load(request.args)
    with services().db.session() as s:
        org = organisation(s, cloud_id)
        items = issue_history(s, org.id, key)
        if not items:
            raise NotFound(f"no snapshot holds {key}")
        moment: datetime | None = args["at"]
        at = issue_at(s, org.id, key, moment) if moment is not None else None
        return jsonify({"key": key, "items": items, "at": at})
