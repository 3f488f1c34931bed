"""keepstone.jsonio.loads answers exactly what json.loads answers, including what orjson refuses."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepstone.jsonio import loads

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_what_json_writes_is_read_back_the_same(doc):
    text = json.dumps(doc, ensure_ascii=False)
    assert loads(text.encode("utf-8", "surrogatepass")) == json.loads(text)
    assert loads(json.dumps(doc).encode()) == json.loads(json.dumps(doc))


@pytest.mark.parametrize(
    "data",
    [
        b'{"summary": "half a pair \\ud800 of surrogates"}',  # orjson refuses a lone surrogate escape
        b"[1e400, -1e400]",
        b"123456789012345678901234567890",  # beyond 64 bits: orjson would read a float
        b'{"n": -9999999999999999999, "m": 18446744073709551616}',
        '{"k": "Zürich"}'.encode("utf-16"),  # json.loads detects UTF-16/32 from the bytes
        b'{"a": 1, "a": 2}',  # the last of duplicate keys wins, as in json
    ],
)
def test_what_orjson_refuses_or_reads_otherwise_is_answered_as_json_does(data):
    assert loads(data) == json.loads(data)


def test_nan_is_read_as_json_reads_it():
    assert math.isnan(loads(b"[NaN]")[0])


@pytest.mark.parametrize("data", [b"", b"{", b"<html>Service Unavailable</html>", b'{"a": 1} trailing'])
def test_not_json_raises_a_value_error(data):
    with pytest.raises(ValueError):
        loads(data)
