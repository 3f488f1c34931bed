"""A site loaded from a JSON site file (docs/sandbox.md) serves exactly what the file describes."""

from __future__ import annotations

import json

import pytest

from sandbox.config import SandboxConfig

SITE = {
    "users": [{"email": "ana@example.com", "displayName": "Ana Lima"}],
    "projects": [
        {
            "key": "OPS",
            "name": "Operations",
            "components": ["Network"],
            "versions": ["2024.1"],
            "issues": [
                {"summary": "Replace the core switch", "type": "Epic", "labels": ["hardware"]},
                {
                    "summary": "Order parts",
                    "type": "Task",
                    "status": "Done",
                    "assignee": "ana@example.com",
                    "description": "Two spares.",
                    "comments": [{"author": "ana@example.com", "body": "Ordered."}],
                    "attachments": [{"filename": "quote.txt", "text": "3 x 1200 EUR"}],
                },
            ],
        }
    ],
}


@pytest.fixture
def loaded(tmp_path, make_site):
    path = tmp_path / "site.json"
    path.write_text(json.dumps(SITE))
    return make_site(site_file=str(path))


def test_site_file_projects_and_issues_are_served(loaded):
    assert [p["key"] for p in loaded.get("/rest/api/3/project/search")["values"]] == ["OPS"]
    issues = loaded.search_all("project = OPS ORDER BY key ASC", fields="summary,status,assignee,labels")
    assert [i["fields"]["summary"] for i in issues] == ["Replace the core switch", "Order parts"]
    assert issues[0]["fields"]["labels"] == ["hardware"]
    assert issues[1]["fields"]["status"]["name"] == "Done"
    assert issues[1]["fields"]["assignee"]["displayName"] == "Ana Lima"


def test_site_file_comments_and_attachments_are_served(loaded):
    key = loaded.search_all("project = OPS ORDER BY key DESC", fields="key")[0]["key"]
    comments = loaded.get(f"/rest/api/3/issue/{key}/comment")["comments"]
    assert comments[0]["body"]["content"][0]["content"][0]["text"] == "Ordered."
    attachment = loaded.get(f"/rest/api/3/issue/{key}")["fields"]["attachment"][0]
    data = loaded.call("GET", f"/rest/api/3/attachment/content/{attachment['id']}", validate=False).content
    assert data == b"3 x 1200 EUR"


def test_malformed_site_file_is_refused_with_the_place(tmp_path):
    from sandbox.app import create_app

    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"projects": [{"key": "X", "name": "X", "issues": [{"type": "Task"}]}]}))
    with pytest.raises(ValueError, match=r"issues\[0\]"):
        create_app(SandboxConfig(site_file=str(path)))
