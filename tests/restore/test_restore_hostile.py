"""Issue 15, points 1-9: a hostile site backed up, its project deleted and restored into a new project.

One backup and one restore (with the fidelity report) per module; each test checks one point against the
target site over real HTTP, and against the report, which must see what it claims to check.
"""

from __future__ import annotations

import json

import pytest
import requests

from backend.backup import BackupSpec, run_backup
from backend.jira import JiraClient, JiraCredentials
from backend.repository import Repository
from backend.storage import open_storage
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, start_sandbox
from tests.restore import hostile
from tests.restore.conftest import PASSWORD, Backed

NEW = "HOSTR"


def _sandbox(site, method: str, path: str, body=None):
    r = requests.request(method, f"{site.url}/_sandbox/{path}", json=body, timeout=30)
    r.raise_for_status()
    return r.json() if r.content else None


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp, start_sandbox(site_file=str(hostile.write(folder))) as site:
        mp.setenv("KEEPSTONE_REPO_PASSWORD", PASSWORD)
        mp.setenv("KEEPSTONE_JIRA_TOKEN", ADMIN_TOKEN)
        mp.chdir(folder)
        client = JiraClient(JiraCredentials(site.url, ADMIN_EMAIL, ADMIN_TOKEN))
        # Done without a resolution (an admin cleared it): the restore must not leave "Done" on it.
        client.request("PUT", "/rest/api/3/issue/HOST-4", json={"fields": {"resolution": None}})
        # The backing-up admin joins the group, or Jira would hide the group's comments from the backup too.
        me = client.myself()["accountId"]
        client.request(
            "POST", "/rest/api/3/group/user", json={"accountId": me}, params={"groupname": "ops-team"}
        )
        url = f"file://{folder}/repo"
        repo = Repository.init(open_storage(url), PASSWORD)
        spec = BackupSpec.from_dict(
            {"projects": {"mode": "selected", "keys": [hostile.PROJECT]}, "data": {"changelog": True}}
        )
        snapshot = run_backup(client, repo, spec).projects[0].snapshot_id
        b = Backed(site, url, repo, snapshot, hostile.PROJECT)
        status, dry = b.restore("--project", "--new-project", NEW, "--dry-run")
        assert status == 0, dry
        _sandbox(site, "POST", "delete", {"project": hostile.PROJECT})
        _sandbox(site, "POST", "stats/reset")
        status, out = b.restore("--project", "--new-project", NEW, "--report", "--json")
        calls = _sandbox(site, "GET", "stats")["endpoints"]  # the report only reads
        yield b, status, json.loads(out), dry, calls


def _issue(b: Backed, key: str, fields: str = "*all") -> dict:
    return b.client.get_json(f"/rest/api/3/issue/{key}", fields=fields)


def _comments(b: Backed, key: str) -> list[dict]:
    return b.client.paged(f"/rest/api/3/issue/{key}/comment", "comments", 100)


def test_1_restricted_comments_and_worklogs_stay_restricted(run):
    b, _, out, _, _ = run
    new = out["mapping"]["HOST-2"]
    comments = _comments(b, new)
    assert len(comments) == hostile.COMMENTS
    restricted = [c for c in comments if c.get("visibility")]
    assert sorted(c["visibility"]["value"] for c in restricted) == ["Developers"] * 6 + ["ops-team"] * 6
    worklogs = b.client.paged(f"/rest/api/3/issue/{new}/worklog", "worklogs", 1000)
    assert [w.get("visibility") for w in worklogs].count({"type": "group", "value": "ops-team"}) == 1
    # The viewer account is in neither the role nor the group: it sees none of them.
    viewer = requests.get(
        f"{b.site.url}/rest/api/3/issue/{new}/comment",
        params={"maxResults": 100, "startAt": 0},
        auth=("viewer@example.com", "viewer-token"),
        timeout=30,
    )
    if viewer.status_code == 200:
        assert viewer.json()["total"] == hostile.COMMENTS - 12
    assert out["fidelity"]["visibility"]["changed"] == []
    assert out["fidelity"]["visibility"]["identical"] == 13


