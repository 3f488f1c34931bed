"""What both Flask services share at their edge: a bounded body, JSON that cannot crash the parser.

Every request body is capped (`MAX_BODY_BYTES`, 413 past it) and JSON nested deeper than Python's
recursion limit is a malformed body (400), not a RecursionError and a 500.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB: the largest legitimate body (a plan spec, an install payload) is ~10 kB


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, but a body too deeply nested to parse is a ValueError like any bad JSON."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def harden(app: Flask) -> None:
    """Cap request bodies and make deep JSON a plain parse error; call once in each app factory."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_BODY_BYTES
    app.json = BoundedJSONProvider(app)
