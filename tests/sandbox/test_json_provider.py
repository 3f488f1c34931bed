"""The sandbox's JSON provider writes what Flask's did, parsed the same, in Jira's compact UTF-8 form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask

from sandbox.json_provider import FastJSONProvider


@dataclass
class Point:
    x: int


def provider() -> FastJSONProvider:
    return FastJSONProvider(Flask(__name__))


def test_documents_read_back_the_same_in_compact_utf8_with_the_renderers_key_order():
    doc = {"summary": "Zürich ✓ 東京", "z": 1, "a": [1.5, None, True], 7: "int key"}
    text = provider().dumps(doc)
    assert text == '{"summary":"Zürich ✓ 東京","z":1,"a":[1.5,null,true],"7":"int key"}'
    assert json.loads(text) == {**{k: v for k, v in doc.items() if k != 7}, "7": "int key"}


def test_what_orjson_cannot_write_is_written_by_flasks_provider():
    big = {"n": 2**70, "when": datetime(2026, 12, 2, 7, 0, tzinfo=UTC), "p": Point(3)}
    ours = json.loads(provider().dumps(big))
    flasks = json.loads(Flask(__name__).json.dumps(big))
    assert ours == flasks and ours["n"] == 2**70 and ours["when"] == "Wed, 02 Dec 2026 07:00:00 GMT"


def test_dates_and_dataclasses_go_through_flasks_default():
    doc = {"when": datetime(2026, 1, 5, 8, 30, tzinfo=UTC), "p": Point(2)}
    assert json.loads(provider().dumps(doc)) == {"when": "Mon, 05 Jan 2026 08:30:00 GMT", "p": {"x": 2}}
