"""Backup fixtures: a client for a sandbox site and an empty repository."""

from __future__ import annotations

import pytest
import requests

from backend.jira import JiraClient, JiraCredentials
from backend.repository import Repository
from backend.storage import open_storage
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN

PASSWORD = "backup-test-password"


def client_for(site, email: str = ADMIN_EMAIL, token: str = ADMIN_TOKEN, **kw) -> JiraClient:
    return JiraClient(JiraCredentials(site.url, email, token), backoff_base=0.01, **kw)


def sandbox_admin(site, method: str, path: str, body=None):
    r = requests.request(method, f"{site.url}/_sandbox/{path}", json=body, timeout=30)
    r.raise_for_status()
    return r.json() if r.content else None


@pytest.fixture
def repo(tmp_path) -> Repository:
    return Repository.init(open_storage(f"file://{tmp_path}/repo"), PASSWORD, pack_size=1 << 20)