def test_1_a_group_the_target_lacks_becomes_the_administrators_role_never_public(run):
    b, _, _, _, _ = run
    for user in _sandbox(b.site, "GET", "site")["users"]:  # the group is gone from the site
        if user["email"] in ("admin@example.com", "ada@example.com"):
            b.client.request(
                "DELETE",
                "/rest/api/3/group/user",
                params={"groupname": "ops-team", "accountId": user["accountId"]},
            )
    out = b.restore_json(
        "--issues",
        "HOST-2",
        "--new-project",
        "ELSE",
        "--new-project-name",
        "Else",
        "--only",
        "issues,comments,worklogs",
    )
    new = out["mapping"]["HOST-2"]
    comments = _comments(b, new)
    worklogs = b.client.paged(f"/rest/api/3/issue/{new}/worklog", "worklogs", 1000)
    assert len(comments) == hostile.COMMENTS
    seen = [c.get("visibility") for c in comments] + [w.get("visibility") for w in worklogs]
    assert seen.count({"type": "role", "value": "Developers"}) == 6
    assert seen.count({"type": "role", "value": "Administrators"}) == 7  # 6 comments + 1 worklog
    assert {"type": "group", "value": "ops-team"} not in seen
    lost = [line for line in out["lost"] if "restricted to the Administrators role" in line]
    assert len(lost) == 7 and all("ops-team" in line for line in lost)


def test_2_resolution_ends_equal_to_the_backup(run):
    b, _, out, _, _ = run
    won_t = _issue(b, out["mapping"]["HOST-3"], "status,resolution")["fields"]
    assert won_t["status"]["name"] == "Done" and won_t["resolution"]["name"] == "Won't Do"
    cleared = _issue(b, out["mapping"]["HOST-4"], "status,resolution")["fields"]
    assert cleared["status"]["name"] == "Done" and cleared["resolution"] is None
    assert out["fidelity"]["resolution"]["changed"] == []
    assert out["fidelity"]["resolution"]["identical"] == out["fidelity"]["issues"]


def test_3_links_to_issues_of_other_projects_that_still_exist_are_restored(run):
    b, _, out, _, _ = run
    links = _issue(b, out["mapping"]["HOST-2"], "issuelinks")["fields"]["issuelinks"]
    ends = {
        (link["type"]["name"], (link.get("outwardIssue") or link.get("inwardIssue"))["key"]) for link in links
    }
    assert ("Relates", "KEEP-1") in ends
    assert ("Blocks", out["mapping"]["HOST-3"]) in ends  # the cycle HOST-2 <-> HOST-3, both ways
    other = _issue(b, out["mapping"]["HOST-3"], "issuelinks")["fields"]["issuelinks"]
    assert any(link.get("inwardIssue", {}).get("key") == "KEEP-1" for link in other)
    assert not [line for line in out["lost"] if "neither restored nor in the site" in line]
    assert out["fidelity"]["links"]["changed"] == []


def test_4_media_nodes_point_at_the_restored_attachments(run):
    b, _, out, _, _ = run
    new = out["mapping"]["HOST-2"]
    issue = _issue(b, new, "description,attachment")
    marker = b.client.get_json(f"/rest/api/3/issue/{new}/properties/keepstone.attachments")["value"]
    ours = {v["mediaId"] for v in marker.values()}
    nodes = [n for n in issue["fields"]["description"]["content"] if n["type"] == "mediaSingle"]
    ids = [n["content"][0]["attrs"]["id"] for n in nodes]
    assert len(ids) == 2 and set(ids) <= ours
    comment = _comments(b, new)[1]["body"]
    assert any(
        n["type"] == "mediaSingle" and n["content"][0]["attrs"]["id"] in ours for n in comment["content"]
    )
    # Jira's rendered HTML shows the restored attachment where the media node is.
    rendered = b.client.get_json(f"/rest/api/3/issue/{new}", fields="description", expand="renderedFields")
    assert rendered["renderedFields"]["description"].count("/rest/api/3/attachment/content/") == 2
    assert out["fidelity"]["media"] == {"identical": 1, "changed": []}


