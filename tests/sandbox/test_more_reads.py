"""The remaining documented reads: users, versions page, roles, categories, workflows, options, links."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def project_key(jira) -> str:
    return jira.get("/rest/api/3/project/search")["values"][0]["key"]


def test_user_by_account_id_and_in_bulk(jira):
    users = jira.get("/rest/api/3/users", params={"maxResults": 100})
    one = jira.get("/rest/api/3/user", params={"accountId": users[0]["accountId"]})
    assert one["accountId"] == users[0]["accountId"]
    bulk = jira.get("/rest/api/3/user/bulk", params={"accountId": [u["accountId"] for u in users[:2]]})
    assert {u["accountId"] for u in bulk["values"]} == {u["accountId"] for u in users[:2]}


def test_unknown_user_is_404(jira):
    jira.get("/rest/api/3/user", params={"accountId": "no-such-account"}, expect=404)


def test_versions_page_matches_the_versions_list(jira, project_key):
    listed = jira.get(f"/rest/api/3/project/{project_key}/versions")
    paged = jira.get(f"/rest/api/3/project/{project_key}/version", params={"maxResults": 100})
    assert [v["id"] for v in paged["values"]] == [v["id"] for v in listed]
    assert paged["total"] == len(listed)


def test_each_project_role_has_actors(jira, project_key):
    roles = jira.get(f"/rest/api/3/project/{project_key}/role")
    for url in roles.values():
        role_id = url.rstrip("/").rsplit("/", 1)[-1]
        role = jira.get(f"/rest/api/3/project/{project_key}/role/{role_id}")
        assert role["name"] in roles
        assert "actors" in role


def test_project_categories_workflows_and_attachment_settings(jira):
    assert jira.get("/rest/api/3/projectCategory")
    assert jira.get("/rest/api/3/workflow/search")["values"]
    meta = jira.get("/rest/api/3/attachment/meta")
    assert meta["enabled"] is True and meta["uploadLimit"] > 0
    assert isinstance(jira.get("/rest/api/3/filter/favourite"), list)


def test_select_field_options_are_listed(jira):
    select = next(
        f for f in jira.get("/rest/api/3/field") if f["custom"] and f["schema"]["custom"].endswith(":select")
    )
    body = jira.get(f"/rest/api/3/field/{select['id']}/context/10000/option")
    assert body["values"] and all(o["value"] for o in body["values"])
    jira.get("/rest/api/3/field/summary/context/10000/option", expect=404)


def test_issue_link_by_id(jira):
    issues = jira.search_all("created >= 2000-01-01", fields="issuelinks")
    link = next(link for i in issues for link in i["fields"].get("issuelinks") or [])
    got = jira.get(f"/rest/api/3/issueLink/{link['id']}")
    assert got["id"] == link["id"]
    assert got["type"]["name"] == link["type"]["name"]
