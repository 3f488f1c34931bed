"""The spec validator itself: it finds operations and rejects bodies that break the schema."""

from __future__ import annotations

import pytest

from tests.sandbox.validate import _validator, documented_operations, find_operation


def test_operations_are_found_by_path_template():
    assert find_operation("get", "/rest/api/3/issue/ABC-1") == (
        "jira-platform-rest-v3.openapi.json",
        "/rest/api/3/issue/{issueIdOrKey}",
    )
    assert find_operation("post", "/rest/api/3/issue/bulkfetch")[1] == "/rest/api/3/issue/bulkfetch"
    assert (
        find_operation("get", "/rest/agile/1.0/board/7/configuration")[1]
        == "/rest/agile/1.0/board/{boardId}/configuration"
    )
    assert find_operation("get", "/rest/api/3/no/such/thing") is None


def test_schema_errors_are_reported():
    validator = _validator("jira-platform-rest-v3.openapi.json", "/rest/api/3/search/jql", "get", "200")
    assert not list(validator.iter_errors({"issues": [{"id": "1"}], "isLast": True}))
    assert list(validator.iter_errors({"issues": "nope"}))
    assert list(validator.iter_errors({"issues": [], "total": 3}))  # additionalProperties: false


def test_undocumented_status_is_an_error():
    with pytest.raises(AssertionError):
        _validator("jira-platform-rest-v3.openapi.json", "/rest/api/3/myself", "get", "418")


def test_both_specs_are_loaded():
    ops = documented_operations()
    assert "GET /rest/api/3/search/jql" in ops and "GET /rest/agile/1.0/board" in ops


@pytest.mark.parametrize("flavor", ["cloud", "datacenter"])
def test_every_jira_endpoint_the_sandbox_serves_is_in_the_specs(flavor):
    from tests.sandbox.coverage import served_operations

    undocumented = [op for op in served_operations(flavor) if "NOT IN SPEC" in op]
    assert not undocumented
    assert len(served_operations(flavor)) > 50
