"""The writes a restore needs, each followed by the reads that must show it."""

from __future__ import annotations

import pytest

from tests.sandbox.validate import check_issue_fields


@pytest.fixture
def project(fresh) -> dict:
    """A project created through the API on the test's own site."""
    me = fresh.get("/rest/api/3/myself")
    created = fresh.post(
        "/rest/api/3/project",
        {"key": "RST", "name": "Restored", "projectTypeKey": "software", "leadAccountId": me["accountId"]},
        expect=201,
    )
    return fresh.get(f"/rest/api/3/project/{created['key']}")


def _create(fresh, project, **fields) -> dict:
    body = {
        "fields": {
            "project": {"key": project["key"]},
            "issuetype": {"name": "Task"},
            "summary": "s",
            **fields,
        }
    }
    return fresh.post("/rest/api/3/issue", body, expect=201)


def _adf(text: str) -> dict:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def test_created_project_has_components_and_versions(fresh, project):
    fresh.post("/rest/api/3/component", {"project": project["key"], "name": "API"}, expect=201)
    fresh.post(
        "/rest/api/3/version", {"projectId": int(project["id"]), "name": "1.0", "released": True}, expect=201
    )
    assert [c["name"] for c in fresh.get(f"/rest/api/3/project/{project['key']}/components")] == ["API"]
    assert [v["name"] for v in fresh.get(f"/rest/api/3/project/{project['key']}/versions")] == ["1.0"]


def test_duplicate_project_key_is_refused(fresh, project):
    resp = fresh.call(
        "POST",
        "/rest/api/3/project",
        json={"key": project["key"], "name": "Again", "projectTypeKey": "software"},
        expect=400,
    )
    assert resp.json()["errors"]


def test_issue_with_custom_fields_then_subtask(fresh, project):
    fields = {f["name"]: f for f in fresh.get("/rest/api/3/field") if f["custom"]}
    number = next(f for f in fields.values() if f["schema"]["type"] == "number")["id"]
    created = _create(fresh, project, description=_adf("restored text"), labels=["a", "b"], **{number: 5.0})
    issue = fresh.get(f"/rest/api/3/issue/{created['key']}")
    check_issue_fields(issue)
    assert issue["fields"]["labels"] == ["a", "b"]
    assert issue["fields"][number] == 5.0
    assert issue["fields"]["description"] == _adf("restored text")
    subtask_type = next(t for t in fresh.get("/rest/api/3/issuetype") if t["subtask"])
    sub = _create(fresh, project, issuetype={"id": subtask_type["id"]}, parent={"key": created["key"]})
    child = fresh.get(f"/rest/api/3/issue/{sub['key']}")
    check_issue_fields(child)
    assert child["fields"]["parent"]["key"] == created["key"]
    parent = fresh.get(f"/rest/api/3/issue/{created['key']}")
    assert [s["key"] for s in parent["fields"]["subtasks"]] == [sub["key"]]


def test_invalid_issue_create_names_the_field(fresh, project):
    resp = fresh.call(
        "POST",
        "/rest/api/3/issue",
        json={"fields": {"project": {"key": project["key"]}, "issuetype": {"name": "Task"}}},
        expect=400,
    )
    assert "summary" in resp.json()["errors"]


def test_edit_transition_and_delete_issue(fresh, project):
    created = _create(fresh, project)
    fresh.put(f"/rest/api/3/issue/{created['key']}", {"fields": {"summary": "edited"}}, expect=204)
    done = next(
        t
        for t in fresh.get(f"/rest/api/3/issue/{created['key']}/transitions")["transitions"]
        if t["to"]["name"] == "Done"
    )
    fresh.post(
        f"/rest/api/3/issue/{created['key']}/transitions", {"transition": {"id": done["id"]}}, expect=204
    )
    issue = fresh.get(f"/rest/api/3/issue/{created['key']}", params={"expand": "changelog"})
    assert issue["fields"]["summary"] == "edited"
    assert issue["fields"]["status"]["name"] == "Done"
    assert issue["changelog"]["histories"]
    fresh.delete(f"/rest/api/3/issue/{created['key']}")
    fresh.get(f"/rest/api/3/issue/{created['key']}", expect=404)


def test_comments_and_worklogs_written_then_read(fresh, project):
    key = _create(fresh, project)["key"]
    comment = fresh.post(f"/rest/api/3/issue/{key}/comment", {"body": _adf("hello")}, expect=201)
    fresh.post(
        f"/rest/api/3/issue/{key}/worklog",
        {"timeSpentSeconds": 3600, "comment": _adf("work"), "started": "2024-02-01T10:00:00.000+0000"},
        expect=201,
    )
    comments = fresh.get(f"/rest/api/3/issue/{key}/comment")["comments"]
    assert [c["id"] for c in comments] == [comment["id"]]
    assert comments[0]["body"] == _adf("hello")
    worklogs = fresh.get(f"/rest/api/3/issue/{key}/worklog")["worklogs"]
    assert worklogs[0]["timeSpentSeconds"] == 3600


