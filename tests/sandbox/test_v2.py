"""REST v2 (and /rest/api/latest) as Jira serves it, Data Center without v3, and what v2 clients send.

v2 carries descriptions, comment bodies and worklog comments as plain text (wiki markup) both ways; ADF
is rendered to text on reads. Every answer is validated against the v3 spec (v2 has the same operations).
"""

from __future__ import annotations

from urllib.parse import unquote

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN


def _adf(text: str) -> dict:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def _new_issue(site, prefix: str = "/rest/api/3", **fields) -> str:
    project = site.admin("GET", "site")["projects"][0]["key"]
    body = {"fields": {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": "v2", **fields}}
    return site.post(f"{prefix}/issue", body, expect=201)["key"]


@pytest.mark.parametrize("prefix", ["/rest/api/2", "/rest/api/latest"])
def test_v2_search_jql_and_approximate_count_are_served(jira, prefix):
    key = jira.admin("GET", "site")["projects"][0]["key"]
    jql = f"project = {key} ORDER BY key ASC"
    first = jira.get(f"{prefix}/search/jql", params={"jql": jql, "maxResults": 7, "fields": "summary"})
    assert len(first["issues"]) == 7 and first["nextPageToken"]
    assert first["issues"][0]["self"].startswith(jira.url + "/rest/api/2/issue/")
    second = jira.post(
        f"{prefix}/search/jql",
        {"jql": jql, "maxResults": 7, "fields": ["summary"], "nextPageToken": first["nextPageToken"]},
    )
    assert {i["key"] for i in second["issues"]}.isdisjoint({i["key"] for i in first["issues"]})
    count = jira.post(f"{prefix}/search/approximate-count", {"jql": f"project = {key}"})
    assert count == {"count": 30}
    # Only the removed legacy search is gone.
    jira.call("GET", f"{prefix}/search", params={"jql": jql}, expect=410)


def test_v2_reads_rich_text_as_wiki_markup(jira):
    key = next(
        i["key"]
        for i in jira.search_all("created >= 2000-01-01", fields="description,comment")
        if i["fields"]["description"] and i["fields"]["comment"]["total"]
    )
    v3 = jira.get(f"/rest/api/3/issue/{key}")
    v2 = jira.get(f"/rest/api/2/issue/{key}")
    assert v3["fields"]["description"]["type"] == "doc"
    text = v2["fields"]["description"]
    assert isinstance(text, str) and text
    first_words = v3["fields"]["description"]["content"][0]["content"][0]["text"].strip()
    assert text.startswith(first_words)
    assert v2["self"] == f"{jira.url}/rest/api/2/issue/{v2['id']}"
    assert all(isinstance(c["body"], str) for c in v2["fields"]["comment"]["comments"])
    comments = jira.get(f"/rest/api/2/issue/{key}/comment")["comments"]
    assert all(
        isinstance(c["body"], str) and c["self"].startswith(jira.url + "/rest/api/2/") for c in comments
    )
    # Mentions come out as Jira writes them in wiki markup.
    for i in jira.search_all("created >= 2000-01-01", fields="description")[:40]:
        doc = i["fields"]["description"]
        mention = next(
            (
                n
                for p in (doc or {}).get("content", [])
                for n in p.get("content", [])
                if n["type"] == "mention"
            ),
            None,
        )
        if mention:
            assert (
                f"[~accountid:{mention['attrs']['id']}]"
                in jira.get(f"/rest/api/2/issue/{i['key']}")["fields"]["description"]
            )
            break
    else:
        pytest.fail("no generated description has a mention")


def test_v2_takes_plain_text_and_v3_reads_it_as_adf(fresh):
    text = "First line\nsecond line\n\nA *bold* word and [~accountid:nobody]"
    key = _new_issue(fresh, "/rest/api/2", description=text)
    assert fresh.get(f"/rest/api/2/issue/{key}")["fields"]["description"] == text
    doc = fresh.get(f"/rest/api/3/issue/{key}")["fields"]["description"]
    assert doc["content"][0]["content"][1] == {"type": "hardBreak"}
    assert {"type": "text", "text": "bold", "marks": [{"type": "strong"}]} in doc["content"][1]["content"]
    fresh.put(f"/rest/api/latest/issue/{key}", {"fields": {"description": "edited in latest"}}, expect=204)
    assert fresh.get(f"/rest/api/3/issue/{key}")["fields"]["description"] == _adf("edited in latest")
    comment = fresh.post(f"/rest/api/2/issue/{key}/comment", {"body": "plain comment"}, expect=201)
    assert comment["body"] == "plain comment"
    assert fresh.get(f"/rest/api/3/issue/{key}/comment")["comments"][0]["body"] == _adf("plain comment")
    worklog = fresh.post(
        f"/rest/api/2/issue/{key}/worklog", {"timeSpentSeconds": 600, "comment": "worked"}, expect=201
    )
    assert worklog["comment"] == "worked"
    assert fresh.get(f"/rest/api/3/issue/{key}/worklog")["worklogs"][0]["comment"] == _adf("worked")
    # v2 does not take ADF for a description, and v3 does not take text.
    resp = fresh.call(
        "POST", "/rest/api/2/issue", json={"fields": {"summary": "x", "description": _adf("x")}}, expect=400
    )
    assert resp.json()["errors"]
    bad = fresh.call("PUT", f"/rest/api/3/issue/{key}", json={"fields": {"description": "text"}}, expect=400)
    assert "description" in bad.json()["errors"]


@pytest.mark.parametrize("prefix", ["/rest/api/2", "/rest/api/3"])
def test_worklog_time_spent_as_typed(fresh, prefix):
    key = _new_issue(fresh)
    for typed, seconds in (("1h 30m", 5400), ("2d", 57600), ("1w", 144000), ("45m", 2700), ("1.5h", 5400)):
        w = fresh.post(f"{prefix}/issue/{key}/worklog", {"timeSpent": typed}, expect=201)
        assert w["timeSpentSeconds"] == seconds, typed
    both = fresh.post(
        f"{prefix}/issue/{key}/worklog", {"timeSpent": "1h", "timeSpentSeconds": 60}, expect=201
    )
    assert both["timeSpentSeconds"] == 60  # timeSpentSeconds wins when both are given
    for bad in ("soon", "", "1x", "-1h"):
        resp = fresh.call("POST", f"{prefix}/issue/{key}/worklog", json={"timeSpent": bad}, expect=400)
        assert "timeLogged" in resp.json()["errors"]


def test_worklog_started_keeps_its_offset(fresh):
    key = _new_issue(fresh)
    started = "2026-03-01T09:00:00.000+0530"
    w = fresh.post(f"/rest/api/3/issue/{key}/worklog", {"timeSpent": "1h", "started": started}, expect=201)
    assert w["started"] == started
    assert fresh.get(f"/rest/api/3/issue/{key}/worklog")["worklogs"][0]["started"] == started
    west = fresh.post(
        f"/rest/api/3/issue/{key}/worklog",
        {"timeSpent": "1h", "started": "2026-03-01T09:00:00.000-0800"},
        expect=201,
    )
    assert west["started"] == "2026-03-01T09:00:00.000-0800"


def test_comment_and_worklog_visibility_round_trip(fresh):
    key = _new_issue(fresh)
    role = {"type": "role", "value": "Developers"}
    group = {"type": "group", "value": "jira-administrators"}
    assert (
        fresh.post(f"/rest/api/3/issue/{key}/comment", {"body": _adf("x"), "visibility": role}, expect=201)[
            "visibility"
        ]
        == role
    )
    w = fresh.post(f"/rest/api/3/issue/{key}/worklog", {"timeSpent": "1h", "visibility": group}, expect=201)
    assert w["visibility"] == group
    assert fresh.get(f"/rest/api/3/issue/{key}/worklog")["worklogs"][0]["visibility"] == group
    resp = fresh.call(
        "POST",
        f"/rest/api/3/issue/{key}/comment",
        json={"body": _adf("x"), "visibility": {"type": "role", "value": "Nobody"}},
        expect=400,
    )
    assert "visibility" in resp.json()["errors"]


def test_latest_behaves_as_v2(jira):
    me = jira.get("/rest/api/latest/myself")
    assert me["self"].startswith(jira.url + "/rest/api/2/user")
    key = jira.admin("GET", "site")["projects"][0]["issues"][2]
    issue = jira.get(f"/rest/api/latest/issue/{key}")
    assert issue == jira.get(f"/rest/api/2/issue/{key}") | {"fields": issue["fields"]}
    assert issue["fields"]["description"] is None or isinstance(issue["fields"]["description"], str)
    assert jira.get("/rest/api/latest/serverInfo")["deploymentType"] == "Cloud"


@pytest.mark.parametrize(
    "name", ["名前 (1).pdf", "Résumé – final.txt", 'a "quoted" name; here.txt', "plain.txt"]
)
def test_attachment_names_outside_latin1_download(fresh, name):
    key = _new_issue(fresh)
    resp = fresh.http.post(
        f"{fresh.url}/rest/api/3/issue/{key}/attachments",
        files={"file": (name, b"content")},
        headers={"X-Atlassian-Token": "no-check"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    attachment_id = resp.json()[0]["id"]
    got = fresh.call("GET", f"/rest/api/3/attachment/content/{attachment_id}", validate=False)
    assert got.content == b"content"
    disposition = got.headers["Content-Disposition"]
    disposition.encode("latin-1")  # a header is Latin-1 on the wire
    if name == "plain.txt":
        assert disposition == 'attachment; filename="plain.txt"'
    else:
        encoded = disposition.split("filename*=UTF-8''", 1)[1]
        assert unquote(encoded) == name
        assert 'filename="' in disposition and disposition.count('"') == 2


def test_datacenter_has_no_v3_and_links_to_v2(make_site):
    dc = make_site(projects=1, issues_per_project=12, flavor="datacenter")
    bearer = requests.Session()
    bearer.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    gone = bearer.get(f"{dc.url}/rest/api/3/myself", timeout=10)
    assert gone.status_code == 404
    assert dc.get("/rest/api/2/serverInfo")["versionNumbers"] == [9, 12, 0]
    key = dc.admin("GET", "site")["projects"][0]["key"]
    found = dc.get(
        "/rest/api/2/search", params={"jql": f"project = {key}", "fields": "description,attachment,comment"}
    )
    assert found["total"] == 12
    for issue in found["issues"]:
        assert issue["self"].startswith(dc.url + "/rest/api/2/issue/")
        description = issue["fields"]["description"]
        assert description is None or isinstance(description, str)
        for a in issue["fields"]["attachment"]:
            assert a["content"] == f"{dc.url}/rest/api/2/attachment/content/{a['id']}"
        assert all(isinstance(c["body"], str) for c in issue["fields"]["comment"]["comments"])
    board = dc.get("/rest/agile/1.0/board")["values"][0]
    config = dc.get(f"/rest/agile/1.0/board/{board['id']}/configuration")
    assert config["filter"]["self"].startswith(dc.url + "/rest/api/2/")
    assert requests.get(f"{dc.url}/rest/api/2/myself", auth=(ADMIN_EMAIL, ADMIN_TOKEN), timeout=10).ok


def test_agile_issue_lists_carry_plain_text_fields(jira):
    board = jira.get("/rest/agile/1.0/board")["values"][0]
    issues = jira.get(f"/rest/agile/1.0/board/{board['id']}/issue", params={"maxResults": 30})["issues"]
    described = [i for i in issues if i["fields"].get("description")]
    assert described and all(isinstance(i["fields"]["description"], str) for i in described)
    v3 = jira.get(f"/rest/api/3/issue/{described[0]['key']}")["fields"]["description"]
    assert v3["type"] == "doc"
    assert issues[0]["fields"]["status"]["self"].startswith(jira.url + "/rest/api/3/")


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.characters(categories=("L", "N", "Zs"), include_characters="\n.,:;?()'\"/@#$%&=<>"),
        max_size=200,
    )
)
def test_plain_text_comes_back_from_v2_as_it_went_in(text):
    from sandbox.wiki import adf_to_wiki, wiki_to_adf
    from tests.sandbox.validate import assert_adf

    doc = wiki_to_adf(text)
    assert_adf(doc)
    assert adf_to_wiki(doc) == text
