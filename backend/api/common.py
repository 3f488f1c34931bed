"""What every API module shares: JSON body loading, pagination, time formatting."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import request
from marshmallow import EXCLUDE, Schema, fields, validate

from backend.errors import ApiError, Invalid


def load(schema: Schema, partial: bool = False) -> dict[str, Any]:
    """Validate the JSON body with a schema; malformed JSON is 400, schema violations are 422."""
    if not request.is_json:
        raise ApiError("send JSON with Content-Type: application/json", code="unsupported_media_type")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError("the body is not valid JSON", code="malformed_json")
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return schema.load(body, partial=partial)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


class PageArgs(Schema):
    """?limit=N&cursor=C: `cursor` is the `next_cursor` of the previous page, an opaque string."""

    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer()
    cursor = fields.String(load_default=None, validate=validate.Length(min=1, max=64))


def page_args(default: int = 20, maximum: int = 100) -> tuple[int, str | None]:
    """The page size (1..maximum) and the cursor of a list request; bad values are 422 naming the field."""
    args = PageArgs().load(request.args)
    limit = args.get("limit", default)
    if not 1 <= limit <= maximum:
        raise Invalid(f"limit must be between 1 and {maximum}", {"limit": [f"between 1 and {maximum}"]})
    return limit, args["cursor"]


def sequence_cursor(cursor: str | None) -> int | None:
    """A cursor that is a position in a sequence (log lines): a whole number below 2**63."""
    if cursor is None:
        return None
    if not re.fullmatch(r"[0-9]{1,18}", cursor):
        raise Invalid("cursor is not one this API gave out", {"cursor": ["unknown cursor"]})
    return int(cursor)
