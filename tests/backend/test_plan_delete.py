"""DELETE /api/v1/plans/{plan_id} over real HTTP: the plan and its run history go, its snapshots stay."""

from __future__ import annotations

from sqlalchemy import func, select

from backend.db.models import CatalogSnapshot, Run, RunLog
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN

TENANT = "11111111-2222-4333-8444-555555555555"
OTHER = "99999999-2222-4333-8444-555555555555"


def count(backend, model) -> int:
    with backend.app.extensions["keepstone"].db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_plan_is_deleted_with_its_runs_and_its_snapshots_stay(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    backend.install(OTHER, sandbox_site.url)
    r = backend.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
    )
    assert r.status_code == 200, r.text
    plan = backend.call(
        "POST",
        f"/api/v1/organisations/{TENANT}/plans",
        TENANT,
        json={
            "name": "Platform",
            "schedule": {"days": ["mon"], "hour": 3},
            "spec": {"projects": {"mode": "selected", "keys": ["PLAT"]}},
        },
    ).json()
    started = backend.call(
        "POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={"plan_id": plan["id"]}
    )
    run = backend.wait_for_run(TENANT, started.json()["id"])
    snapshot = run["projects"][0]["snapshot_id"]
    assert snapshot and count(backend, RunLog) > 0

    # another tenant's token: the same 404 as a plan that does not exist, and nothing is deleted
    assert backend.call("DELETE", f"/api/v1/plans/{plan['id']}", OTHER).status_code == 404
    assert backend.call("GET", f"/api/v1/plans/{plan['id']}", TENANT).status_code == 200

    assert backend.call("DELETE", f"/api/v1/plans/{plan['id']}", TENANT).status_code == 204
    with backend.app.extensions["keepstone"].db.session() as s:  # the snapshot stays in the catalog too
        row = s.scalar(select(CatalogSnapshot).where(CatalogSnapshot.snapshot_id == snapshot))
        assert row is not None and row.plan_id is None
    assert backend.call("GET", f"/api/v1/plans/{plan['id']}", TENANT).status_code == 404
    assert backend.call("DELETE", f"/api/v1/plans/{plan['id']}", TENANT).status_code == 404
    assert backend.call("GET", f"/api/v1/runs/{run['id']}", TENANT).status_code == 404
    assert count(backend, Run) == 0 and count(backend, RunLog) == 0

    # the snapshot the deleted plan wrote is still in its repository, readable
    svc = backend.app.extensions["keepstone"]
    repo = svc.runs._repository(plan["storage_url"], TENANT)
    assert snapshot in [info.id for info in repo.snapshots("PLAT")]


def test_the_default_plan_is_not_deleted(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    default = backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"][0]
    r = backend.call("DELETE", f"/api/v1/plans/{default['id']}", TENANT)
    assert r.status_code == 409 and "disable it" in r.json()["error"]["message"]
    assert backend.call("GET", f"/api/v1/plans/{default['id']}", TENANT).status_code == 200
