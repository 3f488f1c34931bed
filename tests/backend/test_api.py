"""The backend API over real HTTP, on SQLite and PostgreSQL: tenants, accounts, plans, runs, errors."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, free_port

TENANT = "11111111-2222-4333-8444-555555555555"
OTHER = "99999999-2222-4333-8444-555555555555"


def test_install_creates_the_tenant_and_a_default_plan(backend, sandbox_site):
    org = backend.install(TENANT, sandbox_site.url, "Europe/Berlin")
    assert org["state"] == "active"
    plans = backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"]
    assert [p["is_default"] for p in plans] == [True]
    assert plans[0]["spec"]["data"]["changelog"] is False and plans[0]["next_run_at"]
    again = backend.call(
        "PUT", f"/api/v1/organisations/{TENANT}", TENANT, json={"site_url": sandbox_site.url}
    )
    assert again.status_code == 200  # idempotent
    assert len(backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"]) == 1


def test_a_run_backs_up_the_site_with_the_engine_and_a_forbidden_project_fails_alone(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    # saved while the admin's token is stored (the plan's keys are checked with it), then the token is
    # replaced by one that may not browse WEB: the run finds that out
    for email, token in ((ADMIN_EMAIL, ADMIN_TOKEN), ("viewer@example.com", "sandbox-viewer-token")):
        r = backend.call(
            "PUT",
            f"/api/v1/organisations/{TENANT}/account",
            TENANT,
            json={"email": email, "api_token": token},
        )
        assert r.status_code == 200, r.text
        if email != ADMIN_EMAIL:
            continue
        plan = backend.call(
            "POST",
            f"/api/v1/organisations/{TENANT}/plans",
            TENANT,
            json={
                "name": "Two projects",
                "schedule": {"days": ["mon"], "hour": 3},
                "spec": {"projects": {"mode": "selected", "keys": ["PLAT", "WEB"]}},
            },
        ).json()
    started = backend.call(
        "POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={"plan_id": plan["id"]}
    )
    assert started.status_code == 202, started.text
    run = backend.wait_for_run(TENANT, started.json()["id"])
    by = {p["project"]: p for p in run["projects"]}
    assert run["state"] == "partial"
    assert by["WEB"]["status"] == "failed" and "may not browse" in by["WEB"]["errors"][0]
    assert by["PLAT"]["status"] in ("ok", "warning") and by["PLAT"]["snapshot_id"]
    assert by["PLAT"]["counts"]["issues"] == 30
    status = backend.call("GET", f"/api/v1/organisations/{TENANT}/status", TENANT).json()
    assert status["protected_projects"] == 1  # PLAT's snapshot counts, WEB has none
    assert status["last_backup"] is None and status["last_attempt"]["state"] == "partial"
    assert (
        status["last_attempt"]["reason"].startswith("WEB: ")
        and "may not browse" in status["last_attempt"]["reason"]
    )
    logs = backend.call("GET", f"/api/v1/runs/{run['id']}/logs", TENANT).json()["items"]
    assert any(line["project"] == "WEB" and line["level"] == "error" for line in logs)


def test_backup_now_without_a_plan_uses_the_default_plan(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    backend.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
    )
    started = backend.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={})
    assert started.status_code == 202
    run = backend.wait_for_run(TENANT, started.json()["id"])
    assert run["state"] in ("succeeded", "warning")
    assert len(run["projects"]) == 3


def test_one_tenants_token_cannot_touch_another_tenant(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    r = backend.call("GET", f"/api/v1/organisations/{TENANT}/status", OTHER)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = backend.call("GET", f"/api/v1/organisations/{TENANT}/status")
    assert r.status_code == 401


BAD_PLANS = [
    ({"name": "x", "schedule": {"days": [], "hour": 3}}, "days"),
    ({"name": "x", "schedule": {"days": ["mon"], "hour": 25}}, "hour"),
    ({"name": "x", "schedule": {"days": ["funday"], "hour": 3}}, "days"),
    ({"name": "x", "schedule": {"cron": "61 * * * *"}}, "cron"),
    ({"name": "x", "schedule": {"days": ["mon"], "hour": 3, "time_zone": "Mars/Olympus"}}, "time_zone"),
    ({"name": "x", "schedule": {"days": ["mon"], "hour": "3"}}, "hour"),
    ({"name": "x", "schedule": {"days": ["mon"], "hour": 3}, "colour": "red"}, "colour"),
    ({"name": "x", "schedule": {"days": ["mon"], "hour": 3}, "spec": {"data": {"issues": "yes"}}}, "spec"),
    ({"schedule": {"days": ["mon"], "hour": 3}}, "name"),
]


@pytest.mark.parametrize("body, field", BAD_PLANS)
def test_impossible_plans_are_refused_and_nothing_is_stored(backend, sandbox_site, body, field):
    backend.install(TENANT, sandbox_site.url)
    r = backend.call("POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=body)
    assert r.status_code == 422, r.text
    assert field in str(r.json()["error"]["fields"])
    assert len(backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"]) == 1


def test_malformed_json_and_wrong_content_type_are_clear_400s(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    r = backend.call(
        "POST",
        f"/api/v1/organisations/{TENANT}/plans",
        TENANT,
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    r = backend.call("POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, data="name=x")
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


def test_wrong_tokens_and_unreachable_sites_store_nothing(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    r = backend.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": ADMIN_EMAIL, "api_token": "wrong-token"},
    )
    assert r.status_code == 422 and r.json()["error"]["fields"] == {"api_token": "rejected by Jira"}
    assert backend.call("GET", f"/api/v1/organisations/{TENANT}/account", TENANT).status_code == 404
    backend.install(OTHER, f"http://127.0.0.1:{free_port()}")
    r = backend.call(
        "PUT",
        f"/api/v1/organisations/{OTHER}/account",
        OTHER,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
    )
    assert r.status_code == 502 and "could not be reached" in r.json()["error"]["message"]
    assert backend.call("GET", f"/api/v1/organisations/{OTHER}/account", OTHER).status_code == 404


def test_editing_the_schedule_moves_the_next_run(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    plan = backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"][0]
    before = plan["next_run_at"]
    after = backend.call(
        "PATCH",
        f"/api/v1/plans/{plan['id']}",
        TENANT,
        json={"schedule": {"days": ["sat"], "hour": 23, "time_zone": "Asia/Tokyo"}},
    ).json()
    assert after["next_run_at"] != before
    assert after["next_run_at"].endswith("14:00:00+00:00")  # 23:00 in Tokyo
    status = backend.call("GET", f"/api/v1/organisations/{TENANT}/status", TENANT).json()
    assert status["next_backup_at"] == after["next_run_at"]


def test_pagination_and_the_openapi_document(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    assert backend.call("GET", f"/api/v1/organisations/{TENANT}/runs?limit=0", TENANT).status_code == 422
    page = backend.call("GET", f"/api/v1/organisations/{TENANT}/runs?limit=5", TENANT).json()
    assert page == {"items": [], "next_cursor": None}
    doc = backend.call("GET", "/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/api/v1/organisations/{cloud_id}/runs" in doc["paths"]