def test_attachment_upload_needs_the_xsrf_header(fresh, project):
    key = _create(fresh, project)["key"]
    files = {"file": ("notes.txt", b"restored bytes", "text/plain")}
    fresh.call("POST", f"/rest/api/3/issue/{key}/attachments", files=files, expect=403, validate=False)
    added = fresh.call(
        "POST", f"/rest/api/3/issue/{key}/attachments", files=files, headers={"X-Atlassian-Token": "no-check"}
    ).json()
    assert added[0]["filename"] == "notes.txt" and added[0]["size"] == len(b"restored bytes")
    content = fresh.call("GET", f"/rest/api/3/attachment/content/{added[0]['id']}", validate=False)
    assert content.content == b"restored bytes"


def test_links_remote_links_and_watchers(fresh, project):
    a, b = _create(fresh, project)["key"], _create(fresh, project)["key"]
    fresh.post(
        "/rest/api/3/issueLink",
        {"type": {"name": "Blocks"}, "inwardIssue": {"key": a}, "outwardIssue": {"key": b}},
        expect=201,
    )
    links = fresh.get(f"/rest/api/3/issue/{a}")["fields"]["issuelinks"]
    assert links and links[0]["type"]["name"] == "Blocks"
    fresh.post(
        f"/rest/api/3/issue/{a}/remotelink",
        {"object": {"url": "https://example.com/x", "title": "X"}},
        expect=201,
    )
    assert fresh.get(f"/rest/api/3/issue/{a}/remotelink")[0]["object"]["title"] == "X"
    viewer = next(
        u for u in fresh.get("/rest/api/3/users/search") if u.get("emailAddress") == "viewer@example.com"
    )
    fresh.call("POST", f"/rest/api/3/issue/{a}/watchers", json=viewer["accountId"], expect=204)
    watchers = fresh.get(f"/rest/api/3/issue/{a}/watchers")
    assert viewer["accountId"] in {w["accountId"] for w in watchers["watchers"]}


def test_issue_property_written_then_read(fresh, project):
    key = _create(fresh, project)["key"]
    fresh.put(f"/rest/api/3/issue/{key}/properties/restore.marker", {"ok": True}, expect=201)
    assert fresh.get(f"/rest/api/3/issue/{key}/properties/restore.marker")["value"] == {"ok": True}


def test_deleting_a_project_removes_its_issues(fresh):
    key = fresh.get("/rest/api/3/project/search")["values"][0]["key"]
    issue_key = fresh.search_all(f"project = {key}", fields="key")[0]["key"]
    fresh.delete(f"/rest/api/3/project/{key}")
    fresh.get(f"/rest/api/3/project/{key}", expect=404)
    fresh.get(f"/rest/api/3/issue/{issue_key}", expect=404)


def test_deletes_undo_what_writes_did(fresh, project):
    a, b = _create(fresh, project)["key"], _create(fresh, project)["key"]
    fresh.post(
        "/rest/api/3/issueLink",
        {"type": {"name": "Relates"}, "inwardIssue": {"key": a}, "outwardIssue": {"key": b}},
        expect=201,
    )
    link = fresh.get(f"/rest/api/3/issue/{a}")["fields"]["issuelinks"][0]
    fresh.delete(f"/rest/api/3/issueLink/{link['id']}")
    assert fresh.get(f"/rest/api/3/issue/{a}")["fields"]["issuelinks"] == []
    fresh.put(f"/rest/api/3/issue/{a}/properties/tmp", {"x": 1}, expect=201)
    fresh.delete(f"/rest/api/3/issue/{a}/properties/tmp")
    fresh.get(f"/rest/api/3/issue/{a}/properties/tmp", expect=404)
    me = fresh.get("/rest/api/3/myself")["accountId"]
    fresh.call("POST", f"/rest/api/3/issue/{a}/watchers", json=me, expect=204)
    fresh.delete(f"/rest/api/3/issue/{a}/watchers", params={"accountId": me})
    assert me not in {w["accountId"] for w in fresh.get(f"/rest/api/3/issue/{a}/watchers")["watchers"]}
    added = fresh.call(
        "POST",
        f"/rest/api/3/issue/{a}/attachments",
        files={"file": ("x.bin", b"\x00\x01", "application/octet-stream")},
        headers={"X-Atlassian-Token": "no-check"},
    ).json()[0]
    fresh.delete(f"/rest/api/3/attachment/{added['id']}")
    fresh.get(f"/rest/api/3/attachment/{added['id']}", expect=404)


def test_vote_is_counted(fresh, project):
    key = _create(fresh, project)["key"]
    before = fresh.get(f"/rest/api/3/issue/{key}/votes")["votes"]
    fresh.call("POST", f"/rest/api/3/issue/{key}/votes", expect=204)
    votes = fresh.get(f"/rest/api/3/issue/{key}/votes")
    assert votes["votes"] == before + 1 and votes["hasVoted"] is True


