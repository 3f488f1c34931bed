"""Issue reads: single issue with expansions, bulkfetch, comments/worklogs/changelog paging and the rest."""

from __future__ import annotations

import re

import pytest

from tests.sandbox.validate import check_issue_fields


@pytest.fixture(scope="module")
def issues(jira) -> list[dict]:
    """Every issue of the shared site with its comment and worklog totals (bulkfetched)."""
    ids = [i["id"] for i in jira.search_all("created >= 2000-01-01")]
    out = []
    for start in range(0, len(ids), 100):
        body = jira.post(
            "/rest/api/3/issue/bulkfetch", {"issueIdsOrKeys": ids[start : start + 100], "fields": ["*all"]}
        )
        out += body["issues"]
    return out


def _pick(issues, test) -> dict:
    found = [i for i in issues if test(i)]
    assert found, "the generated site lacks an issue this test needs"
    return found[0]


def test_bulkfetch_returns_every_issue_with_all_fields(issues):
    assert len(issues) == 90
    fields = issues[0]["fields"]
    assert {"summary", "status", "issuetype", "project", "created", "updated", "reporter"} <= set(fields)


def test_bulkfetch_reports_unknown_keys_as_issue_errors(jira, issues):
    body = jira.post("/rest/api/3/issue/bulkfetch", {"issueIdsOrKeys": [issues[0]["key"], "NOPE-1"]})
    assert [i["key"] for i in body["issues"]] == [issues[0]["key"]]
    assert body["issueErrors"]


def test_bulkfetch_refuses_more_than_100(jira):
    jira.call(
        "POST",
        "/rest/api/3/issue/bulkfetch",
        json={"issueIdsOrKeys": [f"X-{n}" for n in range(101)]},
        expect=400,
    )


def test_descriptions_are_adf_with_mentions_and_tables(issues):
    nodes: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            nodes.add(node.get("type", ""))
            for child in node.get("content", []):
                walk(child)

    for issue in issues:
        if issue["fields"].get("description"):
            assert issue["fields"]["description"]["type"] == "doc"
            walk(issue["fields"]["description"])
    assert {"paragraph", "mention", "table"} <= nodes


def test_site_has_epics_subtasks_links_and_custom_values(issues):
    _pick(issues, lambda i: i["fields"]["issuetype"]["name"] == "Epic")
    sub = _pick(issues, lambda i: i["fields"]["issuetype"]["subtask"])
    assert sub["fields"]["parent"]["key"]
    _pick(issues, lambda i: i["fields"].get("issuelinks"))
    _pick(issues, lambda i: i["fields"].get("labels"))
    _pick(issues, lambda i: i["fields"].get("components"))
    customs = {k for i in issues for k, v in i["fields"].items() if k.startswith("customfield_") and v}
    assert len(customs) >= 6


def test_single_issue_with_names_rendered_fields_and_changelog(jira, issues):
    key = issues[0]["key"]
    issue = jira.get(f"/rest/api/3/issue/{key}", params={"expand": "names,renderedFields,changelog"})
    assert issue["key"] == key
    assert issue["names"]["summary"] == "Summary"
    assert "renderedFields" in issue
    assert issue["changelog"]["total"] >= len(issue["changelog"]["histories"])


def test_single_issue_fields_filter(jira, issues):
    issue = jira.get(f"/rest/api/3/issue/{issues[0]['key']}", params={"fields": "summary,status"})
    assert set(issue["fields"]) == {"summary", "status"}


def test_unknown_issue_is_404(jira):
    jira.get("/rest/api/3/issue/NOPE-999", expect=404)


def test_comments_beyond_the_inline_page_are_paged(jira, issues):
    issue = _pick(issues, lambda i: i["fields"]["comment"]["total"] > 20)
    inline = issue["fields"]["comment"]
    assert len(inline["comments"]) <= 20 < inline["total"]
    got, start = [], 0
    while True:
        page = jira.get(
            f"/rest/api/3/issue/{issue['key']}/comment", params={"startAt": start, "maxResults": 10}
        )
        got += page["comments"]
        start += len(page["comments"])
        if not page["comments"] or start >= page["total"]:
            break
    assert len(got) == inline["total"] == len({c["id"] for c in got})
    one = jira.get(f"/rest/api/3/issue/{issue['key']}/comment/{got[-1]['id']}")
    assert one["id"] == got[-1]["id"]
    listed = jira.post("/rest/api/3/comment/list", {"ids": [int(got[0]["id"])]})
    assert [c["id"] for c in listed["values"]] == [got[0]["id"]]


def test_worklogs_paged_and_listed(jira, issues):
    issue = _pick(issues, lambda i: i["fields"]["worklog"]["total"] > 0)
    page = jira.get(f"/rest/api/3/issue/{issue['key']}/worklog", params={"maxResults": 1000})
    assert len(page["worklogs"]) == issue["fields"]["worklog"]["total"]
    ids = [int(w["id"]) for w in page["worklogs"]]
    listed = jira.post("/rest/api/3/worklog/list", {"ids": ids})
    assert sorted(int(w["id"]) for w in listed) == sorted(ids)


