"""JSON decoding on the hot paths (Jira's answers, the documents and trees of snapshots).

`loads` is orjson's parser, a few times faster than the standard library's, with `json.loads` as the
fallback for what orjson refuses (lone surrogate escapes, NaN, other encodings than UTF-8) and for
documents with a run of 19 or more digits (orjson reads an integer beyond 64 bits as a float, where
json keeps it exact): so what a backup or restore reads is exactly what `json.loads` would give.
Encoding stays with `json.dumps` (`backend.repository.model.canonical_json`): blob ids depend on its bytes.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Every digit to "0", everything else to " ": a run of 19 digits is then a plain substring search, which
# costs a tenth of orjson's parse (a regex costs more than the parse itself).
_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_RUN = b"0" * 19


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse one JSON document; raise `json.JSONDecodeError` (a ValueError) when it is not one."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if _LONG_RUN not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data if isinstance(data, str) else raw)
