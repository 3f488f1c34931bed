"""Writes a configuration restore needs, as Jira answers them (every answer validated against the specs):
filters with share permissions, boards on a filter, dashboards with gadgets, project role actors, and a
user leaving the site."""

from __future__ import annotations

import json

import pytest

from sandbox.app import create_app
from sandbox.config import SandboxConfig


def _project(jira, key: str = "PLAT") -> dict:
    return jira.get(f"/rest/api/3/project/{key}")


def test_every_board_has_a_filter_of_its_own_shared_with_its_project(fresh):
    for board in fresh.get("/rest/agile/1.0/board")["values"]:
        key = board["location"]["projectKey"]
        config = fresh.get(f"/rest/agile/1.0/board/{board['id']}/configuration")
        found = fresh.get(f"/rest/api/3/filter/{config['filter']['id']}")
        assert found["jql"] == f"project = {key} ORDER BY Rank ASC"
        assert found["name"] == f"Filter for {board['name']}"
        assert [s["type"] for s in found["sharePermissions"]] == ["project"]
        assert found["sharePermissions"][0]["project"]["key"] == key


def test_a_new_software_project_comes_with_a_board_and_its_filter(fresh):
    me = fresh.get("/rest/api/3/myself")["accountId"]
    fresh.post(
        "/rest/api/3/project",
        {"key": "NEWB", "name": "New board", "projectTypeKey": "software", "leadAccountId": me},
        expect=201,
    )
    (board,) = fresh.get("/rest/agile/1.0/board", params={"projectKeyOrId": "NEWB"})["values"]
    config = fresh.get(f"/rest/agile/1.0/board/{board['id']}/configuration")
    assert (
        fresh.get(f"/rest/api/3/filter/{config['filter']['id']}")["jql"] == "project = NEWB ORDER BY Rank ASC"
    )


def test_a_filter_is_created_shared_and_changed(fresh):
    project = _project(fresh)
    created = fresh.post(
        "/rest/api/3/filter",
        {
            "name": "PLAT bugs",
            "jql": "project = PLAT AND issuetype = Bug",
            "description": "the bugs",
            "sharePermissions": [{"type": "project", "project": {"id": project["id"]}}],
        },
    )
    assert created["owner"]["accountId"] == fresh.get("/rest/api/3/myself")["accountId"]
    assert created["sharePermissions"][0]["project"]["id"] == project["id"]
    shares = fresh.post(
        f"/rest/api/3/filter/{created['id']}/permission",
        {"type": "group", "groupname": "jira-software-users"},
        expect=201,
    )
    assert [s["type"] for s in shares] == ["project", "group"]
    assert fresh.get(f"/rest/api/3/filter/{created['id']}/permission") == shares
    changed = fresh.put(f"/rest/api/3/filter/{created['id']}", {"jql": "project = PLAT AND issuetype = Task"})
    assert changed["jql"] == "project = PLAT AND issuetype = Task" and changed["name"] == "PLAT bugs"
    found = fresh.get("/rest/api/3/filter/search", params={"filterName": "plat bugs"})["values"]
    assert [f["id"] for f in found] == [created["id"]]


def test_a_filter_jira_refuses_changes_nothing(fresh):
    before = fresh.get("/rest/api/3/filter/search", params={"maxResults": 100})["total"]
    fresh.post("/rest/api/3/filter", {"name": "Twice", "jql": "project = PLAT"})
    dup = fresh.post("/rest/api/3/filter", {"name": "twice", "jql": "project = PLAT"}, expect=400)
    assert "filterName" in dup["errors"]
    gone = fresh.post("/rest/api/3/filter", {"name": "Gone", "jql": "project = NOPE"}, expect=400)
    assert "jql" in gone["errors"]
    group = fresh.post(
        "/rest/api/3/filter",
        {
            "name": "Grp",
            "jql": "project = PLAT",
            "sharePermissions": [{"type": "group", "groupname": "nobody"}],
        },
        expect=400,
    )
    assert "sharePermissions" in group["errors"]
    assert fresh.get("/rest/api/3/filter/search", params={"maxResults": 100})["total"] == before + 1


