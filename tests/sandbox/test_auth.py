"""Authentication, the caller's identity and per-project Browse permission, as Jira Cloud answers them."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.sandbox.conftest import Jira
from tests.sandbox.validate import assert_error_shape, check


def test_myself_names_the_admin_account(jira):
    me = jira.get("/rest/api/3/myself")
    assert me["emailAddress"] == "admin@example.com"
    assert me["accountId"]
    assert me["active"] is True


@pytest.mark.parametrize(
    "auth",
    [None, ("admin@example.com", "wrong-token"), ("nobody@example.com", "sandbox-admin-token")],
    ids=["anonymous", "wrong-token", "unknown-email"],
)
def test_missing_or_wrong_credentials_get_401_in_jira_shape(sandbox_site, auth):
    resp = requests.get(f"{sandbox_site.url}/rest/api/3/myself", auth=auth, timeout=10)
    assert resp.status_code == 401
    check(resp)
    assert_error_shape(resp)


def test_server_info_and_tenant_info_answer_without_login(sandbox_site):
    info = requests.get(f"{sandbox_site.url}/rest/api/3/serverInfo", timeout=10)
    assert info.status_code == 200
    check(info)
    assert info.json()["deploymentType"] == "Cloud"
    tenant = requests.get(f"{sandbox_site.url}/_edge/tenant_info", timeout=10).json()
    assert uuid.UUID(tenant["cloudId"])


def test_tenant_cloud_id_is_the_same_for_the_same_seed(sandbox_site, make_site):
    other = make_site(projects=3, issues_per_project=30, seed=7)
    first = requests.get(f"{sandbox_site.url}/_edge/tenant_info", timeout=10).json()
    second = requests.get(f"{other.url}/_edge/tenant_info", timeout=10).json()
    assert first == second


def test_admin_account_can_be_chosen(make_site):
    site = make_site(projects=1, issues_per_project=2, admin_email="ops@corp.test", admin_token="t0k3n")
    me = Jira(site.url, ("ops@corp.test", "t0k3n")).get("/rest/api/3/myself")
    assert me["emailAddress"] == "ops@corp.test"
    Jira(site.url).get("/rest/api/3/myself", expect=401)


def _last_project_key(jira) -> str:
    keys = [p["key"] for p in jira.get("/rest/api/3/project/search", params={"maxResults": 100})["values"]]
    return sorted(keys, key=lambda k: int(jira.get(f"/rest/api/3/project/{k}")["id"]))[-1]


def test_viewer_cannot_see_the_last_project(jira, viewer):
    hidden = _last_project_key(jira)
    seen = {p["key"] for p in viewer.get("/rest/api/3/project/search", params={"maxResults": 100})["values"]}
    assert hidden not in seen and seen
    viewer.get(f"/rest/api/3/project/{hidden}", expect=404)


def test_viewer_gets_404_for_issues_of_a_project_it_cannot_browse(jira, viewer):
    hidden = _last_project_key(jira)
    key = jira.search_all(f"project = {hidden}", fields="key")[0]["key"]
    jira.get(f"/rest/api/3/issue/{key}")
    resp = viewer.call("GET", f"/rest/api/3/issue/{key}", expect=404)
    assert "permission" in " ".join(resp.json()["errorMessages"])


def test_viewer_search_leaves_out_issues_it_cannot_browse(jira, viewer):
    hidden = _last_project_key(jira)
    everything = jira.search_all("created >= 2000-01-01", fields="key")
    visible = viewer.search_all("created >= 2000-01-01", fields="key")
    assert {i["key"].split("-")[0] for i in everything} - {i["key"].split("-")[0] for i in visible} == {
        hidden
    }


def test_viewer_bulkfetch_reports_hidden_issues_as_errors(jira, viewer):
    hidden = _last_project_key(jira)
    key = jira.search_all(f"project = {hidden}", fields="key")[0]["key"]
    body = viewer.post("/rest/api/3/issue/bulkfetch", {"issueIdsOrKeys": [key]})
    assert body["issues"] == []
    assert body["issueErrors"]


def test_viewer_cannot_read_comments_of_hidden_issues(jira, viewer):
    hidden = _last_project_key(jira)
    key = jira.search_all(f"project = {hidden}", fields="key")[0]["key"]
    viewer.get(f"/rest/api/3/issue/{key}/comment", expect=404)
    viewer.get(f"/rest/api/3/issue/{key}/changelog", expect=404)


def test_viewer_cannot_create_issues_in_a_hidden_project(jira, viewer):
    hidden = _last_project_key(jira)
    body = {"fields": {"project": {"key": hidden}, "issuetype": {"name": "Task"}, "summary": "x"}}
    resp = viewer.call("POST", "/rest/api/3/issue", json=body, expect=400)
    assert "project" in resp.json()["errors"]


def test_announced_base_url_is_used_in_server_info_and_links(make_site):
    site = make_site(projects=1, issues_per_project=2, base_url="https://acme.atlassian.net")
    info = site.get("/rest/api/3/serverInfo")
    assert info["baseUrl"] == "https://acme.atlassian.net"
    me = site.call("GET", "/rest/api/3/myself", validate=False).json()
    assert me["self"].startswith("https://acme.atlassian.net/rest/api/3/user")
