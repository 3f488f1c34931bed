"""A Jira API token never leaves the backend: not in responses, not in logs, not in the database file."""

from __future__ import annotations

import logging
from pathlib import Path

from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN

TENANT = "11111111-2222-4333-8444-555555555555"


def test_the_token_appears_in_no_response_log_line_or_database_byte(
    sqlite_backend, sandbox_site, caplog, tmp_path
):
    caplog.set_level(logging.DEBUG)
    b = sqlite_backend
    b.install(TENANT, sandbox_site.url)
    bodies = [
        b.call(
            "PUT",
            f"/api/v1/organisations/{TENANT}/account",
            TENANT,
            json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
        ).text
    ]
    run = b.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={}).json()
    b.wait_for_run(TENANT, run["id"])
    for path in (
        f"/api/v1/organisations/{TENANT}/account",
        f"/api/v1/organisations/{TENANT}/plans",
        f"/api/v1/organisations/{TENANT}/status",
        f"/api/v1/organisations/{TENANT}/runs",
        f"/api/v1/runs/{run['id']}",
        f"/api/v1/runs/{run['id']}/logs",
    ):
        bodies.append(b.call("GET", path, TENANT).text)
    bad = b.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN + "-wrong"},
    )
    bodies.append(bad.text)
    assert all(ADMIN_TOKEN not in body for body in bodies)
    assert ADMIN_TOKEN not in caplog.text and len(caplog.records) > 0
    database = Path(b.config.database_url.removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert ADMIN_TOKEN.encode() not in raw and ADMIN_EMAIL.encode() in raw  # the file was read for real
