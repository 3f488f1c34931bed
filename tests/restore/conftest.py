"""Restore fixtures: a sandbox site backed up into a repository, and a CLI runner."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from backend.backup import BackupSpec, run_backup
from backend.jira import JiraClient, JiraCredentials
from backend.repository import Repository
from backend.storage import open_storage
from keepstone.cli import main
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, start_sandbox

PASSWORD = "restore-test-password"


class Backed:
    """A sandbox site with one project backed up into a local repository."""

    def __init__(self, site, repo_url: str, repo: Repository, snapshot_id: str, project: str) -> None:
        self.site, self.repo_url, self.repo, self.snapshot_id, self.project = (
            site,
            repo_url,
            repo,
            snapshot_id,
            project,
        )
        self.client = JiraClient(JiraCredentials(site.url, ADMIN_EMAIL, ADMIN_TOKEN))

    def cli(self, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main([args[0], "--repo", self.repo_url, *args[1:]])
        return status, out.getvalue()

    def restore(self, *args: str) -> tuple[int, str]:
        return self.cli(
            "restore",
            "--snapshot",
            self.snapshot_id[:12],
            "--site",
            self.site.url,
            "--email",
            ADMIN_EMAIL,
            *args,
        )

    def restore_json(self, *args: str) -> dict:
        status, out = self.restore(*args, "--json")
        assert status == 0, out
        return json.loads(out)


@pytest.fixture
def backed(tmp_path, monkeypatch):
    monkeypatch.setenv("KEEPSTONE_REPO_PASSWORD", PASSWORD)
    monkeypatch.setenv("KEEPSTONE_JIRA_TOKEN", ADMIN_TOKEN)
    monkeypatch.chdir(tmp_path)  # journals go to ./var/restores
    with start_sandbox(projects=2, issues_per_project=40, seed=3, corrupt_share=0.0) as site:
        url = f"file://{tmp_path}/repo"
        repo = Repository.init(open_storage(url), PASSWORD)
        client = JiraClient(JiraCredentials(site.url, ADMIN_EMAIL, ADMIN_TOKEN))
        result = run_backup(
            client, repo, BackupSpec.from_dict({"projects": {"mode": "selected", "keys": ["PLAT"]}})
        )
        yield Backed(site, url, repo, result.projects[0].snapshot_id, "PLAT")
