"""/rest/api/3/jql/parse: each query answered with Jira's errors, or with a structure when it is valid."""

from __future__ import annotations


def test_valid_and_invalid_queries_are_answered_each(jira):
    keys = [p["key"] for p in jira.get("/rest/api/3/project/search")["values"]]
    body = jira.post(
        "/rest/api/3/jql/parse",
        {"queries": [f"project = {keys[0]}", "labels = ", "project = NOPE", "universe = 42"]},
        params={"validation": "strict"},
    )
    good, broken, unknown_value, unknown_field = body["queries"]
    assert good == {"query": f"project = {keys[0]}", "structure": {}}
    assert broken["errors"] and "structure" not in broken
    assert unknown_value["errors"] == ["The value 'NOPE' does not exist for the field 'project'."]
    assert "universe" in unknown_field["errors"][0]


def test_validation_none_checks_the_syntax_only(jira):
    body = jira.post("/rest/api/3/jql/parse", {"queries": ["project = NOPE"]}, params={"validation": "none"})
    assert body["queries"] == [{"query": "project = NOPE", "structure": {}}]


def test_an_empty_list_of_queries_is_a_400(jira):
    jira.call(
        "POST", "/rest/api/3/jql/parse", json={"queries": []}, params={"validation": "strict"}, expect=400
    )
