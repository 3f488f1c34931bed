"""The sandbox's JSON answers, written by orjson: Jira's bulk pages are large, and the standard library's
encoder was a fifth of a sandbox's CPU in `bench scale`. Output as Jira's: compact, UTF-8 (not \\u
escapes), keys in the order the renderer built them. What orjson cannot write the way json does (an
integer beyond 64 bits, keyword options) goes to Flask's own provider; dates and dataclasses go through
Flask's `default`, as before."""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class FastJSONProvider(DefaultJSONProvider):
    sort_keys = False
    compact = True

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if not kwargs:
            try:
                return orjson.dumps(obj, default=self.default, option=OPTIONS).decode()
            except (TypeError, orjson.JSONEncodeError):
                pass
        return super().dumps(obj, **kwargs)
