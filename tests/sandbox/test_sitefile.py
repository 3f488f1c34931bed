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
    path.write_text(json.dumps({"projects": [{"key": "XY", "name": "X", "issues": [{"type": "Task"}]}]}))
    with pytest.raises(ValueError, match=r"issues\[0\]"):
        create_app(SandboxConfig(site_file=str(path)))


def _minimal(**issue) -> dict:
    return {
        "users": [{"email": "ana@example.com"}],
        "projects": [
            {"key": "OPS", "name": "Operations", "issues": [{"summary": "first"}, {"summary": "s", **issue}]}
        ],
    }


BAD = [
    ({"users": [{"displayName": "No Mail"}], "projects": []}, r"users\[0\]: needs an 'email'"),
    ({"users": [{"email": "not-an-email"}], "projects": []}, r"users\[0\]: 'not-an-email' is not an email"),
    (
        {"users": [{"email": "a@x.io"}, {"email": "A@x.io"}], "projects": []},
        r"users\[1\]: A@x.io is listed twice",
    ),
    ({"projects": [{"key": "ops", "name": "x"}]}, r"projects\[0\]: project key 'ops' is not valid"),
    ({"projects": [{"key": "TOOLONGKEY1", "name": "x"}]}, r"projects\[0\]: project key 'TOOLONGKEY1'"),
    (
        {"projects": [{"key": "AB", "name": "x"}, {"key": "AB", "name": "y"}]},
        r"projects\[1\]: project key AB is used twice",
    ),
    ({"projects": [{"key": "AB"}]}, r"projects\[0\]: needs 'key' and 'name'"),
    ({"projects": "none"}, r"the top level must be an object with a 'projects' list"),
    (_minimal(summary="   "), r"projects\[0\]\.issues\[1\] \(OPS-2\): needs a 'summary' that is not blank"),
    (_minimal(summary="two\nlines"), r"issues\[1\] \(OPS-2\): the summary must be one line"),
    (_minimal(summary="x" * 256), r"issues\[1\] \(OPS-2\): the summary must be one line of at most 255"),
    (_minimal(status="Doing"), r"issues\[1\] \(OPS-2\): unknown status 'Doing' \(To Do, In Progress"),
    (_minimal(type="Feature"), r"issues\[1\] \(OPS-2\): unknown type 'Feature'"),
    (_minimal(labels=["two words"]), r"issues\[1\] \(OPS-2\): the label 'two words' contains spaces"),
    (_minimal(labels=[""]), r"issues\[1\] \(OPS-2\): labels must be strings that are not blank"),
    (_minimal(type="Sub-task"), r"issues\[1\] \(OPS-2\): a sub-task needs a 'parent'"),
    (_minimal(parent="OPS-9"), r"issues\[1\] \(OPS-2\): parent 'OPS-9' must be an earlier issue"),
    (_minimal(key="WEB-3"), r"issues\[1\]: key 'WEB-3' is not a key of project OPS"),
    (_minimal(key="OPS-1"), r"issues\[1\]: key OPS-1 must be numbered above OPS-1"),
    (_minimal(attachments=[{"text": "x"}]), r"issues\[1\] \(OPS-2\)\.attachments\[0\]: needs a 'filename'"),
    (_minimal(attachments=[{"filename": "a", "base64": "!!"}]), r"attachments\[0\]: 'base64' is not valid"),
    (
        _minimal(attachments=[{"filename": "a", "path": "missing.bin"}]),
        r"attachments\[0\]: cannot read 'path' 'missing.bin'",
    ),
    (
        _minimal(attachments=[{"filename": "a", "text": "x", "corrupt": "bad"}]),
        r"attachments\[0\]: 'corrupt' must be one of",
    ),
    (_minimal(comments=[{"author": "ana@example.com"}]), r"\(OPS-2\)\.comments\[0\]: needs a 'body'"),
    (
        _minimal(comments=[{"body": "x", "visibility": {"type": "role", "value": "Nobody"}}]),
        r"comments\[0\]: visibility role 'Nobody'",
    ),
    (
        _minimal(worklogs=[{"timeSpent": "soon"}]),
        r"\(OPS-2\)\.worklogs\[0\]: timeSpent 'soon' is not a duration",
    ),
    (_minimal(worklogs=[{}]), r"worklogs\[0\]: needs 'timeSpent'"),
    (
        _minimal(worklogs=[{"timeSpent": "1h", "started": "yesterday"}]),
        r"worklogs\[0\]: started 'yesterday' is not a date-time",
    ),
    (_minimal(fields={"Nope": 1}), r"\(OPS-2\): fields: no custom field is named 'Nope'"),
    (_minimal(fields={"Team": "Nope"}), r"\(OPS-2\)\.fields\.Team: option 'Nope' does not exist"),
    (_minimal(fields={"Story Points": "five"}), r"\(OPS-2\)\.fields\.Story Points: must be a number"),
    (
        _minimal(links=[{"type": "Blocks", "outward": "OPS-99"}]),
        r"\(OPS-2\)\.links\[0\]: outward 'OPS-99' is not an issue",
    ),
    (_minimal(links=[{"type": "Zaps", "outward": "OPS-1"}]), r"links\[0\]: unknown link type 'Zaps'"),
    (
        {"projects": [{"key": "AB", "name": "x", "components": [{"description": "no name"}]}]},
        r"projects\[0\] \(AB\): components\[0\] needs a 'name'",
    ),
    (
        {"projects": [{"key": "AB", "name": "x", "roles": {"Owners": []}}]},
        r"projects\[0\] \(AB\): roles: 'Owners' is not a project role",
    ),
    (_minimal(components=["Nope"]), r"\(OPS-2\): components: 'Nope' is not a component of project OPS"),
    (_minimal(sprint="Sprint 9"), r"\(OPS-2\): sprint 'Sprint 9' is not a sprint"),
    (_minimal(changelog=[{"items": [{"from": "x"}]}]), r"changelog\[0\]: items\[0\] needs a 'field'"),
    (_minimal(movedFrom="OPS-1"), r"\(OPS-2\)\.movedFrom: OPS-1 is the key of another issue"),
    (
        _minimal(
            description={
                "type": "doc",
                "version": 1,
                "content": [{"type": "media", "attrs": {"attachment": "x.png"}}],
            }
        ),
        r"\(OPS-2\): 'description' has a media node for attachment 'x.png'",
    ),
    (
        {"customFields": [{"name": "R", "type": "cascade"}], "projects": []},
        r"customFields\[0\]: unknown custom field type 'cascade'",
    ),
    (
        {"customFields": [{"name": "R", "type": "select"}], "projects": []},
        r"customFields\[0\]: a select field needs 'options'",
    ),
    (
        {"customFields": [{"name": "Team", "type": "textfield"}], "projects": []},
        r"customFields\[0\]: a custom field named 'Team' exists",
    ),
    (
        {"linkTypes": [{"name": "Blocks", "inward": "a", "outward": "b"}], "projects": []},
        r"linkTypes\[0\]: link type 'Blocks' exists",
    ),
    (
        {
            "projects": [
                {"key": "AB", "name": "x", "boards": [{"type": "kanban", "sprints": [{"name": "S"}]}]}
            ]
        },
        r"projects\[0\] \(AB\)\.boards\[0\]: only a scrum board has sprints",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_site_files_name_the_place(tmp_path, data, message):
    from sandbox.sitefile import SiteFileError, load_site_file

    path = tmp_path / "site.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SiteFileError, match=message) as refused:
        load_site_file(SandboxConfig(), str(path))
    text = str(refused.value)
    assert text.startswith(f"{path}: ") and "\n" not in text and "Traceback" not in text


def test_sub_task_is_accepted_under_both_names(tmp_path):
    from sandbox.sitefile import load_site_file

    data = _minimal(type="Story")
    data["projects"][0]["issues"] += [
        {"summary": "a", "type": "Sub-task", "parent": "OPS-2"},
        {"summary": "b", "type": "Subtask", "parent": "OPS-2"},
    ]
    path = tmp_path / "site.json"
    path.write_text(json.dumps(data))
    site = load_site_file(SandboxConfig(), str(path))
    assert [i.type_id for i in site.issues.values()][2:] == ["10004", "10004"]


def test_a_moved_issue_reserves_its_number_in_the_old_project(tmp_path):
    from sandbox.sitefile import load_site_file

    data = {
        "projects": [
            {"key": "WEB", "name": "Web", "issues": [{"summary": "w"}]},
            {"key": "OPS", "name": "Ops", "issues": [{"summary": "moved", "movedFrom": "WEB-7"}]},
        ]
    }
    path = tmp_path / "site.json"
    path.write_text(json.dumps(data))
    site = load_site_file(SandboxConfig(), str(path))
    assert {p.key: p.next_num for p in site.projects.values()} == {"WEB": 8, "OPS": 2}
    assert site.issue("WEB-7").key == "OPS-1"


def test_unreadable_site_files_are_one_line(tmp_path):
    from sandbox.sitefile import SiteFileError, load_site_file

    path = tmp_path / "site.json"
    path.write_text("{not json")
    with pytest.raises(SiteFileError, match=r"cannot read site file .*site\.json"):
        load_site_file(SandboxConfig(), str(path))
    with pytest.raises(SiteFileError, match=r"cannot read site file"):
        load_site_file(SandboxConfig(), str(tmp_path / "missing.json"))
