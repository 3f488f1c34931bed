"""`keepstone backup` as a real process: each kind of trouble is one clear line, and nothing stored is lost."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.repository import Repository
from backend.storage import open_storage
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT, free_port

PASSWORD = "cli-test-password"


def keepstone(*args: str, token: str = ADMIN_TOKEN, password: str = PASSWORD) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KEEPSTONE_REPO_PASSWORD": password,
        "KEEPSTONE_JIRA_TOKEN": token,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "keepstone.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file of a repository folder and a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def backed_up(sandbox_site, tmp_path) -> tuple[str, Path]:
    """A repository holding one good backup of PLAT, and its storage folder."""
    url = f"file://{tmp_path}/repo"
    done = backup(sandbox_site.url, url, "--init", "--projects", "PLAT")
    assert done.returncode == 0, done.stderr
    return url, tmp_path / "repo"


def backup(site_url: str, repo_url: str, *more: str, **kw) -> subprocess.CompletedProcess:
    return keepstone("backup", "--repo", repo_url, "--site", site_url, "--email", ADMIN_EMAIL, *more, **kw)


def test_bad_credentials_are_named_and_store_nothing(sandbox_site, backed_up):
    url, folder = backed_up
    before = fingerprint(folder)
    done = backup(sandbox_site.url, url, token="not-the-token")
    assert done.returncode == 1
    assert "keepstone: Jira refused the credentials for admin@example.com" in done.stderr
    assert fingerprint(folder) == before


def test_an_unreachable_site_is_one_clear_line(backed_up):
    url, folder = backed_up
    before = fingerprint(folder)
    done = backup(f"http://127.0.0.1:{free_port()}", url)
    assert done.returncode == 1
    assert "cannot be reached: Connection refused" in done.stderr
    assert "Traceback" not in done.stderr and "HTTPConnectionPool" not in done.stderr
    assert fingerprint(folder) == before


def test_a_site_that_is_not_jira_is_said_so(sandbox_site, backed_up):
    url, _ = backed_up
    done = backup(sandbox_site.url + "/not-jira", url)
    assert done.returncode == 1
    assert "does not answer like a Jira site" in done.stderr
    assert "<html" not in done.stderr.lower()


def test_an_unknown_project_fails_alone(sandbox_site, backed_up):
    url, _ = backed_up
    done = backup(sandbox_site.url, url, "--projects", "NOPE,PLAT")
    assert done.returncode == 1  # the run is partial: one of its projects failed
    assert "project NOPE does not exist or this account may not browse it" in done.stdout
    assert len(Repository.open(open_storage(url), PASSWORD).snapshots("PLAT")) == 2  # PLAT went on


def test_a_locked_repository_is_refused_and_left_as_it_is(sandbox_site, backed_up):
    url, folder = backed_up
    repo = Repository.open(open_storage(url), PASSWORD)
    with repo.lock(exclusive=True):
        before = fingerprint(folder)
        done = backup(sandbox_site.url, url)
        assert fingerprint(folder) == before
    assert done.returncode == 1
    assert "lock" in done.stderr.lower() and "Traceback" not in done.stderr


def test_a_corrupt_repository_is_refused_and_left_as_it_is(sandbox_site, backed_up):
    url, folder = backed_up
    index_file = next((folder / "index").iterdir())
    index_file.write_bytes(index_file.read_bytes()[:-3] + b"xyz")
    before = fingerprint(folder)
    done = backup(sandbox_site.url, url)
    assert done.returncode == 1
    assert "index files are damaged" in done.stderr and "keepstone check" in done.stderr
    assert fingerprint(folder) == before


def test_a_wrong_repository_password_is_refused(sandbox_site, backed_up):
    url, folder = backed_up
    before = fingerprint(folder)
    done = backup(sandbox_site.url, url, password="wrong")
    assert done.returncode == 1
    assert "password" in done.stderr and "Traceback" not in done.stderr
    assert fingerprint(folder) == before


def test_init_creates_no_repository_when_jira_refuses_the_credentials(sandbox_site, tmp_path):
    done = backup(sandbox_site.url, f"file://{tmp_path}/new", "--init", token="not-the-token")
    assert done.returncode == 1 and "refused the credentials" in done.stderr
    assert not [p for p in (tmp_path / "new").rglob("*") if p.is_file()]  # no config, no keys: no repository
