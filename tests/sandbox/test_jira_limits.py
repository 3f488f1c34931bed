"""Jira Cloud's documented size limits and paging rules (reference/FACTS.md), checked over HTTP."""

from __future__ import annotations

import pytest
import requests


@pytest.fixture(scope="module")
def ids(jira) -> list[str]:
    return [i["id"] for i in jira.search_all("created >= 2000-01-01")]


def test_changelog_inline_is_capped_at_40(jira, ids):
    body = jira.post(
        "/rest/api/3/issue/bulkfetch",
        {"issueIdsOrKeys": ids[:100], "fields": ["summary"], "expand": ["changelog"]},
    )
    longest = max(body["issues"], key=lambda i: i["changelog"]["total"])
    assert longest["changelog"]["total"] > 40
    assert len(longest["changelog"]["histories"]) == 40


def test_bulkfetch_takes_up_to_1000_with_few_named_fields(make_site):
    site = make_site(projects=1, issues_per_project=1100, seed=4, attachment_share=0.0)
    ids = [i["id"] for i in site.search_all("created >= 2000-01-01", page=5000)]
    named = site.post(
        "/rest/api/3/issue/bulkfetch", {"issueIdsOrKeys": ids[:1000], "fields": ["summary", "updated"]}
    )
    assert len(named["issues"]) == 1000
    site.call(
        "POST",
        "/rest/api/3/issue/bulkfetch",
        json={"issueIdsOrKeys": ids[:1001], "fields": ["summary"]},
        expect=400,
    )
    site.call(
        "POST",
        "/rest/api/3/issue/bulkfetch",
        json={"issueIdsOrKeys": ids[:101], "fields": ["*all"]},
        expect=400,
    )
    site.call(
        "POST",
        "/rest/api/3/issue/bulkfetch",
        json={"issueIdsOrKeys": ids[:101], "fields": ["summary"], "expand": ["changelog"]},
        expect=400,
    )


def test_changelog_bulkfetch_limits_and_field_filter(jira, ids):
    jira.call(
        "POST",
        "/rest/api/3/changelog/bulkfetch",
        json={"issueIdsOrKeys": [str(n) for n in range(1001)]},
        expect=400,
    )
    jira.call(
        "POST",
        "/rest/api/3/changelog/bulkfetch",
        json={"issueIdsOrKeys": ids[:5], "fieldIds": [f"f{n}" for n in range(11)]},
        expect=400,
    )
    body = jira.post(
        "/rest/api/3/changelog/bulkfetch",
        {"issueIdsOrKeys": ids[:30], "fieldIds": ["status"], "maxResults": 1000},
    )
    items = [item for log in body["issueChangeLogs"] for h in log["changeHistories"] for item in h["items"]]
    assert items and {item["fieldId"] for item in items} == {"status"}


def test_comments_order_by_created_descending_with_rendered_body(jira, ids):
    issue = max(
        jira.post("/rest/api/3/issue/bulkfetch", {"issueIdsOrKeys": ids[:100], "fields": ["comment"]})[
            "issues"
        ],
        key=lambda i: i["fields"]["comment"]["total"],
    )
    page = jira.get(
        f"/rest/api/3/issue/{issue['key']}/comment",
        params={"orderBy": "-created", "expand": "renderedBody", "maxResults": 50},
    )
    created = [c["created"] for c in page["comments"]]
    assert len(created) > 1 and created == sorted(created, reverse=True)
    assert all(isinstance(c["renderedBody"], str) for c in page["comments"])


def test_range_past_the_end_is_416(jira):
    healthy = [a for a in jira.admin("GET", "attachments") if a["size"] > 0 and not a["corrupt"]]
    resp = jira.call(
        "GET",
        f"/rest/api/3/attachment/content/{healthy[0]['id']}",
        params={"redirect": "false"},
        headers={"Range": f"bytes={healthy[0]['size'] + 10}-"},
        expect=416,
        validate=False,
    )
    assert resp.status_code == 416


def test_worklog_updated_pages_are_at_most_1000_and_ordered(make_site):
    site = make_site(projects=1, issues_per_project=800, seed=6, attachment_share=0.0)
    page = site.get("/rest/api/3/worklog/updated", params={"since": 0})
    times = [v["updatedTime"] for v in page["values"]]
    assert len(times) <= 1000 and times == sorted(times)
    if not page["lastPage"]:
        assert page["nextPage"].startswith(site.url) and page["until"] >= times[-1]


def test_bearer_tokens_are_refused_on_cloud(sandbox_site):
    resp = requests.get(
        f"{sandbox_site.url}/rest/api/3/myself",
        headers={"Authorization": "Bearer sandbox-admin-token"},
        timeout=10,
    )
    assert resp.status_code == 401


def test_search_page_size_defaults_to_50(make_site):
    site = make_site(projects=1, issues_per_project=120, seed=9, attachment_share=0.0)
    key = site.admin("GET", "site")["projects"][0]["key"]
    body = site.get("/rest/api/3/search/jql", params={"jql": f"project = {key}"})
    assert len(body["issues"]) == 50 and body["nextPageToken"]
