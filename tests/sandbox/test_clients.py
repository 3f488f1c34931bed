"""Real third-party Jira clients against the sandbox over HTTP, as a backup or admin script uses them.

pycontribs `jira` (REST v2, the pinned version in the test extra) and jira.js (Version3Client and
AgileClient, pinned in package.json) make the calls a backup or an admin script makes: search across pages,
an issue with expansions, comments, worklogs, changelog, attachment download, create, comment, attach,
transition, delete, fields, boards and sprints. Both must reach nothing but the sandbox.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from jira import JIRA, JIRAError

from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT, start_sandbox

SCRIPT = Path(__file__).with_name("jira_js_client.mjs")
_reached: list[tuple] = []
_recording: list[bool] = [False]


def _audit(event: str, args: tuple) -> None:
    # Python's own audit event for every socket connect: what the client really dialled, no mock.
    if event == "socket.connect" and _recording[0]:
        _reached.append(args[1])


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def site():
    with start_sandbox(projects=2, issues_per_project=30, seed=5) as running:
        yield running


@pytest.fixture
def client(site):
    _reached.clear()
    _recording[0] = True
    jira = JIRA(server=site.url, basic_auth=(ADMIN_EMAIL, ADMIN_TOKEN), max_retries=0, timeout=30)
    yield jira
    _recording[0] = False
    jira.close()
    port = site.port
    assert _reached, "no socket was opened"
    assert all(addr[:2] == ("127.0.0.1", port) for addr in _reached), _reached


def test_pycontribs_reads_what_a_backup_reads(client):
    keys = [i.key for i in client.enhanced_search_issues("project = PLAT ORDER BY key ASC", maxResults=0)]
    assert keys == [f"PLAT-{n}" for n in range(1, 31)]
    paged = client.enhanced_search_issues("project = PLAT ORDER BY key ASC", maxResults=7, fields="summary")
    assert [i.key for i in paged][:7] == keys[:7]
    assert client.approximate_issue_count("project = PLAT") == 30
    issue = client.issue("PLAT-3", expand="changelog,renderedFields,names")
    assert isinstance(issue.fields.description, str) and issue.fields.description  # v2: text, not ADF
    assert issue.changelog.histories and issue.changelog.total == len(issue.changelog.histories)
    assert issue.renderedFields.description.startswith("<")
    comments = client.comments("PLAT-3")
    assert comments and all(isinstance(c.body, str) for c in comments)
    for key in keys:
        worklogs = client.worklogs(key)
        if worklogs:
            break
    assert worklogs and all(w.timeSpentSeconds > 0 for w in worklogs)
    assert all(w.self.startswith(client.server_url + "/rest/api/2/") for w in worklogs)
    fields = client.fields()
    assert {"summary", "customfield_10011"} <= {f["id"] for f in fields}
    marks = requests.get(f"{client.server_url}/_sandbox/attachments?sha=1", timeout=30).json()
    healthy = next(m for m in marks if m["issue"].startswith("PLAT-") and m["size"] and not m["corrupt"])
    attachment = next(a for a in client.issue(healthy["issue"]).fields.attachment if a.id == healthy["id"])
    assert hashlib.sha256(attachment.get()).hexdigest() == healthy["sha256"]
    boards = client.boards()
    assert [b.name for b in boards] == ["PLAT board", "MOB board"]
    sprints = client.sprints(boards[0].id)
    assert [s.name for s in sprints] == [f"PLAT Sprint {n}" for n in range(1, 5)]


def test_pycontribs_writes_what_an_admin_script_writes(client):
    issue = client.create_issue(
        project="PLAT",
        summary="from pycontribs",
        description="line one\n\n*bold* two",
        issuetype={"name": "Task"},
    )
    assert client.issue(issue.key).fields.description == "line one\n\n*bold* two"
    client.add_comment(issue, "a plain comment\nwith two lines")
    assert [c.body for c in client.comments(issue)] == ["a plain comment\nwith two lines"]
    client.add_worklog(issue, timeSpent="1h 30m", comment="worked on it")
    [worklog] = client.worklogs(issue)
    assert (worklog.timeSpentSeconds, worklog.timeSpent, worklog.comment) == (5400, "1h 30m", "worked on it")
    client.add_attachment(issue, io.BytesIO("bytes ✓".encode()), filename="名前 (1).pdf")
    [attachment] = client.issue(issue.key).fields.attachment
    assert attachment.filename == "名前 (1).pdf"
    assert attachment.get() == "bytes ✓".encode()
    done = next(t for t in client.transitions(issue) if t["to"]["name"] == "Done")
    client.transition_issue(issue, done["id"])
    assert client.issue(issue.key).fields.status.name == "Done"
    issue.delete()
    with pytest.raises(JIRAError) as gone:
        client.issue(issue.key)
    assert gone.value.status_code == 404


def test_pycontribs_on_data_center_speaks_v2_only():
    with start_sandbox(projects=1, issues_per_project=12, seed=5, flavor="datacenter") as dc:
        jira = JIRA(server=dc.url, token_auth=ADMIN_TOKEN, max_retries=0, timeout=30)
        try:
            assert jira.server_info()["deploymentType"] == "Server"
            found = jira.search_issues("project = PLAT ORDER BY key ASC", maxResults=5)
            assert found.total == 12 and [i.key for i in found] == [f"PLAT-{n}" for n in range(1, 6)]
            everything = jira.search_issues("project = PLAT", maxResults=False)
            assert len(everything) == 12
            issue = jira.issue("PLAT-3")
            assert issue.self.startswith(dc.url + "/rest/api/2/")
            assert issue.fields.description is None or isinstance(issue.fields.description, str)
            for a in (a for i in everything for a in jira.issue(i.key).fields.attachment):
                assert a.content.startswith(dc.url + "/rest/api/2/attachment/content/")
        finally:
            jira.close()


@pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules" / "jira.js").is_dir(),
    reason="node or node_modules/jira.js is missing (make install runs npm ci)",
)
def test_jira_js_runs_a_backup_and_admin_script(site):
    run = subprocess.run(
        ["node", str(SCRIPT), site.url, ADMIN_EMAIL, ADMIN_TOKEN, "PLAT"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    errors = {k: v for k, v in out.items() if isinstance(v, dict) and "error" in v}
    assert not errors, errors
    assert out["myself"] == ADMIN_EMAIL and out["fields"] > 30
    assert out["search"]["keys"] == [f"PLAT-{n}" for n in range(1, 31)] and out["search"]["pages"] == 5
    assert out["searchPost"] == 5 and out["count"] == 30
    assert out["issue"] == {"key": "PLAT-3", "descriptionType": "doc", "histories": 6, "rendered": "string"}
    assert out["comments"] >= 0 and out["worklogs"] >= 0 and out["changelog"] == 6
    assert out["comment"] == "a comment from jira.js"
    assert out["worklog"] == {"seconds": 5400, "started": "2026-03-01T09:00:00.000+0100"}
    assert out["attach"]["filename"] == "名前 (1).txt" and out["download"] == "bytes from jira.js"
    assert out["transition"] == "Done" and out["delete"] == 404
    assert out["boards"] == ["PLAT board", "MOB board"]
    assert out["sprints"]["sprints"] == [f"PLAT Sprint {n}" for n in range(1, 5)]
    assert out["reached"] and all(r == f"127.0.0.1:{site.port}" for r in out["reached"]), out["reached"]
