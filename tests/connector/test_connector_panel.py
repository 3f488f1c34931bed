"""The panel's actions over HTTP: each becomes a backend call for the token's tenant, and nothing else."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests


def _call(stack, method: str, path: str, body: dict | None = None) -> requests.Response:
    headers = {"Authorization": f"JWT {stack.context_token()}"}
    return requests.request(method, stack.url + path, json=body, headers=headers, timeout=30)


def _orgs(stack) -> dict:
    return stack.backend_state()[0]


def test_status_shows_the_backend_figures_and_the_schedule(installed):
    r = _call(installed, "GET", "/panel/api/status")
    assert r.status_code == 200
    data = r.json()
    assert data["protected_projects"] == 0 and data["state"] == "never backed up"
    assert data["service_region"] and data["storage_region"] and data["next_backup_at"]
    assert data["schedule"]["hour"] == 2 and len(data["schedule"]["days"]) == 7


def test_edit_changes_the_schedule_and_the_next_backup(installed):
    before = _call(installed, "GET", "/panel/api/status").json()["next_backup_at"]
    r = _call(installed, "PUT", "/panel/api/schedule", {"days": ["fri", "mon"], "hour": 23})
    assert r.status_code == 200
    assert r.json()["schedule"] == {"days": ["mon", "fri"], "hour": 23, "time_zone": "UTC"}
    assert r.json()["next_backup_at"] != before


@pytest.mark.parametrize(
    "body",
    [
        {"days": [], "hour": 3},
        {"days": ["funday"], "hour": 3},
        {"days": ["mon"], "hour": 24},
        {"days": ["mon"], "hour": "3"},
        {},
    ],
)
def test_invalid_schedule_is_refused_without_a_backend_change(installed, body):
    cloud_id = installed.info()["cloudId"]
    before = dict(_orgs(installed)[cloud_id]["plan"]["schedule"])
    r = _call(installed, "PUT", "/panel/api/schedule", body)
    assert r.status_code == 400 and r.json()["error"]["fields"]
    assert _orgs(installed)[cloud_id]["plan"]["schedule"] == before


def test_backup_now_starts_a_run_whose_progress_can_be_read(installed):
    _call(
        installed,
        "PUT",
        "/panel/api/account",
        {"email": "admin@example.com", "api_token": "sandbox-admin-token"},
    )
    r = _call(installed, "POST", "/panel/api/backup", {})
    assert r.status_code == 202
    run_id = r.json()["id"]
    deadline = time.monotonic() + 60
    run = r.json()
    while run["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        run = _call(installed, "GET", f"/panel/api/runs/{run_id}").json()
    assert run["state"] in ("succeeded", "warning")
    assert run["progress"]["projects_done"] == run["progress"]["projects_total"] == 2
    status = _call(installed, "GET", "/panel/api/status").json()
    assert status["protected_projects"] == 2 and status["last_backup_at"]
    again = _call(installed, "POST", "/panel/api/backup", {})
    assert again.status_code == 202  # the previous run is over, so a new one may start


def test_settings_passes_the_token_through_and_the_connector_keeps_no_copy(installed, tmp_path):
    wrong = _call(
        installed, "PUT", "/panel/api/account", {"email": "admin@example.com", "api_token": "wrong"}
    )
    assert wrong.status_code == 422 and wrong.json()["error"]["fields"] == {"api_token": "rejected by Jira"}
    right = _call(
        installed,
        "PUT",
        "/panel/api/account",
        {"email": "admin@example.com", "api_token": "sandbox-admin-token"},
    )
    assert right.status_code == 200
    account = _call(installed, "GET", "/panel/api/account").json()
    assert account["email"] == "admin@example.com" and "api_token" not in account
    database = Path(installed.app.extensions["connector"].config.database_url.removeprefix("sqlite:///"))
    assert database.exists() and b"sandbox-admin-token" not in database.read_bytes()


def test_more_features_posts_a_one_time_token_to_the_backend(installed):
    r = requests.post(installed.url + "/panel/more", data={"jwt": installed.context_token()}, timeout=10)
    assert r.status_code == 200
    action = re.search(r"action='([^']+)'", r.text).group(1)
    assert action == installed.backend.url + "/sso"
    assert f"form-action {installed.backend.url}" in r.headers["Content-Security-Policy"]
    assert "token=" not in r.headers.get("Location", "")


def test_backend_down_is_a_clear_502(installed):
    installed.backend.stop()
    r = _call(installed, "GET", "/panel/api/status")
    assert r.status_code == 502 and r.json()["error"]["code"] == "backend_unavailable"
