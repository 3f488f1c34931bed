"""Attachment metadata and content: redirects, streaming, Range, and the corrupted ones the site marks."""

from __future__ import annotations

import hashlib

import pytest
import requests


@pytest.fixture(scope="module")
def attachments(jira) -> list[dict]:
    """Every attachment of the shared site, as issue fields list them."""
    ids = [i["id"] for i in jira.search_all("created >= 2000-01-01")]
    out = []
    for start in range(0, len(ids), 100):
        body = jira.post(
            "/rest/api/3/issue/bulkfetch",
            {"issueIdsOrKeys": ids[start : start + 100], "fields": ["attachment"]},
        )
        out += [a for issue in body["issues"] for a in issue["fields"].get("attachment") or []]
    assert out, "the shared site has no attachments"
    return out


@pytest.fixture(scope="module")
def marks(jira) -> dict[str, dict]:
    """Attachment id -> its record in /_sandbox/attachments (corrupt kind or None, sha256 of healthy ones)."""
    return {str(m["id"]): m for m in jira.admin("GET", "attachments?sha=1")}


def _healthy(attachments, marks, minimum: int = 1) -> dict:
    for a in attachments:
        if a["size"] >= minimum and not (marks.get(str(a["id"])) or {}).get("corrupt"):
            return a
    pytest.fail("no healthy attachment of that size")


def test_metadata_matches_the_issue_field(jira, attachments):
    meta = jira.get(f"/rest/api/3/attachment/{attachments[0]['id']}")
    assert meta["filename"] == attachments[0]["filename"]
    assert meta["size"] == attachments[0]["size"]


def test_content_redirects_unless_redirect_false(jira, attachments, marks):
    a = _healthy(attachments, marks)
    hop = jira.call("GET", f"/rest/api/3/attachment/content/{a['id']}", allow_redirects=False, expect=303)
    assert hop.headers["Location"]
    direct = jira.call(
        "GET", f"/rest/api/3/attachment/content/{a['id']}", params={"redirect": "false"}, validate=False
    )
    followed = jira.call("GET", f"/rest/api/3/attachment/content/{a['id']}", validate=False)
    assert direct.content == followed.content
    assert len(direct.content) == a["size"]


def test_content_is_deterministic_and_matches_recorded_checksum(jira, attachments, marks):
    a = _healthy(attachments, marks)
    first = jira.call("GET", f"/rest/api/3/attachment/content/{a['id']}", validate=False).content
    second = jira.call("GET", f"/rest/api/3/attachment/content/{a['id']}", validate=False).content
    assert first == second
    assert hashlib.sha256(first).hexdigest() == marks[str(a["id"])]["sha256"]


def test_range_requests_answer_206_with_the_slice(jira, attachments, marks):
    a = _healthy(attachments, marks, minimum=100)
    whole = jira.call(
        "GET", f"/rest/api/3/attachment/content/{a['id']}", params={"redirect": "false"}, validate=False
    ).content
    part = jira.call(
        "GET",
        f"/rest/api/3/attachment/content/{a['id']}",
        params={"redirect": "false"},
        headers={"Range": "bytes=10-49"},
        expect=206,
        validate=False,
    )
    assert part.content == whole[10:50]
    assert part.headers["Content-Range"] == f"bytes 10-49/{a['size']}"


def test_unknown_attachment_is_404(jira):
    jira.get("/rest/api/3/attachment/987654321", expect=404)


def test_site_marks_some_attachments_corrupt_and_they_fail_as_marked(make_site):
    site = make_site(projects=1, issues_per_project=60, seed=4, attachment_share=1.0, corrupt_share=0.5)
    marked = [m for m in site.admin("GET", "attachments") if m["corrupt"]]
    kinds = {m["corrupt"] for m in marked}
    assert kinds == {"truncated", "wrong-length", "error"}
    for mark in marked:
        meta = site.get(f"/rest/api/3/attachment/{mark['id']}")
        url = f"{site.url}/rest/api/3/attachment/content/{mark['id']}?redirect=false"
        if mark["corrupt"] == "error":
            assert site.http.get(url, timeout=30).status_code == 500
            continue
        try:
            resp = site.http.get(url, timeout=30)
            got = len(resp.content)
        except requests.exceptions.ChunkedEncodingError:
            got = -1
        assert got != meta["size"], f"{mark['corrupt']} attachment delivered its full size"


def test_redirect_target_is_a_signed_url_that_needs_no_login(jira, attachments, marks):
    a = _healthy(attachments, marks)
    hop = jira.call("GET", f"/rest/api/3/attachment/content/{a['id']}", allow_redirects=False, expect=303)
    target = requests.compat.urljoin(jira.url + "/", hop.headers["Location"])
    resp = requests.get(target, timeout=30)
    assert resp.status_code == 200
    assert len(resp.content) == a["size"]


def test_redirect_target_refuses_a_forged_token(jira, attachments, marks):
    a = _healthy(attachments, marks)
    hop = jira.call("GET", f"/rest/api/3/attachment/content/{a['id']}", allow_redirects=False, expect=303)
    target = requests.compat.urljoin(jira.url + "/", hop.headers["Location"])
    forged = target.split("token=")[0] + "token=forged"
    assert requests.get(forged, timeout=30).status_code == 401


def test_zero_byte_attachments_download_empty(make_site):
    site = make_site(projects=1, issues_per_project=80, seed=12, attachment_share=1.0, corrupt_share=0.0)
    empty = [a for a in site.admin("GET", "attachments") if a["size"] == 0]
    assert empty, "the generator makes some zero-byte attachments"
    resp = site.call("GET", f"/rest/api/3/attachment/content/{empty[0]['id']}", validate=False)
    assert resp.content == b""
    assert site.get(f"/rest/api/3/attachment/{empty[0]['id']}")["size"] == 0
