"""The Jira client against the sandbox over real HTTP: paging, retries, Retry-After, limits, errors."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from flask import Flask, jsonify

from backend.jira import (
    JiraAuthError,
    JiraBadRequest,
    JiraClient,
    JiraCredentials,
    JiraNotFound,
    JiraUnavailable,
)
from keepstone.servers import serve_in_thread
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, free_port, start_sandbox


def client_for(site, **kw) -> JiraClient:
    return JiraClient(JiraCredentials(site.url, ADMIN_EMAIL, ADMIN_TOKEN), **kw)


def admin(site, method: str, path: str, body=None):
    r = requests.request(method, f"{site.url}/_sandbox/{path}", json=body, timeout=10)
    r.raise_for_status()
    return r.json() if r.content else None


def test_search_pages_through_every_issue_of_a_project(sandbox_site):
    client = client_for(sandbox_site)
    keys = [
        i["key"] for i in client.search_jql("project = PLAT ORDER BY key", ["key", "updated"], page_size=7)
    ]
    expected = next(p for p in admin(sandbox_site, "GET", "site")["projects"] if p["key"] == "PLAT")["issues"]
    assert sorted(keys) == sorted(expected)
    assert len(keys) == len(set(keys))


def test_a_repeated_page_token_cannot_make_paging_loop():
    app = Flask("loop")
    calls = []

    @app.post("/rest/api/3/search/jql")
    def search():
        calls.append(1)
        return jsonify({"issues": [{"id": str(len(calls))}], "nextPageToken": "same", "isLast": False})

    server = serve_in_thread(app)
    try:
        client = JiraClient(JiraCredentials(server.url, "a", "b"))
        ids = [i["id"] for i in client.search_jql("project = X", ["id"])]
    finally:
        server.stop()
    assert ids == ["1", "2"]  # the second answer repeats the token: stop there
    assert len(calls) == 2


def test_transient_5xx_bursts_are_ridden_out(fresh_site):
    admin(fresh_site, "POST", "faults", {"path": "/rest/api/3/myself", "status": 502, "count": 3})
    client = client_for(fresh_site, backoff_base=0.01)
    assert client.myself()["emailAddress"] == ADMIN_EMAIL
    assert client.stats.retries == 3


def test_retry_after_is_waited_exactly(fresh_site):
    admin(
        fresh_site,
        "POST",
        "faults",
        {"path": "/rest/api/3/myself", "status": 503, "count": 2, "retry_after": 3},
    )
    waits: list[float] = []
    client = client_for(fresh_site, sleep=waits.append, backoff_base=0.01)
    client.myself()
    assert waits == [3.0, 3.0]


def test_giving_up_after_the_last_attempt_is_a_clear_error(fresh_site):
    admin(fresh_site, "POST", "faults", {"path": "/rest/api/3/myself", "status": 500, "count": 10})
    client = client_for(fresh_site, max_attempts=3, backoff_base=0.001)
    with pytest.raises(JiraUnavailable, match=r"kept answering 500.*3 attempts"):
        client.myself()


@pytest.mark.pacing
def test_429_storm_is_ridden_out_by_all_threads_sharing_one_budget():
    with start_sandbox(projects=1, issues_per_project=5, rate_limit=20, burst=5) as site:
        client = client_for(site)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(10):
                    client.get_json("/rest/api/3/myself")
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stats = admin(site, "GET", "stats")["totals"]
    assert not errors
    assert client.stats.requests - client.stats.throttled == 60
    # The budget learns the pace: far fewer 429s than requests.
    assert stats["rate_limited"] < 30


def test_wrong_token_is_an_auth_error_with_jiras_message(sandbox_site):
    client = JiraClient(JiraCredentials(sandbox_site.url, ADMIN_EMAIL, "wrong"))
    with pytest.raises(JiraAuthError, match="401"):
        client.myself()


def test_hidden_project_is_not_found_for_the_viewer(sandbox_site):
    viewer = JiraClient(JiraCredentials(sandbox_site.url, "viewer@example.com", "sandbox-viewer-token"))
    hidden = admin(sandbox_site, "GET", "site")["projects"][-1]["key"]
    with pytest.raises(JiraNotFound):
        viewer.get_json(f"/rest/api/3/project/{hidden}")
    assert hidden not in {p["key"] for p in viewer.projects()}


def test_unreachable_site_is_a_clear_error_after_retries():
    client = JiraClient(
        JiraCredentials(f"http://127.0.0.1:{free_port()}", "a", "b"), max_attempts=2, backoff_base=0.001
    )
    started = time.monotonic()
    with pytest.raises(JiraUnavailable, match="cannot be reached"):
        client.myself()
    assert time.monotonic() - started < 30


def test_truncated_attachment_download_is_detected(sandbox_site):
    attachments = admin(sandbox_site, "GET", "attachments")
    client = client_for(sandbox_site)
    good = next(a for a in attachments if a["corrupt"] is None and a["size"] > 0)
    assert sum(len(c) for c in client.download(good["id"])) == good["size"]
    truncated = next((a for a in attachments if a["corrupt"] == "truncated"), None)
    if truncated is None:
        pytest.skip("this seed generated no truncated attachment")
    with pytest.raises(OSError) as broken:
        for _ in client.download(truncated["id"]):
            pass
    # The site sends the first half of the bytes it announced: the message says so, not "after 0 bytes".
    size = truncated["size"]
    assert f"the connection broke after {size // 2} of {size} bytes" in str(broken.value)


def test_a_download_rides_out_a_busy_jira_but_not_a_broken_media_file(fresh_site):
    attachments = admin(fresh_site, "GET", "attachments")
    good = next(a for a in attachments if a["corrupt"] is None and a["size"] > 0)
    path = f"/rest/api/3/attachment/content/{good['id']}"
    # Five answers of 503/502 in a row: Jira is busy, the bytes come after the burst.
    admin(fresh_site, "POST", "faults", {"path": path, "status": 503, "count": 3})
    admin(fresh_site, "POST", "faults", {"path": path, "status": 502, "count": 2})
    client = client_for(fresh_site, backoff_base=0.001)
    assert sum(len(c) for c in client.download(good["id"])) == good["size"]
    assert client.stats.retries == 5
    # Answers of 500 mean the media store cannot read the file: three, then it is reported.
    admin(fresh_site, "POST", "faults", {"path": path, "status": 500, "count": 10})
    with pytest.raises(JiraUnavailable, match=r"kept answering 500.*after 3 attempts"):
        for _ in client.download(good["id"]):
            pass


def test_comments_beyond_the_inline_page_are_all_read(sandbox_site):
    client = client_for(sandbox_site)
    for issue in client.search_jql("project = PLAT", ["comment"], page_size=100):
        inline = issue["fields"]["comment"]
        if inline["total"] > len(inline["comments"]):
            everything = client.paged(f"/rest/api/3/issue/{issue['id']}/comment", "comments", page_size=7)
            assert len(everything) == inline["total"]
            return
    pytest.skip("no issue with more comments than the inline page")


def test_a_bulk_create_refused_whole_names_each_issue_and_field(fresh_site):
    """POST /issue/bulk answers its refusals as a list, one per element: a JiraBadRequest naming them."""
    client = client_for(fresh_site)
    project = client.get_json("/rest/api/3/project/search")["values"][0]["key"]
    bad = [{"fields": {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": "  "}}] * 2
    with pytest.raises(JiraBadRequest) as refused:
        client.post_json("/rest/api/3/issue/bulk", {"issueUpdates": bad})
    assert refused.value.status == 400
    assert {"0.summary", "1.summary"} <= set(refused.value.errors), refused.value.errors


def test_proxy_and_ca_settings_come_from_the_environment_once(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = JiraClient(JiraCredentials("https://acme.atlassian.net", "a", "b"))
    assert client.session.proxies.get("https") == "http://proxy.internal:3128"
    assert client.session.verify == str(bundle) and client.session.trust_env is False
    monkeypatch.setenv("NO_PROXY", ".atlassian.net")
    direct = JiraClient(JiraCredentials("https://acme.atlassian.net", "a", "b"))
    assert "https" not in direct.session.proxies
