"""What an incremental backup relies on: `updated >=` finds exactly what changed, deletions disappear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def _minute_before_now() -> str:
    return (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M")


def test_updated_since_finds_exactly_the_mutated_issues(fresh):
    since = _minute_before_now()
    assert fresh.search_all(f'updated >= "{since}"', fields="key") == []
    changed = fresh.admin("POST", "mutate", {"share": 0.1, "seed": 3})["changed"]
    found = fresh.search_all(f'updated >= "{since}"', fields="key")
    assert sorted(i["key"] for i in found) == sorted(changed)


def test_writes_through_the_api_bump_updated(fresh):
    since = _minute_before_now()
    key = fresh.search_all("created >= 2000-01-01", fields="key")[0]["key"]
    fresh.post(
        f"/rest/api/3/issue/{key}/comment", {"body": {"type": "doc", "version": 1, "content": []}}, expect=201
    )
    assert [i["key"] for i in fresh.search_all(f'updated >= "{since}"', fields="key")] == [key]


def test_issues_deleted_by_the_admin_api_leave_search_and_reads(fresh):
    keys = [i["key"] for i in fresh.search_all("created >= 2000-01-01 ORDER BY key ASC", fields="key")]
    fresh.admin("POST", "delete", {"issues": keys[:2]})
    left = {i["key"] for i in fresh.search_all("created >= 2000-01-01", fields="key")}
    assert left == set(keys[2:])
    fresh.get(f"/rest/api/3/issue/{keys[0]}", expect=404)


def test_site_listing_matches_what_search_finds(fresh):
    listed = fresh.admin("GET", "site")
    for project in listed["projects"]:
        found = {i["key"] for i in fresh.search_all(f"project = {project['key']}", fields="key")}
        assert found == set(project["issues"])


def _docs(site, ids: list[str]) -> list[dict]:
    return site.post("/rest/api/3/issue/bulkfetch", {"issueIdsOrKeys": ids, "fields": ["*all"]})["issues"]


def test_unchanged_issues_read_back_byte_identical(jira):
    ids = [i["id"] for i in jira.search_all("created >= 2000-01-01")][:100]
    first = jira.call("POST", "/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": ids, "fields": ["*all"]})
    second = jira.call(
        "POST", "/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": ids, "fields": ["*all"]}
    )
    assert first.content == second.content


def test_reset_restores_issue_documents_exactly(fresh):
    ids = [i["id"] for i in fresh.search_all("created >= 2000-01-01")]
    before = _docs(fresh, ids)
    fresh.admin("POST", "mutate", {"share": 0.5, "seed": 2})
    fresh.put(f"/rest/api/3/issue/{ids[0]}", {"fields": {"summary": "changed"}}, expect=204)
    fresh.admin("POST", "reset")
    assert _docs(fresh, ids) == before


def test_mutate_is_deterministic_for_a_seed(make_site):
    one, two = (make_site(projects=1, issues_per_project=40, seed=21) for _ in range(2))
    first = one.admin("POST", "mutate", {"share": 0.2, "seed": 4})["changed"]
    second = two.admin("POST", "mutate", {"share": 0.2, "seed": 4})["changed"]
    assert first == second and len(first) == 8
