"""/rest/api/3/search/jql: cursor paging, page-size rules, the JQL subset, Jira's 400s and the legacy 410s."""

from __future__ import annotations

import pytest
import requests

from tests.sandbox.validate import check


@pytest.fixture(scope="module")
def keys(jira) -> list[str]:
    return [p["key"] for p in jira.get("/rest/api/3/project/search")["values"]]


def test_ids_only_by_default(jira, keys):
    body = jira.get("/rest/api/3/search/jql", params={"jql": f"project = {keys[0]}"})
    assert body["issues"] and set(body["issues"][0]) <= {"id", "self", "key", "expand"}
    assert "total" not in body


def test_cursor_paging_reaches_every_issue_once(jira, keys):
    issues = jira.search_all(f"project = {keys[0]}", page=7, fields="key")
    assert len(issues) == 30
    assert len({i["id"] for i in issues}) == 30


def test_post_search_matches_get_search(jira, keys):
    got = jira.search_all(f"project = {keys[0]} ORDER BY key ASC", fields="key")
    posted = jira.post(
        "/rest/api/3/search/jql",
        {"jql": f"project = {keys[0]} ORDER BY key ASC", "fields": ["key"], "maxResults": 100},
    )
    assert [i["key"] for i in posted["issues"]] == [i["key"] for i in got]


def test_ids_only_pages_hold_up_to_5000_and_full_pages_fewer(make_site):
    big = make_site(projects=1, issues_per_project=6000, seed=3, attachment_share=0.0)
    key = big.get("/rest/api/3/project/search")["values"][0]["key"]
    ids = big.get("/rest/api/3/search/jql", params={"jql": f"project = {key}", "maxResults": 6000})
    assert len(ids["issues"]) == 5000 and ids["nextPageToken"]
    full = big.get(
        "/rest/api/3/search/jql",
        params={"jql": f"project = {key}", "maxResults": 6000, "fields": "*all"},
        validate=False,
    )
    assert 0 < len(full["issues"]) < 5000


def test_fields_and_expand_names(jira, keys):
    body = jira.get(
        "/rest/api/3/search/jql",
        params={
            "jql": f"project = {keys[0]}",
            "fields": "summary,updated",
            "expand": "names",
            "maxResults": 5,
        },
    )
    issue = body["issues"][0]
    assert set(issue["fields"]) == {"summary", "updated"}
    assert issue["key"].startswith(keys[0] + "-")


def test_approximate_count_matches_the_search(jira, keys):
    jql = f"project in ({keys[0]}, {keys[1]})"
    count = jira.post("/rest/api/3/search/approximate-count", {"jql": jql})["count"]
    assert count == len(jira.search_all(jql)) == 60


