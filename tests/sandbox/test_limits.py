"""Realism knobs and the /_sandbox/ admin API: rate limits, faults, stats, mutate, reset, datacenter flavor."""

from __future__ import annotations

import time

import requests

from tests.sandbox.conftest import Jira
from tests.sandbox.validate import assert_error_shape, check, check_issue_fields


def test_burst_beyond_the_bucket_gets_429_with_jira_headers(make_site):
    site = make_site(projects=1, issues_per_project=2, rate_limit=1, burst=3)
    answers = [site.call("GET", "/rest/api/3/myself", expect=None, validate=False) for _ in range(8)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited and answers[0].status_code == 200
    resp = limited[0]
    assert int(resp.headers["Retry-After"]) >= 1
    assert resp.headers["RateLimit-Reason"] == "jira-burst-based"
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(resp.headers)
    assert_error_shape(resp)


def test_rate_limit_is_per_credential(make_site):
    site = make_site(projects=1, issues_per_project=2, rate_limit=1, burst=2)
    for _ in range(4):
        site.call("GET", "/rest/api/3/myself", expect=None, validate=False)
    viewer = Jira(site.url, ("viewer@example.com", "sandbox-viewer-token"))
    viewer.get("/rest/api/3/myself")


def test_hourly_points_quota_answers_429_with_its_reason(make_site):
    site = make_site(projects=1, issues_per_project=2, quota_points_per_hour=3)
    answers = [site.call("GET", "/rest/api/3/myself", expect=None, validate=False) for _ in range(6)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited
    assert limited[0].headers["RateLimit-Reason"] == "jira-quota-tenant-based"
    assert int(limited[0].headers["Retry-After"]) > 0


def test_injected_faults_break_the_next_matching_calls_only(fresh):
    fresh.admin("POST", "faults", {"path": "/rest/api/3/myself", "status": 503, "count": 2, "retry_after": 7})
    first = fresh.call("GET", "/rest/api/3/myself", expect=503, validate=False)
    assert first.headers["Retry-After"] == "7"
    fresh.call("GET", "/rest/api/3/myself", expect=503, validate=False)
    fresh.get("/rest/api/3/myself")
    fresh.get("/rest/api/3/serverInfo")


def test_deleting_faults_clears_them(fresh):
    fresh.admin("POST", "faults", {"path": "myself", "status": 500, "count": 5})
    fresh.admin("DELETE", "faults")
    fresh.get("/rest/api/3/myself")


def test_fault_rate_gives_some_transient_5xx(make_site):
    site = make_site(projects=1, issues_per_project=2, fault_rate=0.5)
    codes = [
        site.call("GET", "/rest/api/3/myself", expect=None, validate=False).status_code for _ in range(40)
    ]
    assert 200 in codes
    assert any(c >= 500 for c in codes)


def test_some_transient_faults_carry_retry_after(make_site):
    site = make_site(projects=1, issues_per_project=2, fault_rate=1.0)
    answers = [site.call("GET", "/rest/api/3/myself", expect=None, validate=False) for _ in range(40)]
    assert all(r.status_code >= 500 for r in answers)
    assert any("Retry-After" in r.headers for r in answers)
    for r in answers:
        assert_error_shape(r)


def test_stats_count_requests_statuses_and_bytes(fresh):
    fresh.admin("POST", "stats/reset")
    fresh.get("/rest/api/3/myself")
    body = fresh.call("GET", "/rest/api/3/myself").content
    fresh.get("/rest/api/3/issue/NOPE-1", expect=404)
    endpoints = fresh.admin("GET", "stats")["endpoints"]
    myself = endpoints["GET /rest/api/3/myself"]
    assert myself["requests"] == 2 and myself["status"] == {"200": 2}
    assert myself["bytes"] == 2 * len(body)
    issue = next(v for k, v in endpoints.items() if k.startswith("GET /rest/api/3/issue/"))
    assert issue["status"] == {"404": 1}


def test_stats_count_429s(make_site):
    site = make_site(projects=1, issues_per_project=2, rate_limit=1, burst=1)
    for _ in range(3):
        site.call("GET", "/rest/api/3/myself", expect=None, validate=False)
    myself = site.admin("GET", "stats")["endpoints"]["GET /rest/api/3/myself"]
    assert myself["requests"] == 3 and myself["status"].get("429", 0) >= 1


def test_mutate_changes_a_share_of_issues_and_search_sees_them(fresh):
    before = {
        i["key"]: i["fields"]["updated"] for i in fresh.search_all("created >= 2000-01-01", fields="updated")
    }
    changed = fresh.admin("POST", "mutate", {"share": 0.2, "seed": 1})["changed"]
    assert changed and set(changed) <= set(before)
    after = {
        i["key"]: i["fields"]["updated"] for i in fresh.search_all("created >= 2000-01-01", fields="updated")
    }
    assert all(after[k] > before[k] for k in changed)
    assert all(after[k] == before[k] for k in before if k not in changed)
    for doc in fresh.post("/rest/api/3/issue/bulkfetch", {"issueIdsOrKeys": changed[:100]})["issues"]:
        check_issue_fields(doc)


def test_reset_returns_to_the_generated_site(fresh):
    site_before = fresh.admin("GET", "site")
    key = fresh.search_all("created >= 2000-01-01", fields="key")[0]["key"]
    fresh.delete(f"/rest/api/3/issue/{key}")
    fresh.admin("POST", "reset")
    assert fresh.admin("GET", "site") == site_before
    fresh.get(f"/rest/api/3/issue/{key}")


def test_same_seed_gives_the_same_issue_documents(make_site):
    one, two = (
        make_site(projects=1, issues_per_project=5, seed=99),
        make_site(projects=1, issues_per_project=5, seed=99),
    )
    first = one.search_all("created >= 2000-01-01", fields="*all")
    second = two.search_all("created >= 2000-01-01", fields="*all")
    assert first and [_strip(i, one.url) for i in first] == [_strip(i, two.url) for i in second]


def _strip(doc, url: str) -> str:
    return repr(doc).replace(url, "SITE")


def test_datacenter_flavor_serves_v2_search_with_total_and_bearer_tokens(make_site):
    site = make_site(projects=1, issues_per_project=12, flavor="datacenter")
    bearer = requests.Session()
    bearer.headers["Authorization"] = "Bearer sandbox-admin-token"
    key = site.admin("GET", "site")["projects"][0]["key"]
    first = bearer.get(
        f"{site.url}/rest/api/2/search", params={"jql": f"project = {key}", "maxResults": 5}, timeout=10
    )
    assert first.status_code == 200, first.text
    check(first)
    body = first.json()
    assert body["total"] == 12 and body["startAt"] == 0 and len(body["issues"]) == 5
    last = bearer.get(
        f"{site.url}/rest/api/2/search", params={"jql": f"project = {key}", "startAt": 10}, timeout=10
    ).json()
    assert len(last["issues"]) == 2


def test_datacenter_search_pages_by_start_at_to_the_end_and_refuses_bad_tokens(make_site):
    site = make_site(projects=2, issues_per_project=23, flavor="datacenter")
    key = site.admin("GET", "site")["projects"][0]["key"]
    bearer = requests.Session()
    bearer.headers["Authorization"] = "Bearer sandbox-admin-token"
    seen, start = [], 0
    while True:
        resp = bearer.post(
            f"{site.url}/rest/api/2/search",
            json={"jql": f"project = {key}", "startAt": start, "maxResults": 10, "fields": ["summary"]},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        check(resp)
        page = resp.json()
        seen += [i["key"] for i in page["issues"]]
        start += len(page["issues"])
        if start >= page["total"] or not page["issues"]:
            break
    assert len(seen) == len(set(seen)) == 23
    bad = bearer.get(f"{site.url}/rest/api/2/search", params={"jql": "project = ("}, timeout=10)
    assert bad.status_code == 400
    assert_error_shape(bad)
    wrong = requests.get(
        f"{site.url}/rest/api/2/search",
        headers={"Authorization": "Bearer nope"},
        params={"jql": f"project = {key}"},
        timeout=10,
    )
    assert wrong.status_code == 401


def test_waiting_as_retry_after_says_is_enough(make_site):
    site = make_site(projects=1, issues_per_project=2, rate_limit=2, burst=1)
    site.get("/rest/api/3/myself")
    limited = site.call("GET", "/rest/api/3/myself", expect=429, validate=False)
    time.sleep(float(limited.headers["Retry-After"]))
    site.get("/rest/api/3/myself")


def test_injected_429_on_bulkfetch_is_counted_and_then_passes(fresh):
    ids = [i["id"] for i in fresh.search_all("created >= 2000-01-01")][:5]
    fresh.admin("POST", "stats/reset")
    fresh.admin("POST", "faults", {"path": r"/issue/bulkfetch$", "status": 429, "count": 1, "retry_after": 2})
    limited = fresh.call(
        "POST", "/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": ids}, expect=429, validate=False
    )
    assert limited.headers["Retry-After"] == "2"
    assert_error_shape(limited)
    fresh.get(f"/rest/api/3/issue/{ids[0]}")
    assert len(fresh.post("/rest/api/3/issue/bulkfetch", {"issueIdsOrKeys": ids})["issues"]) == 5
    stats = fresh.admin("GET", "stats")["endpoints"]["POST /rest/api/3/issue/bulkfetch"]
    assert stats["status"] == {"429": 1, "200": 1}


def test_fault_can_be_limited_to_one_method(fresh):
    key = fresh.search_all("created >= 2000-01-01", fields="key")[0]["key"]
    fresh.admin("POST", "faults", {"path": r"/comment$", "status": 500, "count": 1, "method": "POST"})
    fresh.get(f"/rest/api/3/issue/{key}/comment")
    body = {"body": {"type": "doc", "version": 1, "content": []}}
    fresh.call("POST", f"/rest/api/3/issue/{key}/comment", json=body, expect=500, validate=False)
    fresh.post(f"/rest/api/3/issue/{key}/comment", body, expect=201)