def test_a_board_is_created_on_a_filter_in_a_project(fresh):
    f = fresh.post("/rest/api/3/filter", {"name": "Triage", "jql": "project = PLAT ORDER BY Rank ASC"})
    board = fresh.post(
        "/rest/agile/1.0/board",
        {
            "name": "PLAT triage",
            "type": "kanban",
            "filterId": int(f["id"]),
            "location": {"type": "project", "projectKeyOrId": "PLAT"},
        },
        expect=201,
    )
    assert board["location"]["projectKey"] == "PLAT" and board["type"] == "kanban"
    config = fresh.get(f"/rest/agile/1.0/board/{board['id']}/configuration")
    assert config["filter"]["id"] == f["id"] and config["columnConfig"]["columns"]
    listed = fresh.get("/rest/agile/1.0/board", params={"projectKeyOrId": "PLAT"})["values"]
    assert board["id"] in [b["id"] for b in listed]
    bad = fresh.post(
        "/rest/agile/1.0/board",
        {
            "name": "x",
            "type": "list",
            "filterId": 1,
            "location": {"type": "project", "projectKeyOrId": "NOPE"},
        },
        expect=400,
    )
    assert set(bad["errors"]) == {"type", "filterId", "location"}


def test_a_dashboard_is_created_with_its_gadgets(fresh):
    project = _project(fresh)
    d = fresh.post(
        "/rest/api/3/dashboard",
        {
            "name": "PLAT health",
            "description": "how PLAT is doing",
            "sharePermissions": [{"type": "project", "project": {"id": project["id"]}}],
            "editPermissions": [],
        },
    )
    assert d["sharePermissions"][0]["project"]["key"] == "PLAT"
    assert d["id"] in [x["id"] for x in fresh.get("/rest/api/3/dashboard")["dashboards"]]
    path = f"/rest/api/3/dashboard/{d['id']}/gadget"
    g = fresh.post(
        path,
        {"moduleKey": "filter-results", "title": "Open", "color": "red", "position": {"row": 0, "column": 1}},
    )
    assert g["position"] == {"row": 0, "column": 1}
    taken = fresh.post(path, {"moduleKey": "pie", "position": {"row": 0, "column": 1}}, expect=400)
    assert "position" in taken["errors"]
    fresh.post(path, {"uri": "rest/gadgets/1.0/g/created-vs-resolved.xml", "title": "Trend"})
    assert [x["title"] for x in fresh.get(path)["gadgets"]] == ["Open", "Trend"]
    fresh.post("/rest/api/3/dashboard", {"name": "no permissions"}, expect=400)
    fresh.get("/rest/api/3/dashboard/999999/gadget", expect=404)


def test_project_role_actors_are_added_and_refused_as_jira_does(fresh):
    roles = fresh.get("/rest/api/3/project/PLAT/role")
    role_id = roles["Developers"].rsplit("/", 1)[1]
    path = f"/rest/api/3/project/PLAT/role/{role_id}"
    before = {a.get("actorUser", {}).get("accountId") for a in fresh.get(path)["actors"]}
    users = [u["accountId"] for u in fresh.get("/rest/api/3/users/search", params={"maxResults": 50})]
    newcomer = next(u for u in users if u not in before)
    group_id = fresh.get("/rest/api/3/groups/picker", params={"query": "jira-software-users"})["groups"][0][
        "groupId"
    ]
    role = fresh.post(path, {"user": [newcomer], "groupId": [group_id]})
    assert newcomer in {a["actorUser"]["accountId"] for a in role["actors"] if "actorUser" in a}
    assert [a["actorGroup"]["groupId"] for a in role["actors"] if "actorGroup" in a] == [group_id]
    assert fresh.get(path) == role
    fresh.post(path, {"user": [newcomer]}, expect=400)  # already a member
    fresh.post(path, {"user": ["no-such-account"]}, expect=400)
    fresh.post(path, {}, expect=400)


