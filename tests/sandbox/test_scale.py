"""Scale and streaming: a 100,000-issue site pages to the end; large attachments stream intact."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest


@pytest.mark.slow
def test_hundred_thousand_issues_page_to_the_last_id(make_site):
    site = make_site(projects=4, issues_per_project=25_000, seed=2)
    ids = [i["id"] for i in site.search_all("created >= 2000-01-01", page=5000)]
    assert len(ids) == len(set(ids)) == 100_000
    count = site.post("/rest/api/3/search/approximate-count", {"jql": "created >= 2000-01-01"})["count"]
    assert count == 100_000
    tail = site.post("/rest/api/3/issue/bulkfetch", {"issueIdsOrKeys": ids[-100:], "fields": ["*all"]})
    assert len(tail["issues"]) == 100


@pytest.mark.slow
def test_large_attachments_stream_intact(make_site):
    site = make_site(
        projects=1,
        issues_per_project=2,
        seed=8,
        attachment_share=1.0,
        attachment_large_share=1.0,
        corrupt_share=0.0,
    )
    records = site.admin("GET", "attachments?sha=1")
    big = max(records, key=lambda a: a["size"])
    assert big["size"] >= 10 * 2**20
    digest, size = hashlib.sha256(), 0
    with site.http.get(
        f"{site.url}/rest/api/3/attachment/content/{big['id']}", stream=True, timeout=120
    ) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_content(1 << 16):
            digest.update(chunk)
            size += len(chunk)
    assert size == big["size"]
    assert digest.hexdigest() == big["sha256"]


def test_concurrent_reads_and_writes_never_fail(fresh):
    key = fresh.get("/rest/api/3/project/search")["values"][0]["key"]
    issue_keys = [i["key"] for i in fresh.search_all(f"project = {key}", fields="key")]

    def read(n: int) -> int:
        resp = fresh.call(
            "GET",
            "/rest/api/3/search/jql",
            params={"jql": f"project = {key}", "fields": "*all"},
            validate=False,
            expect=None,
        )
        return resp.status_code

    def write(n: int) -> int:
        target = issue_keys[n % len(issue_keys)]
        return fresh.call(
            "PUT",
            f"/rest/api/3/issue/{target}",
            json={"fields": {"summary": f"edit {n}"}},
            validate=False,
            expect=None,
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        reads = [pool.submit(read, n) for n in range(40)]
        writes = [pool.submit(write, n) for n in range(40)]
        assert {f.result() for f in reads} == {200}
        assert {f.result() for f in writes} == {204}
