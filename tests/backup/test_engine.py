"""The backup engine against the sandbox over real HTTP: full, incremental, granular failures, policies."""

from __future__ import annotations

import hashlib

import pytest

from backend.backup import BackupSpec, SpecError, backup_project, run_backup
from backend.repository import Repository
from backend.storage import MemoryStorage, PermanentError
from tests.backup.conftest import client_for, sandbox_admin
from tests.conftest import start_sandbox


def issue_keys(repo, snapshot_id: str) -> set[str]:
    return {e.name.split("/", 1)[1] for e in repo.snapshot(snapshot_id).iter_entries() if e.kind == "issue"}


def test_full_backup_holds_every_issue_with_its_comments_and_attachments(fresh_site, repo):
    result = run_backup(client_for(fresh_site), repo, BackupSpec.from_dict({"corrupt_attachments": "skip"}))
    assert result.status in ("ok", "warning"), result.to_dict()
    site = sandbox_admin(fresh_site, "GET", "site")
    attachments = {a["id"]: a for a in sandbox_admin(fresh_site, "GET", "attachments?sha=1")}
    for project in site["projects"]:
        done = next(p for p in result.projects if p.project == project["key"])
        assert issue_keys(repo, done.snapshot_id) == set(project["issues"])
        snap = repo.snapshot(done.snapshot_id)
        assert snap.entry("project") and snap.entry("config/components") and snap.entry("site/fields")
        for entry in snap.iter_entries():
            if entry.kind == "attachment":
                a = attachments[entry.attrs["id"]]
                assert a["corrupt"] is None and entry.size == a["size"]
                assert hashlib.sha256(repo.read_bytes(entry)).hexdigest() == a["sha256"]
    snap = repo.snapshot(result.projects[0].snapshot_id)
    descriptions = [
        repo.read_json(e)["fields"]["description"] for e in snap.iter_entries() if e.kind == "issue"
    ]
    assert all(d is None or d["type"] == "doc" for d in descriptions)  # ADF kept as is
    assert any(d is not None for d in descriptions)
    assert repo.check(read_data=True).ok


def test_incremental_run_fetches_only_changed_issues_and_records_deletions(fresh_site, repo):
    client = client_for(fresh_site)
    spec = BackupSpec.from_dict({"projects": {"mode": "selected", "keys": ["PLAT"]}})
    first = run_backup(client, repo, spec).projects[0]
    changed = sandbox_admin(fresh_site, "POST", "mutate", {"share": 0.2, "seed": 3, "project": "PLAT"})[
        "changed"
    ]
    gone = next(
        k for k in sandbox_admin(fresh_site, "GET", "site")["projects"][0]["issues"] if k not in changed
    )
    sandbox_admin(fresh_site, "POST", "delete", {"issues": [gone]})
    sandbox_admin(fresh_site, "POST", "stats/reset")
    second = run_backup(client, repo, spec).projects[0]
    endpoints = sandbox_admin(fresh_site, "GET", "stats")["endpoints"]
    assert second.counts["fetched"] == len(changed)
    assert second.counts["carried"] == first.counts["issues"] - len(changed) - 1
    assert repo.snapshot(second.snapshot_id).info.meta["deleted"] == [gone]
    assert endpoints["POST /rest/api/3/issue/bulkfetch"]["requests"] == 1  # the changed issues, in one call
    assert not any("attachment/content" in name for name in endpoints)  # unchanged attachments: no download
    assert second.new_bytes < first.new_bytes / 3
    doc = repo.read_json(repo.snapshot(second.snapshot_id).entry(f"issues/{changed[0]}"))
    assert doc["fields"]["summary"].endswith("(edited)")
    assert issue_keys(repo, second.snapshot_id) == issue_keys(repo, first.snapshot_id) - {gone}
    # Every item of every remaining issue is still there, edited or not (the attachments of edited issues
    # carried by reference), and nothing of the deleted one is.
    first_names, second_names = (
        {e.name for e in repo.snapshot(sid).iter_entries()} for sid in (first.snapshot_id, second.snapshot_id)
    )
    with_attachments = {n.split("/")[1] for n in first_names if n.startswith("attachments/")}
    assert with_attachments & set(changed)  # the case is really exercised
    assert second_names == {n for n in first_names if gone not in n.split("/")[1:2]}


def test_a_project_the_account_cannot_browse_fails_alone(sandbox_site, repo):
    hidden = sandbox_admin(sandbox_site, "GET", "site")["projects"][-1]["key"]
    viewer = client_for(sandbox_site, "viewer@example.com", "sandbox-viewer-token")
    spec = BackupSpec.from_dict({"projects": {"mode": "selected", "keys": ["PLAT", hidden]}})
    result = run_backup(viewer, repo, spec)
    by_key = {p.project: p for p in result.projects}
    assert result.status == "partial"
    assert by_key[hidden].status == "failed" and "may not browse" in by_key[hidden].errors[0]
    assert by_key["PLAT"].status in ("ok", "warning") and by_key["PLAT"].snapshot_id