def test_5_a_refused_issue_is_named_with_its_field_and_the_restore_goes_on(run):
    b, status, out, _, calls = run
    assert status == 1 and out["status"] == "partial"  # partial exits 1, with the list
    refused = [e for e in out["errors"] if e.startswith("HOST-5:")]
    assert len(refused) == 1 and "customfield_" in refused[0], out["errors"]
    assert "HOST-5" not in out["mapping"]
    # Created 50 a request; only the refused one was tried alone, and each created issue exactly once.
    assert calls["POST /rest/api/3/issue/bulk"]["requests"] == 4  # levels of 4 and 121 issues
    assert calls["POST /rest/api/3/issue"]["requests"] == 1
    assert calls["POST /rest/api/3/issue"]["status"] == {"400": 1}
    assert len(out["mapping"]) == len(hostile.site()["projects"][0]["issues"]) - 1
    # Issues after the refused one got their content.
    assert out["created"]["comments"] == hostile.COMMENTS
    last = out["mapping"][f"HOST-{5 + hostile.CHILDREN}"]
    assert _issue(b, last, "parent")["fields"]["parent"]["key"] == out["mapping"]["HOST-1"]


def test_6_attachments_of_the_same_name_and_size_are_told_apart_and_a_deleted_one_comes_back(run):
    b, _, out, _, _ = run
    assert (
        out["fidelity"]["attachments"]["byte_identical"] == 5 == out["fidelity"]["attachments"]["backed_up"]
    )
    new = out["mapping"]["HOST-2"]
    marker = b.client.get_json(f"/rest/api/3/issue/{new}/properties/keepstone.attachments")["value"]
    same = [v for v in marker.values() if v["filename"] == "report.txt"]
    assert len(same) == 2 and len({v["sha256"] for v in same}) == 2
    victim = same[1]["id"]
    b.client.request("DELETE", f"/rest/api/3/attachment/{victim}")
    status, text = b.restore("--project", "--new-project", NEW, "--json")
    again = json.loads(text)
    assert status == 1 and again["status"] == "partial"  # HOST-5 is refused again, and named again
    assert again["created"] == {"attachments": 1}, again
    present = _issue(b, new, "attachment")["fields"]["attachment"]
    data = sorted(b"".join(b.client.download(a["id"])) for a in present if a["filename"] == "report.txt")
    assert data == sorted(hostile.SAME_SIZE)


def test_7_what_the_api_cannot_set_is_kept_visibly(run):
    b, _, out, _, _ = run
    new = out["mapping"]["HOST-2"]
    marker = b.client.get_json(f"/rest/api/3/issue/{new}/properties/keepstone.attachments")["value"]
    assert all(v["author"] and v["created"] for v in marker.values())
    pages = []
    props = b.client.get_json(f"/rest/api/3/issue/{new}/properties")["keys"]
    for key in sorted(p["key"] for p in props if p["key"].startswith("keepstone.changelog")):
        pages += b.client.get_json(f"/rest/api/3/issue/{new}/properties/{key}")["value"]["histories"]
    backed = b.repo.read_json(b.repo.snapshot(b.snapshot_id).entries["changelog/HOST-2"])
    assert len(pages) == len(backed) >= 150 and pages == backed
    project = b.client.get_json(f"/rest/api/3/project/{NEW}")
    original = b.repo.read_json(b.repo.snapshot(b.snapshot_id).entries["project"])
    assert project["lead"]["accountId"] == original["lead"]["accountId"] != b.client.myself()["accountId"]


def test_8_the_report_compares_what_it_claims_and_lists_what_it_cannot(run):
    _, _, out, _, _ = run
    f = out["fidelity"]
    assert f["issues"] == len(out["mapping"])
    assert f["comments"]["identical"] == f["comments"]["backed_up"] == hostile.COMMENTS + 0
    assert f["worklogs"]["identical"] == f["worklogs"]["backed_up"] == len(hostile.ZONES)
    assert any("changelog" in line for line in f["not_compared"])
    assert any("attachment authors" in line for line in f["not_compared"])
    assert f["fields"]["identical_share"] == 1.0, f["fields"]


def test_9_the_dry_run_counts_links_not_link_ends(run):
    _, _, _, dry, _ = run
    # HOST-2 -> HOST-3, HOST-3 -> HOST-2, HOST-2 -> KEEP-1, KEEP-1 -> HOST-3, 3 among the children.
    assert "  links: 7" in dry.splitlines(), dry