def test_updated_filter_and_order_by(jira, keys):
    issues = jira.search_all(f"project = {keys[0]} ORDER BY updated ASC", fields="updated")
    stamps = [i["fields"]["updated"] for i in issues]
    assert stamps == sorted(stamps)
    middle = stamps[len(stamps) // 2]
    since = f"{middle[:10]} {middle[11:16]}"
    newer = jira.search_all(f'project = {keys[0]} AND updated >= "{since}"', fields="updated")
    assert 0 < len(newer) < 30
    assert all(i["fields"]["updated"][:16] >= middle[:16].replace(" ", "T") for i in newer)


def test_key_in_or_and_not(jira, keys):
    two = [i["key"] for i in jira.search_all(f"project = {keys[0]} ORDER BY key ASC", fields="key")[:2]]
    found = jira.search_all(f"key in ({two[0]}, {two[1]})", fields="key")
    assert sorted(i["key"] for i in found) == sorted(two)
    either = jira.search_all(f"issuekey = {two[0]} OR issuekey = {two[1]}", fields="key")
    assert len(either) == 2
    rest = jira.search_all(f"project = {keys[0]} AND NOT key = {two[0]}", fields="key")
    assert len(rest) == 29 and two[0] not in {i["key"] for i in rest}


@pytest.mark.parametrize(
    "jql",
    ["", "ORDER BY key", "project = ", "project = (", "project == X", "nosuchfield = 1", "project = NOPE"],
    ids=["empty", "unbounded", "missing-value", "paren", "bad-operator", "unknown-field", "unknown-project"],
)
def test_bad_jql_is_400_in_jira_shape(jira, jql):
    resp = jira.call("GET", "/rest/api/3/search/jql", params={"jql": jql}, expect=400)
    assert resp.json()["errorMessages"]


def test_bad_page_token_is_400(jira, keys):
    jira.call(
        "GET",
        "/rest/api/3/search/jql",
        params={"jql": f"project = {keys[0]}", "nextPageToken": "x!"},
        expect=400,
    )


@pytest.mark.parametrize("path", ["/rest/api/2/search", "/rest/api/3/search"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_legacy_search_is_gone_with_410(sandbox_site, path, method):
    resp = requests.request(
        method,
        sandbox_site.url + path,
        auth=("admin@example.com", "sandbox-admin-token"),
        params={"jql": "project = X"},
        json={"jql": "project = X"},
        timeout=10,
    )
    assert resp.status_code == 410
    assert "/rest/api/3/search/jql" in " ".join(resp.json()["errorMessages"])
    check(resp)


def _keys(jira, jql: str) -> set[str]:
    return {i["key"] for i in jira.search_all(jql, fields="key")}


def test_jql_is_case_insensitive_and_accepts_quotes_and_parentheses(jira, keys):
    a, b = keys[0], keys[1]
    both = _keys(jira, f"project in ({a}, {b})")
    assert _keys(jira, f'PROJECT IN ("{a}", "{b}")') == both
    assert _keys(jira, f"project = {a} or project = {b} order by key asc") == both
    first = sorted(_keys(jira, f"project = {a}"))[0]
    assert _keys(jira, f"(project = {a} OR project = {b}) AND NOT key = {first}") == both - {first}
    assert _keys(jira, f"project = {a} AND issuekey != {first}") == _keys(jira, f"project = {a}") - {first}


def test_relative_dates_in_updated(fresh):
    assert fresh.search_all("updated >= -1d", fields="key") == []
    changed = fresh.admin("POST", "mutate", {"share": 0.1, "seed": 5})["changed"]
    assert sorted(i["key"] for i in fresh.search_all("updated >= -1d", fields="key")) == sorted(changed)
    assert sorted(i["key"] for i in fresh.search_all("updated > -2h", fields="key")) == sorted(changed)


def test_order_by_several_fields(jira, keys):
    issues = jira.search_all(
        f"project in ({keys[0]}, {keys[1]}) ORDER BY project ASC, key DESC", fields="key"
    )
    pairs = [(i["key"].split("-")[0], int(i["key"].split("-")[1])) for i in issues]
    blocks = [p for n, (p, _) in enumerate(pairs) if n == 0 or pairs[n - 1][0] != p]
    assert len(blocks) == 2, "each project's issues come together"
    for project in blocks:
        numbers = [num for p, num in pairs if p == project]
        assert numbers == sorted(numbers, reverse=True), "key DESC holds within a project"


def test_post_search_accepts_every_documented_body_member(jira, keys):
    ids = [int(i["id"]) for i in jira.search_all(f"project = {keys[0]}")[:3]]
    body = {
        "jql": f"project = {keys[0]}",
        "maxResults": 5,
        "fields": ["key", "updated"],
        "expand": "names",
        "properties": [],
        "fieldsByKeys": False,
        "reconcileIssues": ids,
    }
    first = jira.post("/rest/api/3/search/jql", body)
    second = jira.post("/rest/api/3/search/jql", {**body, "nextPageToken": first["nextPageToken"]})
    assert second["issues"]
    assert not {i["id"] for i in first["issues"]} & {i["id"] for i in second["issues"]}