def test_corrupted_attachments_are_skipped_and_listed(repo):
    with start_sandbox(
        projects=1,
        issues_per_project=40,
        seed=5,
        attachment_share=0.9,
        corrupt_share=0.4,
        attachment_max_bytes=50_000,
    ) as site:
        corrupt = {a["id"] for a in sandbox_admin(site, "GET", "attachments") if a["corrupt"]}
        assert corrupt
        result = run_backup(client_for(site), repo, BackupSpec.from_dict({}))
    project = result.projects[0]
    assert project.status == "warning"
    skipped = {s["id"] for s in repo.snapshot(project.snapshot_id).info.meta["skipped_attachments"]}
    assert skipped == corrupt
    stored = {
        e.attrs["id"] for e in repo.snapshot(project.snapshot_id).iter_entries() if e.kind == "attachment"
    }
    assert not stored & corrupt


def test_corrupted_attachments_can_fail_the_project_instead(repo):
    with start_sandbox(
        projects=1,
        issues_per_project=30,
        seed=5,
        attachment_share=0.9,
        corrupt_share=0.4,
        attachment_max_bytes=20_000,
    ) as site:
        result = run_backup(client_for(site), repo, BackupSpec.from_dict({"corrupt_attachments": "fail"}))
    assert result.projects[0].status == "failed"
    assert "corrupted" in result.projects[0].errors[0]
    assert repo.snapshots() == []  # nothing half-written


def test_5xx_bursts_and_429_storms_are_ridden_out(repo):
    with start_sandbox(
        projects=2, issues_per_project=30, seed=9, fault_rate=0.08, rate_limit=60, burst=10, corrupt_share=0.0
    ) as site:
        result = run_backup(client_for(site), repo, BackupSpec.from_dict({}))
        stats = sandbox_admin(site, "GET", "stats")["totals"]
        expected = {p["key"]: set(p["issues"]) for p in sandbox_admin(site, "GET", "site")["projects"]}
    assert stats["errors"] > 0 or stats["rate_limited"] > 0
    assert result.status == "ok", result.to_dict()
    for p in result.projects:
        assert issue_keys(repo, p.snapshot_id) == expected[p.project]


def test_exclusion_jql_leaves_matching_issues_out(sandbox_site, repo):
    spec = BackupSpec.from_dict(
        {"projects": {"mode": "selected", "keys": ["PLAT"]}, "exclude_jql": "issuetype = Bug"}
    )
    result = run_backup(client_for(sandbox_site), repo, spec)
    snap = repo.snapshot(result.projects[0].snapshot_id)
    types = {
        repo.read_json(e)["fields"]["issuetype"]["name"] for e in snap.iter_entries() if e.kind == "issue"
    }
    assert "Bug" not in types and types


class FailingStorage(MemoryStorage):
    """A storage whose data writes start failing: the edge we cannot break for real here."""

    def save(self, kind, name, data, exclusive=False):
        if kind == "data":
            raise PermanentError("disk full (simulated)")
        super().save(kind, name, data, exclusive)


def test_storage_failure_fails_the_project_clearly(sandbox_site):
    repo = Repository.init(FailingStorage(), "pw", pack_size=64 * 1024)
    result = backup_project(client_for(sandbox_site), repo, BackupSpec.from_dict({}), "PLAT")
    assert result.status == "failed"
    assert result.errors[0].startswith("storage:") and "disk full" in result.errors[0]
    assert repo.snapshots() == []


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"projects": {"mode": "some"}}, "projects.mode"),
        ({"projects": {"mode": "selected"}}, "projects.keys"),
        ({"data": {"issues": "yes"}}, "data.issues"),
        ({"data": {"sprints2": True}}, "data.sprints2"),
        ({"max_workers": 0}, "max_workers"),
        ({"colour": "blue"}, "colour"),
        ({"projects": {"mode": "rule"}}, "projects"),
        ({"projects": {"mode": "rule", "name_pattern": "("}}, "projects.name_pattern"),
    ],
)
def test_bad_specs_are_refused_with_the_field_named(raw, field):
    with pytest.raises(SpecError) as e:
        BackupSpec.from_dict(raw)
    assert field in e.value.fields


def test_dependencies_are_resolved_and_explained():
    spec = BackupSpec.from_dict({"data": {"issues": False, "attachments": True}})
    data, notes = spec.resolved()
    assert data["issues"] is True
    assert any("need issues" in n for n in notes)


def test_rule_selection_by_key_pattern_and_type(sandbox_site, repo):
    spec = BackupSpec.from_dict(
        {"projects": {"mode": "rule", "key_pattern": "P*", "project_types": ["software"]}}
    )
    result = run_backup(client_for(sandbox_site), repo, spec)
    assert [p.project for p in result.projects] == ["PLAT"]
