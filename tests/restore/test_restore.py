"""Restores against the sandbox over real HTTP: round trip with a fidelity report, single issues, dry run."""

from __future__ import annotations

import requests

from tests.restore.conftest import Backed


def sandbox(b: Backed, method: str, path: str, body=None):
    r = requests.request(method, f"{b.site.url}/_sandbox/{path}", json=body, timeout=30)
    r.raise_for_status()
    return r.json() if r.content else None


def project_issues(b: Backed, key: str) -> list[str]:
    return next((p["issues"] for p in sandbox(b, "GET", "site")["projects"] if p["key"] == key), [])


def test_deleted_project_restores_into_a_new_project_with_full_fidelity(backed):
    sandbox(backed, "POST", "delete", {"project": "PLAT"})
    out = backed.restore_json("--project", "--new-project", "PLATR", "--report")
    fidelity = out["fidelity"]
    assert fidelity["issues"] == 40 == len(project_issues(backed, "PLATR"))
    assert fidelity["fields"]["identical_share"] >= 0.99, fidelity["fields"]
    assert not fidelity["status"]["changed"] and not fidelity["hierarchy"]["changed"]
    assert not fidelity["links"]["changed"]
    for part in ("comments", "worklogs"):
        assert fidelity[part]["identical"] == fidelity[part]["backed_up"] > 0
    assert fidelity["attachments"]["byte_identical"] == fidelity["attachments"]["backed_up"] > 0
    # What the API cannot set is kept visibly: label, property, original author in comment notes.
    new_key = out["mapping"]["PLAT-7"]
    issue = backed.client.get_json(f"/rest/api/3/issue/{new_key}")
    assert "restored-from-PLAT-7" in issue["fields"]["labels"]
    prop = backed.client.get_json(f"/rest/api/3/issue/{new_key}/properties/keepstone.restore")["value"]
    assert prop["originalKey"] == "PLAT-7" and prop["created"]


def test_the_printed_report_names_the_figures(backed):
    sandbox(backed, "POST", "delete", {"project": "PLAT"})
    status, out = backed.restore("--project", "--new-project", "NEWP", "--report")
    assert status == 0, out
    assert "fidelity: 40 issues restored" in out and "byte-identical" in out and "(100.00%)" in out


def test_a_deleted_issue_comes_back_into_the_original_project_and_others_are_left_alone(backed):
    sandbox(backed, "POST", "delete", {"issues": ["PLAT-5"]})
    before = set(project_issues(backed, "PLAT"))
    out = backed.restore_json("--issues", "PLAT-5,PLAT-6", "--original")
    assert out["created"]["issues"] == 1
    assert out["skipped"] == {"issues that still exist": 1}
    after = set(project_issues(backed, "PLAT"))
    assert len(after - before) == 1
    new_key = out["mapping"]["PLAT-5"]
    assert new_key != "PLAT-5" and new_key.startswith("PLAT-")


def test_dry_run_shows_the_plan_and_changes_nothing(backed):
    sandbox(backed, "POST", "delete", {"project": "PLAT"})
    sandbox(backed, "POST", "stats/reset")
    status, out = backed.restore("--project", "--new-project", "DRY", "--dry-run")
    assert status == 0
    assert "into a new project DRY" in out and "issues: 40" in out and "note:" in out
    endpoints = sandbox(backed, "GET", "stats")["endpoints"]
    assert not any(name.startswith(("POST", "PUT", "DELETE")) for name in endpoints)


def test_running_a_finished_restore_again_creates_nothing(backed):
    sandbox(backed, "POST", "delete", {"project": "PLAT"})
    first = backed.restore_json("--project", "--new-project", "AGAIN")
    second = backed.restore_json("--project", "--new-project", "AGAIN")
    assert first["created"]["issues"] == 40
    assert "issues" not in second["created"] and second["skipped"]["issues already restored"] == 40
    assert len(project_issues(backed, "AGAIN")) == 40


def test_restore_to_the_original_of_a_deleted_project_says_what_to_do(backed):
    sandbox(backed, "POST", "delete", {"project": "PLAT"})
    status, _ = backed.restore("--project", "--original")
    assert status == 1


def test_unknown_issue_keys_are_a_clear_usage_error(backed, capsys):
    status, _ = backed.restore("--issues", "PLAT-999", "--original")
    assert status == 2
    assert "not in snapshot" in capsys.readouterr().err


def test_history_and_diff_show_an_issues_versions(backed):
    from backend.backup import BackupSpec, run_backup

    sandbox(backed, "POST", "mutate", {"share": 1.0, "project": "PLAT"})
    second = (
        run_backup(
            backed.client,
            backed.repo,
            BackupSpec.from_dict({"projects": {"mode": "selected", "keys": ["PLAT"]}}),
        )
        .projects[0]
        .snapshot_id
    )
    status, out = backed.cli("history", "PLAT-3")
    assert status == 0 and len(out.strip().splitlines()) == 2
    status, out = backed.cli("diff", "PLAT-3", backed.snapshot_id[:10], second[:10])
    assert status == 0
    assert "summary:" in out and "(edited)" in out and "labels:" in out and "added" in out
