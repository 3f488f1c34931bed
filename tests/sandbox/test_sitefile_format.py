"""The site-file format's example in docs/sandbox.md, loaded and served: every part a backup and a restore meet.

The example is read from the docs page itself, so the page cannot drift from what the loader takes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, start_sandbox
from tests.sandbox.conftest import VIEWER, Jira
from tests.sandbox.validate import check_issue_fields

DIAGRAM = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def docs_example() -> str:
    page = (ROOT / "docs" / "sandbox.md").read_text()
    section = page[page.index("## The site-file format") :]
    return re.search(r"```json\n(.*?)```", section, re.S).group(1)


def write_example(folder: Path) -> Path:
    (folder / "files").mkdir(parents=True, exist_ok=True)
    (folder / "files" / "diagram.png").write_bytes(DIAGRAM)
    path = folder / "site.json"
    path.write_text(docs_example())
    return path


@pytest.fixture(scope="module")
def ex(tmp_path_factory):
    path = write_example(tmp_path_factory.mktemp("example"))
    with start_sandbox(site_file=str(path)) as site:
        yield Jira(site.url)


def _users(ex) -> dict[str, dict]:
    return {u["email"]: u for u in ex.admin("GET", "site")["users"]}


def _fields(ex) -> dict[str, str]:
    return {f["name"]: f["id"] for f in ex.get("/rest/api/3/field")}


def test_archived_project_is_listed_as_archived_and_its_issues_stay_out_of_search(ex):
    assert [p["key"] for p in ex.get("/rest/api/3/project/search")["values"]] == ["OPS"]
    archived = ex.get("/rest/api/3/project/search", params={"status": "archived"})["values"]
    assert [(p["key"], p["archived"]) for p in archived] == [("WEB", True)]
    assert ex.get("/rest/api/3/project/WEB")["archived"] is True
    assert ex.get("/rest/api/3/issue/WEB-1")["fields"]["summary"] == "Old landing page"
    assert ex.search_all("project in (OPS, WEB)", fields="key") == ex.search_all(
        "project = OPS", fields="key"
    )


def test_deactivated_and_deleted_users(ex):
    users = _users(ex)
    assert "cleo@example.com" not in users
    ben = ex.get("/rest/api/3/user", params={"accountId": users["ben@example.com"]["accountId"]})
    assert ben["active"] is False
    ada = ex.get("/rest/api/3/user", params={"accountId": "5b10a0000000000000000001"})
    assert ada["timeZone"] == "Asia/Kolkata" and ada["displayName"] == "Ada Okafor"
    first = ex.get("/rest/api/3/issue/OPS-2/comment")["comments"][0]
    assert first["author"]["displayName"] == "Former user" and first["author"]["active"] is False
    ex.get("/rest/api/3/user", params={"accountId": first["author"]["accountId"]}, expect=404)
    assert ex.get("/rest/api/3/issue/OPS-2")["fields"]["reporter"]["active"] is False


def test_comment_and_worklog_visibility_and_worklog_offsets(ex):
    comments = ex.get("/rest/api/3/issue/OPS-2/comment")["comments"]
    assert "visibility" not in comments[0]
    assert comments[1]["visibility"] == {"type": "role", "value": "Developers"}
    worklogs = ex.get("/rest/api/3/issue/OPS-2/worklog")["worklogs"]
    assert [(w["timeSpentSeconds"], w["timeSpent"]) for w in worklogs] == [(5400, "1h 30m"), (3600, "1h")]
    assert [w["started"] for w in worklogs] == [
        "2024-03-05T09:00:00.000+0530",
        "2024-03-06T09:00:00.000-0800",
    ]
    assert worklogs[1]["visibility"] == {"type": "group", "value": "jira-administrators"}
    assert worklogs[0]["comment"]["content"][0]["content"][0]["text"] == "Planning"
    assert ex.get("/rest/api/2/issue/OPS-2/worklog")["worklogs"][0]["comment"] == "Planning"


def test_links_of_any_type_also_across_projects(ex):
    links = ex.get("/rest/api/3/issue/OPS-2")["fields"]["issuelinks"]
    seen = {
        (link["type"]["name"], (link.get("outwardIssue") or link.get("inwardIssue"))["key"]) for link in links
    }
    assert seen == {("Blocks", "OPS-5"), ("Causes", "WEB-1")}
    assert all("outwardIssue" in link for link in links)
    back = ex.get("/rest/api/3/issue/WEB-1")["fields"]["issuelinks"]
    assert [(b["type"]["inward"], b["inwardIssue"]["key"]) for b in back] == [("is caused by", "OPS-2")]
    types = [t["name"] for t in ex.get("/rest/api/3/issueLinkType")["issueLinkTypes"]]
    assert types == ["Blocks", "Cloners", "Duplicate", "Relates", "Causes"]


def test_custom_fields_of_every_type(ex):
    ids = _fields(ex)
    schema = {f["name"]: f["schema"] for f in ex.get("/rest/api/3/field") if f["custom"]}
    assert schema["Region"]["type"] == "option-with-child" and schema["Incident start"]["type"] == "datetime"
    assert schema["Shipped in"] == {
        "type": "array",
        "custom": "com.atlassian.jira.plugin.system.customfieldtypes:multiversion",
        "customId": int(ids["Shipped in"].split("_")[1]),
        "items": "version",
    }
    f = ex.get("/rest/api/3/issue/OPS-2")["fields"]

    def value(name: str):
        return f[ids[name]]

    assert value("Story Points") == 5.0 and value("Team")["value"] == "Atlas"
    region = value("Region")
    assert (region["value"], region["child"]["value"]) == ("EU", "Berlin")
    assert value("Incident start") == "2024-03-05T08:30:00.000+0100"
    assert value("Tier")["value"] == "Bronze"
    assert [o["value"] for o in value("Channels")] == ["Email", "Chat"]
    assert value("Approvers")["name"] == "ops-team"
    assert sorted(g["name"] for g in value("Watch groups")) == ["jira-software-users", "ops-team"]
    assert value("Found in")["name"] == "1.0" and [v["name"] for v in value("Shipped in")] == ["1.0", "2.0"]
    assert value("Related project")["key"] == "WEB"
    assert value("Reviewer")["accountId"] == "5b10a0000000000000000001"
    assert value("Customer Notes")["content"][0]["content"][1]["marks"] == [{"type": "strong"}]
    assert value("Tags") == ["db"] and value("Target Date") == "2024-04-01"
    assert value("External URL") == "https://status.example.com/1" and value("Build Number") == "build-42"
    assert len(value("Code Owners")) == 2 and value("Affected Platforms")[0]["value"] == "Web"
    assert value("Severity")["value"] == "S2 - Major"
    assert [s["name"] for s in value("Sprint")] == ["OPS Sprint 2"]
    check_issue_fields(ex.get("/rest/api/3/issue/OPS-2"))


def test_an_option_deleted_after_use_stays_on_the_issue_but_cannot_be_written(ex):
    tier = _fields(ex)["Tier"]
    options = ex.get(f"/rest/api/3/field/{tier}/context/1/option")["values"]
    assert [o["value"] for o in options] == ["Gold", "Silver"]
    region = _fields(ex)["Region"]
    children = [o["value"] for o in ex.get(f"/rest/api/3/field/{region}/context/1/option")["values"]]
    assert children == ["EU", "Berlin", "Paris", "US", "Austin"]
    resp = ex.call("PUT", "/rest/api/3/issue/OPS-5", json={"fields": {tier: {"value": "Bronze"}}}, expect=400)
    assert tier in resp.json()["errors"]
    ex.put("/rest/api/3/issue/OPS-6", {"fields": {tier: {"value": "Gold"}}}, expect=204)
    ex.put(
        "/rest/api/3/issue/OPS-6",
        {"fields": {region: {"value": "US", "child": {"value": "Austin"}}}},
        expect=204,
    )
    got = ex.get("/rest/api/3/issue/OPS-6")["fields"]
    assert got[tier]["value"] == "Gold" and got[region]["child"]["value"] == "Austin"


def test_components_and_versions_on_issues(ex):
    f = ex.get("/rest/api/3/issue/OPS-2")["fields"]
    assert [c["name"] for c in f["components"]] == ["API"]
    assert [v["name"] for v in f["fixVersions"]] == ["2.0"] and [v["name"] for v in f["versions"]] == ["1.0"]
    assert {c["name"]: c["description"] for c in ex.get("/rest/api/3/project/OPS/components")} == {
        "API": "",
        "UI": "The web app",
    }
    versions = ex.get("/rest/api/3/project/OPS/versions")
    assert [(v["name"], v["released"], v.get("releaseDate")) for v in versions] == [
        ("1.0", True, "2024-03-01"),
        ("2.0", False, None),
    ]
    assert [i["key"] for i in ex.search_all("fixVersion = 2.0 AND component = API", fields="key")] == [
        "OPS-2"
    ]


def test_binary_and_corrupted_attachments(ex):
    marks = {m["filename"]: m for m in ex.admin("GET", "attachments?sha=1")}
    by_name = {a["filename"]: a for a in ex.get("/rest/api/3/issue/OPS-2")["fields"]["attachment"]}
    assert set(by_name) == {"diagram.png", "notes.txt", "dump.bin", "broken.log"}
    diagram = ex.call("GET", f"/rest/api/3/attachment/content/{by_name['diagram.png']['id']}", validate=False)
    assert diagram.content == DIAGRAM and diagram.headers["Content-Type"] == "image/png"
    assert marks["diagram.png"]["sha256"] == hashlib.sha256(DIAGRAM).hexdigest()
    dump = ex.call("GET", f"/rest/api/3/attachment/content/{by_name['dump.bin']['id']}", validate=False)
    assert dump.content == bytes(range(8)) and by_name["dump.bin"]["mimeType"] == "application/octet-stream"
    assert by_name["notes.txt"]["mimeType"] == "text/plain"
    assert marks["broken.log"]["corrupt"] == "truncated"
    url = f"{ex.url}/rest/api/3/attachment/content/{by_name['broken.log']['id']}?redirect=false"
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        ex.http.get(url, timeout=10).content  # noqa: B018 - the body is shorter than its Content-Length


def test_media_nodes_are_tied_to_their_attachment(ex):
    issue = ex.get("/rest/api/3/issue/OPS-2", params={"expand": "renderedFields"})
    single = issue["fields"]["description"]["content"][1]
    assert single["type"] == "mediaSingle"
    media = single["content"][0]
    diagram = next(a for a in issue["fields"]["attachment"] if a["filename"] == "diagram.png")
    mark = next(m for m in ex.admin("GET", "attachments") if m["id"] == diagram["id"])
    assert media["attrs"] == {"type": "file", "id": mark["mediaId"], "collection": "", "alt": "diagram.png"}
    assert f'src="{diagram["content"]}"' in issue["renderedFields"]["description"]
    assert ex.get("/rest/api/2/issue/OPS-2")["fields"]["description"] == (
        "The plan, as drawn:\n\n!diagram.png|thumbnail!"
    )


def test_changelog_entries_with_a_field_renamed_in_between(ex):
    histories = ex.get("/rest/api/3/issue/OPS-2/changelog")["values"]
    assert [h["created"] for h in histories] == [
        "2024-03-05T11:00:00.000+0000",
        "2024-03-06T11:00:00.000+0000",
    ]
    renamed = histories[1]["items"][0]
    assert (renamed["field"], renamed["fieldId"], renamed["fieldtype"]) == (
        "Squad",
        "customfield_10011",
        "custom",
    )
    assert _fields(ex)["Team"] == "customfield_10011"
    assert histories[1]["author"]["emailAddress"] == "ben@example.com"
    bulk = ex.post(
        "/rest/api/3/changelog/bulkfetch", {"issueIdsOrKeys": ["OPS-2"], "fieldIds": ["customfield_10011"]}
    )
    assert [len(c["changeHistories"]) for c in bulk["issueChangeLogs"]] == [1]


def test_an_issue_moved_between_projects_answers_to_its_old_key(ex):
    moved = ex.get("/rest/api/3/issue/WEB-7")
    assert moved["key"] == "OPS-5" and moved["fields"]["project"]["key"] == "OPS"
    assert moved["fields"]["resolution"]["name"] == "Done"
    assert [i["key"] for i in ex.search_all("key = WEB-7", fields="key")] == ["OPS-5"]
    first = ex.get("/rest/api/3/issue/OPS-5/changelog")["values"][0]["items"]
    assert [(i["field"], i["fromString"], i["toString"]) for i in first] == [
        ("Key", "WEB-7", "OPS-5"),
        ("project", "Website", "Operations"),
    ]
    ex.get("/rest/api/3/issue/OPS-3", expect=404)  # OPS-5 was given its key: OPS-3 and OPS-4 never existed


def test_boards_and_sprints_for_site_file_projects(ex):
    [board] = ex.get("/rest/agile/1.0/board")["values"]
    assert (board["name"], board["type"], board["location"]["projectKey"]) == ("OPS board", "scrum", "OPS")
    sprints = ex.get(f"/rest/agile/1.0/board/{board['id']}/sprint")["values"]
    assert [(s["name"], s["state"]) for s in sprints] == [
        ("OPS Sprint 1", "closed"),
        ("OPS Sprint 2", "active"),
    ]
    assert (
        sprints[0]["startDate"] == "2024-03-04T08:00:00.000+0000"
        and sprints[1]["goal"] == "Move the database"
    )
    issues = ex.get(f"/rest/agile/1.0/sprint/{sprints[1]['id']}/issue")["issues"]
    assert [i["key"] for i in issues] == ["OPS-2"]


def test_keys_types_and_times(ex):
    site = ex.admin("GET", "site")
    assert {p["key"]: p["issues"] for p in site["projects"]} == {
        "WEB": ["WEB-1"],
        "OPS": ["OPS-1", "OPS-2", "OPS-5", "OPS-6"],
    }
    sub = ex.get("/rest/api/3/issue/OPS-6")["fields"]
    assert sub["issuetype"]["subtask"] is True and sub["parent"]["key"] == "OPS-2"
    story = ex.get("/rest/api/3/issue/OPS-2")["fields"]
    assert (story["created"], story["updated"]) == (
        "2024-03-04T09:00:00.000+0000",
        "2024-03-20T15:30:00.000+0000",
    )
    assert story["priority"]["name"] == "High" and story["status"]["name"] == "In Progress"
    body = {"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "new"}}
    assert ex.post("/rest/api/3/issue", body, expect=201)["key"] == "OPS-7"
    body["fields"]["project"]["key"] = "WEB"
    refused = ex.call("POST", "/rest/api/3/issue", json=body, expect=400)
    assert "archived" in refused.json()["errors"]["project"]


def test_restricted_comments_and_worklogs_are_seen_only_by_members(ex):
    viewer = Jira(ex.url, VIEWER)
    comments = viewer.get("/rest/api/3/issue/OPS-2/comment")
    assert comments["total"] == 1 and "visibility" not in comments["comments"][0]
    assert viewer.get("/rest/api/3/issue/OPS-2/worklog")["total"] == 1
    fields = viewer.get("/rest/api/3/issue/OPS-2", params={"fields": "comment,worklog"})["fields"]
    assert fields["comment"]["total"] == 1 and fields["worklog"]["total"] == 1
    hidden = ex.get("/rest/api/3/issue/OPS-2/comment")["comments"][1]["id"]
    viewer.get(f"/rest/api/3/issue/OPS-2/comment/{hidden}", expect=404)
    assert viewer.post("/rest/api/3/comment/list", {"ids": [int(hidden)]})["values"] == []
    assert ex.get("/rest/api/3/issue/OPS-2/comment")["total"] == 2  # the admin is in every role
    developers = ex.get("/rest/api/3/project/OPS/role/10003")
    assert [a["actorUser"]["accountId"] for a in developers["actors"]] == ["5b10a0000000000000000001"]