def test_group_membership_and_a_missing_group_refuses_a_restricted_comment(fresh, project):
    key = _create(fresh, project)["key"]
    me = fresh.get("/rest/api/3/myself")["accountId"]
    added = fresh.call(
        "POST", "/rest/api/3/group/user", params={"groupname": "qa-leads"}, json={"accountId": me}, expect=201
    )
    assert added.json()["name"] == "qa-leads"
    assert "qa-leads" in [g["name"] for g in fresh.get("/rest/api/3/group/bulk")["values"]]
    restricted = {"body": _adf("only qa"), "visibility": {"type": "group", "value": "qa-leads"}}
    fresh.post(f"/rest/api/3/issue/{key}/comment", restricted, expect=201)
    fresh.call("DELETE", "/rest/api/3/group/user", params={"groupname": "qa-leads", "accountId": me})
    assert "qa-leads" not in [g["name"] for g in fresh.get("/rest/api/3/group/bulk")["values"]]
    refused = fresh.call("POST", f"/rest/api/3/issue/{key}/comment", json=restricted, expect=400)
    assert "qa-leads" in refused.json()["errors"]["visibility"]
    fresh.call(
        "DELETE", "/rest/api/3/group/user", params={"groupname": "qa-leads", "accountId": me}, expect=404
    )


def test_properties_inside_the_create_body_are_stored_and_limited(fresh, project):
    body = {
        "fields": {"project": {"key": project["key"]}, "issuetype": {"name": "Task"}, "summary": "p"},
        "properties": [{"key": "keepstone.restore", "value": {"originalKey": "OLD-1"}}],
    }
    key = fresh.post("/rest/api/3/issue", body, expect=201)["key"]
    assert fresh.get(f"/rest/api/3/issue/{key}/properties/keepstone.restore")["value"] == {
        "originalKey": "OLD-1"
    }
    body["properties"] = [{"key": "big", "value": "x" * 40_000}]
    fresh.call("POST", "/rest/api/3/issue", json=body, expect=400)
    fresh.call("PUT", f"/rest/api/3/issue/{key}/properties/big", json="x" * 40_000, expect=400)


def test_attachment_content_redirects_to_the_media_file_id(fresh, project):
    key = _create(fresh, project)["key"]
    added = fresh.call(
        "POST",
        f"/rest/api/3/issue/{key}/attachments",
        files=[("file", ("a.txt", b"aaa", "text/plain")), ("file", ("a.txt", b"bbb", "text/plain"))],
        headers={"X-Atlassian-Token": "no-check"},
    ).json()
    assert [a["size"] for a in added] == [3, 3]
    r = fresh.call(
        "GET", f"/rest/api/3/attachment/content/{added[1]['id']}", expect=303, allow_redirects=False
    )
    location = r.headers["Location"]
    assert "/_media/file/" in location and location.split("/_media/file/")[1].split("/")[0] != added[1]["id"]
    assert fresh.call("GET", f"/rest/api/3/attachment/content/{added[1]['id']}").content == b"bbb"


def test_bulk_create_makes_up_to_50_and_names_each_refused_one(fresh, project):
    def update(summary: str, **extra) -> dict:
        fields = {"project": {"key": project["key"]}, "issuetype": {"name": "Task"}, "summary": summary}
        return {"fields": {**fields, **extra}, "properties": [{"key": "k", "value": {"s": summary}}]}

    body = {"issueUpdates": [update("one"), update("   "), update("three", priority={"name": "Nope"})]}
    body["issueUpdates"].append(update("four"))
    answer = fresh.post("/rest/api/3/issue/bulk", body, expect=201)
    assert [i["key"] for i in answer["issues"]] == [f"{project['key']}-1", f"{project['key']}-2"]
    assert [
        (e["failedElementNumber"], e["status"], sorted(e["elementErrors"]["errors"]))
        for e in answer["errors"]
    ] == [
        (1, 400, ["summary"]),
        (2, 400, ["priority"]),
    ]
    second = answer["issues"][1]["key"]
    assert fresh.get(f"/rest/api/3/issue/{second}")["fields"]["summary"] == "four"
    assert fresh.get(f"/rest/api/3/issue/{second}/properties/k")["value"] == {"s": "four"}
    refused = fresh.call("POST", "/rest/api/3/issue/bulk", json={"issueUpdates": [update(" ")]}, expect=400)
    assert refused.json()["issues"] == [] and refused.json()["errors"][0]["failedElementNumber"] == 0
    too_many = fresh.call(
        "POST",
        "/rest/api/3/issue/bulk",
        json={"issueUpdates": [update(str(i)) for i in range(51)]},
        expect=400,
    )
    assert too_many.json()["issues"] == []
    assert "50" in too_many.json()["errors"][0]["elementErrors"]["errorMessages"][0]