def test_a_user_who_leaves_the_site_leaves_its_roles(fresh):
    roles = fresh.get("/rest/api/3/project/PLAT/role")
    path = roles["Developers"].replace(fresh.url, "").replace(str(_project(fresh)["id"]), "PLAT")
    users = [u["accountId"] for u in fresh.get("/rest/api/3/users/search", params={"maxResults": 50})]
    me = fresh.get("/rest/api/3/myself")["accountId"]
    leaver = next(u for u in users if u != me)
    current = {a.get("actorUser", {}).get("accountId") for a in fresh.get(path)["actors"]}
    if leaver not in current:
        fresh.post(path, {"user": [leaver]})
    fresh.delete("/rest/api/3/user", params={"accountId": leaver})
    assert leaver not in [
        u["accountId"] for u in fresh.get("/rest/api/3/users/search", params={"maxResults": 50})
    ]
    assert leaver not in {a.get("actorUser", {}).get("accountId") for a in fresh.get(path)["actors"]}
    fresh.delete("/rest/api/3/user", params={"accountId": leaver}, expect=404)


def _someone_else(jira) -> str:
    me = jira.get("/rest/api/3/myself")["accountId"]
    users = jira.get("/rest/api/3/users/search", params={"maxResults": 50})
    return next(u["accountId"] for u in users if u["accountId"] != me)


def test_a_filter_is_given_to_another_owner(fresh):
    f = fresh.post("/rest/api/3/filter", {"name": "Handed over", "jql": "project = PLAT"})
    other = _someone_else(fresh)
    fresh.put(f"/rest/api/3/filter/{f['id']}/owner", {"accountId": other}, expect=204)
    assert fresh.get(f"/rest/api/3/filter/{f['id']}")["owner"]["accountId"] == other
    fresh.put(f"/rest/api/3/filter/{f['id']}/owner", {"accountId": "nobody"}, expect=400)


def test_dashboard_owners_change_in_bulk_and_gadgets_keep_item_properties(fresh):
    d = fresh.post("/rest/api/3/dashboard", {"name": "Props", "sharePermissions": [], "editPermissions": []})
    g = fresh.post(f"/rest/api/3/dashboard/{d['id']}/gadget", {"moduleKey": "filter-results", "title": "F"})
    path = f"/rest/api/3/dashboard/{d['id']}/items/{g['id']}/properties"
    fresh.put(f"{path}/config", {"filterId": "filter-10100", "num": "10"}, expect=201)
    fresh.put(f"{path}/config", {"filterId": "filter-10101", "num": "10"}, expect=200)
    assert [k["key"] for k in fresh.get(path)["keys"]] == ["config"]
    assert fresh.get(f"{path}/config")["value"] == {"filterId": "filter-10101", "num": "10"}
    fresh.get(f"{path}/nothing", expect=404)
    other = _someone_else(fresh)
    body = {
        "action": "changeOwner",
        "entityIds": [int(d["id"]), 999999],
        "changeOwnerDetails": {"newOwner": other, "autofixName": True},
    }
    answer = fresh.put("/rest/api/3/dashboard/bulk/edit", body)
    assert list(answer["entityErrors"]) == ["999999"]
    assert fresh.get(f"/rest/api/3/dashboard/{d['id']}")["owner"]["accountId"] == other


def test_a_site_file_board_has_its_filter_jql_and_columns(tmp_path, make_site):
    board = {
        "name": "OPS triage",
        "type": "kanban",
        "jql": "project = OPS AND issuetype = Bug ORDER BY Rank ASC",
        "columns": [
            {"name": "Inbox", "statuses": ["To Do"]},
            {"name": "Doing", "statuses": ["In Progress", "In Review"]},
        ],
    }
    site = {
        "projects": [{"key": "OPS", "name": "Operations", "boards": [board], "issues": [{"summary": "One"}]}]
    }
    path = tmp_path / "site.json"
    path.write_text(json.dumps(site))
    jira = make_site(site_file=str(path))
    (found,) = jira.get("/rest/agile/1.0/board")["values"]
    config = jira.get(f"/rest/agile/1.0/board/{found['id']}/configuration")
    assert [c["name"] for c in config["columnConfig"]["columns"]] == ["Inbox", "Doing"]
    assert len(config["columnConfig"]["columns"][1]["statuses"]) == 2
    assert jira.get(f"/rest/api/3/filter/{config['filter']['id']}")["jql"] == board["jql"]
    board["columns"] = [{"name": "Bad", "statuses": ["Nope"]}]
    path.write_text(json.dumps(site))
    with pytest.raises(Exception, match="statuses must be status names"):
        create_app(SandboxConfig(site_file=str(path)))
