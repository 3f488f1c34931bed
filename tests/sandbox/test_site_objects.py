"""Site-wide and project configuration reads: each answer validated against the platform spec."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "path",
    [
        "/rest/api/3/field",
        "/rest/api/3/issuetype",
        "/rest/api/3/priority",
        "/rest/api/3/status",
        "/rest/api/3/resolution",
        "/rest/api/3/users/search",
        "/rest/api/3/filter/my",
        "/rest/api/3/project",
    ],
)
def test_site_lists_are_non_empty_arrays(jira, path):
    body = jira.get(path)
    assert isinstance(body, list) and body


def test_link_types_include_blocks(jira):
    names = {t["name"] for t in jira.get("/rest/api/3/issueLinkType")["issueLinkTypes"]}
    assert "Blocks" in names


def test_fields_include_custom_fields_of_many_types(jira):
    fields = jira.get("/rest/api/3/field")
    custom = [f for f in fields if f["custom"]]
    kinds = {f["schema"]["custom"].rsplit(":", 1)[-1] for f in custom}
    assert len(custom) >= 6
    assert {"select", "multiselect", "float", "datepicker", "userpicker", "labels"} <= kinds


def test_project_search_pages_to_the_last_page(jira):
    keys, start = [], 0
    while True:
        page = jira.get("/rest/api/3/project/search", params={"startAt": start, "maxResults": 1})
        keys += [p["key"] for p in page["values"]]
        if page["isLast"]:
            break
        start += 1
    assert len(keys) == page["total"] == 3
    assert len(set(keys)) == 3


@pytest.fixture(scope="module")
def project_key(jira) -> str:
    return jira.get("/rest/api/3/project/search")["values"][0]["key"]


def test_project_with_expansions(jira, project_key):
    expand = "description,lead,issueTypes,url,projectKeys,permissions,insight"
    project = jira.get(f"/rest/api/3/project/{project_key}", params={"expand": expand})
    assert project["key"] == project_key
    assert project["lead"]["accountId"]
    assert project["issueTypes"]
    assert project["insight"]["totalIssueCount"] == 30


def test_project_components_versions_statuses_and_roles(jira, project_key):
    assert jira.get(f"/rest/api/3/project/{project_key}/components")
    assert jira.get(f"/rest/api/3/project/{project_key}/versions")
    statuses = jira.get(f"/rest/api/3/project/{project_key}/statuses")
    assert {s["name"] for t in statuses for s in t["statuses"]} >= {"To Do", "Done"}
    roles = jira.get(f"/rest/api/3/project/{project_key}/role")
    assert roles and all(url.startswith("http") for url in roles.values())
    jira.get(f"/rest/api/3/project/{project_key}/properties")


def test_unknown_project_is_404_in_jira_shape(jira):
    jira.get("/rest/api/3/project/NOPE", expect=404)


def test_user_search_finds_the_admin(jira):
    users = jira.get("/rest/api/3/user/search", params={"query": "admin"})
    assert any(u.get("emailAddress") == "admin@example.com" for u in users)


def test_groups_filters_and_dashboards_read(jira):
    assert jira.get("/rest/api/3/groups/picker")["groups"]
    assert jira.get("/rest/api/3/group/bulk")["values"]
    filters = jira.get("/rest/api/3/filter/search", params={"expand": "jql"})
    assert filters["values"]
    jira.get(f"/rest/api/3/filter/{filters['values'][0]['id']}")
    dashboards = jira.get("/rest/api/3/dashboard")["dashboards"]
    assert dashboards
    jira.get(f"/rest/api/3/dashboard/{dashboards[0]['id']}")


def test_project_search_filters_by_keys_and_query(jira, project_key):
    project = jira.get(f"/rest/api/3/project/{project_key}")
    by_key = jira.get("/rest/api/3/project/search", params={"keys": project_key})
    assert [p["key"] for p in by_key["values"]] == [project_key]
    by_name = jira.get("/rest/api/3/project/search", params={"query": project["name"][:3]})
    assert project_key in {p["key"] for p in by_name["values"]}
    assert jira.get(f"/rest/api/3/project/{project['id']}")["key"] == project_key
