"""What every API module shares: JSON body loading, pagination, time formatting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import request
from marshmallow import Schema

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


def page_args(default: int = 20, maximum: int = 100) -> tuple[int, int | None]:
    """?limit=N&cursor=ID (cursor: the last id of the previous page)."""
    try:
        limit = int(request.args.get("limit", default))
        cursor = int(request.args["cursor"]) if request.args.get("cursor") else None
    except ValueError:
        raise Invalid("limit and cursor must be whole numbers", {"limit": "whole number"}) from None
    if not 1 <= limit <= maximum:
        raise Invalid(f"limit must be between 1 and {maximum}", {"limit": f"1..{maximum}"})
    return limit, cursor