def test_worklog_updated_pages_every_worklog(jira, issues):
    total = sum(i["fields"]["worklog"]["total"] for i in issues)
    seen, since = [], 0
    while True:
        page = jira.get("/rest/api/3/worklog/updated", params={"since": since})
        seen += [v["worklogId"] for v in page["values"]]
        if page["lastPage"]:
            break
        since = page["until"]
    assert len(set(seen)) == total


def test_changelog_paged_and_bulkfetched(jira, issues):
    issue = _pick(issues, lambda i: True)
    key = issue["key"]
    histories, start = [], 0
    while True:
        page = jira.get(f"/rest/api/3/issue/{key}/changelog", params={"startAt": start, "maxResults": 3})
        histories += page["values"]
        start += len(page["values"])
        if page["isLast"] or not page["values"]:
            break
    assert len(histories) == page["total"]
    ids = [i["id"] for i in issues[:20]]
    bulk, token, pages = [], None, 0
    while True:
        body = {"issueIdsOrKeys": ids, "maxResults": 10}
        if token:
            body["nextPageToken"] = token
        answer = jira.post("/rest/api/3/changelog/bulkfetch", body)
        bulk += [h for log in answer["issueChangeLogs"] for h in log["changeHistories"]]
        token = answer.get("nextPageToken")
        pages += 1
        if not token:
            break
    expected = 0
    for i in issues[:20]:
        expected += jira.get(f"/rest/api/3/issue/{i['key']}/changelog", params={"maxResults": 1})["total"]
    assert len(bulk) == expected and pages >= expected // 10


def test_remote_links_watchers_votes_and_properties(jira, issues):
    with_remote = [i for i in issues if jira.get(f"/rest/api/3/issue/{i['key']}/remotelink")]
    assert with_remote
    key = issues[0]["key"]
    watchers = jira.get(f"/rest/api/3/issue/{key}/watchers")
    assert watchers["watchCount"] == len(watchers["watchers"])
    votes = jira.get(f"/rest/api/3/issue/{key}/votes")
    assert votes["votes"] >= 0
    keys = []
    for issue in issues:
        keys = jira.get(f"/rest/api/3/issue/{issue['key']}/properties")["keys"]
        if keys:
            prop = jira.get(f"/rest/api/3/issue/{issue['key']}/properties/{keys[0]['key']}")
            assert prop["key"] == keys[0]["key"]
            break
    assert keys


def test_transitions_are_listed(jira, issues):
    transitions = jira.get(f"/rest/api/3/issue/{issues[0]['key']}/transitions")["transitions"]
    assert {t["to"]["name"] for t in transitions} >= {"Done"} - {issues[0]["fields"]["status"]["name"]}


def test_every_issue_field_value_matches_its_schema(issues):
    for issue in issues:
        check_issue_fields(issue)


@pytest.mark.parametrize(
    "expand",
    [
        "renderedFields",
        "names",
        "schema",
        "transitions",
        "operations",
        "editmeta",
        "changelog",
        "versionedRepresentations",
    ],
)
def test_each_issue_expand_is_valid(jira, issues, expand):
    issue = jira.get(f"/rest/api/3/issue/{issues[1]['key']}", params={"expand": expand})
    assert issue["key"] == issues[1]["key"]


def test_search_with_all_fields_is_valid(jira, issues):
    key = issues[0]["key"].split("-")[0]
    body = jira.get(
        "/rest/api/3/search/jql",
        params={"jql": f"project = {key}", "fields": "*all", "expand": "names,schema", "maxResults": 20},
    )
    for issue in body["issues"]:
        check_issue_fields(issue)


def _matches(schema: dict, value) -> bool:
    kind = schema["type"]
    if kind == "array":
        return isinstance(value, list) and all(
            _matches({"type": schema.get("items", "any")}, v) for v in value
        )
    checks = {
        "option": lambda v: isinstance(v, dict) and "value" in v and "id" in v,
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "date": lambda v: isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v),
        "datetime": lambda v: isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+[+-]\d{4}", v),
        "user": lambda v: isinstance(v, dict) and "accountId" in v,
        "string": lambda v: isinstance(v, str) or (isinstance(v, dict) and v.get("type") == "doc"),
        "json": lambda v: isinstance(v, dict | list),
        "any": lambda v: True,
    }
    return bool(checks.get(kind, lambda v: True)(value))


def test_custom_field_values_match_the_declared_field_schema(jira, issues):
    declared = {f["id"]: f["schema"] for f in jira.get("/rest/api/3/field") if f["custom"]}
    seen = set()
    for issue in issues:
        for name, value in issue["fields"].items():
            if name.startswith("customfield_") and value is not None:
                assert name in declared, f"{name} is not listed by /field"
                assert _matches(declared[name], value), f"{issue['key']} {name}={value!r} vs {declared[name]}"
                seen.add(name)
    assert len(seen) >= 6


@pytest.mark.parametrize("path", ["/rest/api/3/comment/list", "/rest/api/3/worklog/list"])
@pytest.mark.parametrize("ids", [["abc"], "10001", [None]])
def test_listing_by_id_refuses_ids_that_are_not_numbers(jira, path, ids):
    r = jira.call("POST", path, json={"ids": ids}, expect=400, validate=False)
    assert r.json()["errorMessages"] == ["ids must be a list of numeric ids."]
