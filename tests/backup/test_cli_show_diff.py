"""`keepstone show` renders a backed-up issue as text (or the document with --json); `keepstone diff`
names what changed structurally: list items, link targets, ADF text lines, nothing cut short."""

from __future__ import annotations

import json

import requests

from keepstone.render import adf_text, changes
from tests.backup.test_cli_errors import backup, keepstone
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN

AUTH = (ADMIN_EMAIL, ADMIN_TOKEN)
LONG = "The customer portal times out when the export holds more than ten thousand rows; " * 5


def adf(*paragraphs: str) -> dict:
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs]}  # fmt: skip


def jira(site, method: str, path: str, body: dict | None = None) -> requests.Response:
    done = requests.request(method, f"{site.url}/rest/api/3{path}", json=body, auth=AUTH, timeout=10)
    assert done.status_code < 300, done.text
    return done


def snapshot_id(site, url: str) -> str:
    done = backup(site.url, url, "--init", "--projects", "PLAT", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["projects"][0]["snapshot_id"]


def test_show_renders_text_and_diff_names_each_change(fresh_site, tmp_path):
    url = f"file://{tmp_path}/repo"
    jira(
        fresh_site, "PUT", "/issue/PLAT-2", {"fields": {"description": adf(LONG + "old ending.", "Second.")}}
    )
    jira(fresh_site, "POST", "/issueLink", {"type": {"name": "Blocks"}, "inwardIssue": {"key": "PLAT-2"},
                                            "outwardIssue": {"key": "PLAT-3"}})  # fmt: skip
    first = snapshot_id(fresh_site, url)

    shown = keepstone("show", "PLAT-2", "--repo", url)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith("PLAT-2  ") and f"in snapshot {first[:8]}" in text
    assert "Description:\n    The customer portal" in text and "old ending." in text
    assert "Status:" in text and "PLAT-3" in text  # the link, as a reader names it
    assert '"accountId"' not in text and "avatarUrls" not in text  # no raw JSON
    document = json.loads(keepstone("show", "PLAT-2", "--repo", url, "--json").stdout)
    assert document["key"] == "PLAT-2" and "fields" in document

    issue = jira(fresh_site, "GET", "/issue/PLAT-2").json()
    for link in issue["fields"]["issuelinks"]:
        jira(fresh_site, "DELETE", f"/issueLink/{link['id']}")
    jira(fresh_site, "POST", "/issueLink", {"type": {"name": "Blocks"}, "inwardIssue": {"key": "PLAT-2"},
                                            "outwardIssue": {"key": "PLAT-4"}})  # fmt: skip
    labels = issue["fields"]["labels"]
    jira(fresh_site, "PUT", "/issue/PLAT-2", {"fields": {"labels": [*labels, "hotfix"],
                                                         "description": adf(LONG + "new ending.", "Second.")}})  # fmt: skip
    jira(fresh_site, "POST", "/issue/PLAT-2/comment", {"body": adf("Fixed in build 42.")})
    second = snapshot_id(fresh_site, url)

    done = keepstone("diff", "PLAT-2", first[:10], second[:10], "--repo", url)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "issuelinks:\n" in out and "  - blocks PLAT-3\n" in out and "  + blocks PLAT-4\n" in out
    assert "labels:\n  + hotfix\n" in out
    assert f"  - {LONG}old ending.\n" in out and f"  + {LONG}new ending.\n" in out  # whole lines
    assert "Second." not in out  # an unchanged paragraph is not repeated
    assert "comment " in out and ": added" in out
    as_json = json.loads(keepstone("diff", "PLAT-2", first[:10], second[:10], "--repo", url, "--json").stdout)
    assert as_json["fields"]["labels"]["changes"] == ["+ hotfix"]


def test_adf_text_and_list_changes():
    doc = {"type": "doc", "version": 1, "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Steps"}]},
        {"type": "orderedList", "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "open "}, {"type": "text", "text": "the page",
                 "marks": [{"type": "link", "attrs": {"href": "https://example.com/p"}}]}]}]},
            {"type": "listItem", "content": [{"type": "paragraph", "content": [
                {"type": "mention", "attrs": {"id": "1", "text": "@Ana"}}, {"type": "text", "text": " looks"}]}]}]},
        {"type": "codeBlock", "content": [{"type": "text", "text": "retry()"}]},
    ]}  # fmt: skip
    assert (
        adf_text(doc) == "## Steps\n\n1. open the page (https://example.com/p)\n2. @Ana looks\n\n    retry()"
    )
    assert changes(["a", "b"], ["b", "c"]) == ["- a", "+ c"]
    assert changes({"name": "High"}, {"name": "Low"}) == ["- High", "+ Low"]
    assert changes(None, "x") == ["+ x"]
