"""A plan's rotation over real HTTP: applied after each run, logged, only to that plan's snapshots; bad ones 422."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backend import vault
from backend.db.models import Plan
from backend.repository import Repository
from backend.storage import open_storage
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN

TENANT = "11111111-2222-4333-8444-555555555555"
LEGACY = {"scheme": "gfs", "daily": 7, "weekly": 4, "monthly": 12, "yearly": 3}


def setup_org(backend, site) -> None:
    backend.install(TENANT, site.url, "Europe/Berlin")
    r = backend.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
    )
    assert r.status_code == 200, r.text


def make_plan(backend, name: str, rotation: dict | None) -> dict:
    body = {
        "name": name,
        "schedule": {"days": ["mon"], "hour": 3},
        "spec": {"projects": {"mode": "selected", "keys": ["PLAT"]}, "data": {"attachments": False}},
    }
    if rotation is not None:
        body["rotation"] = rotation
    r = backend.call("POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def run(backend, plan: dict) -> tuple[str, list[dict]]:
    started = backend.call(
        "POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={"plan_id": plan["id"]}
    )
    assert started.status_code == 202, started.text
    done = backend.wait_for_run(TENANT, started.json()["id"])
    assert done["state"] in ("succeeded", "warning"), done
    logs = backend.call("GET", f"/api/v1/runs/{done['id']}/logs", TENANT).json()["items"]
    return done["projects"][0]["snapshot_id"], [line for line in logs if "rotation" in line["message"]]


def test_each_run_applies_its_plans_rotation_to_its_own_snapshots_and_logs_it(sqlite_backend, sandbox_site):
    backend = sqlite_backend
    setup_org(backend, sandbox_site)
    a = make_plan(backend, "Critical", {"scheme": "custom", "keep_last": 1})
    assert a["rotation"] == {"scheme": "custom", "keep_last": 1}
    b = make_plan(backend, "Archive", None)
    assert b["rotation"] == {
        "scheme": "gfs",
        "keep_daily": 7,
        "keep_weekly": 4,
        "keep_monthly": 12,
        "keep_yearly": 3,
    }
    svc = backend.app.extensions["keepstone"]
    with svc.db.session() as s:  # a plan stored before the keep_* names
        s.scalar(select(Plan).where(Plan.public_id == b["id"])).rotation = dict(LEGACY)
        s.commit()
    a1, logs = run(backend, a)
    assert any(line["project"] == "PLAT" and "kept 1 of 1" in line["message"] for line in logs), logs
    repo = Repository.open(
        open_storage(a["storage_url"]), vault.repository_password(backend.config.secret_key, TENANT)
    )
    b1, logs = run(backend, b)  # b's rotation sees only b's snapshot: a1 is another plan's
    assert any("kept 1 of 1" in line["message"] for line in logs), logs
    a2, logs = run(backend, a)
    plat = [line["message"] for line in logs if line["project"] == "PLAT"]
    assert plat == [f"rotation PLAT: kept 1 of 2 (last: {a2[:8]}); forgot 1: {a1[:8]}"], logs
    assert any(
        "custom: last 1 (periods in Europe/Berlin): kept 1, forgot 1" in line["message"] for line in logs
    )
    assert {s.id for s in repo.snapshots("PLAT")} == {b1, a2}
    b2, logs = run(backend, b)  # the legacy gfs dict: both of today's snapshots share a day; the newest stays
    plat = [line["message"] for line in logs if line["project"] == "PLAT"]
    assert plat[0].startswith(f"rotation PLAT: kept 1 of 2 (daily, weekly, monthly, yearly: {b2[:8]})"), plat
    assert {s.id for s in repo.snapshots("PLAT")} == {a2, b2}
    meta = repo.snapshot(b2).info.meta
    assert meta["plan"] == b["id"] and meta["run"].startswith("run_")


def test_an_unlimited_plan_forgets_nothing_and_says_so(sqlite_backend, sandbox_site):
    backend = sqlite_backend
    setup_org(backend, sandbox_site)
    plan = make_plan(backend, "Forever", {"scheme": "unlimited"})
    _, logs = run(backend, plan)
    assert [line["message"] for line in logs] == ["rotation unlimited: nothing is ever forgotten"]


BAD_ROTATIONS = [
    ({"scheme": "gfs", "keep_daily": -1}, "keep_daily"),
    ({"scheme": "gfs", "keep_daily": "7"}, "keep_daily"),
    ({"scheme": "gfs", "keep_fortnightly": 2}, "keep_fortnightly"),
    ({"scheme": "gfs", "keep_last": 2}, "keep_last"),
    ({"scheme": "custom"}, "keep_last"),
    ({"scheme": "custom", "keep_within": "30 days"}, "keep_within"),
    ({"scheme": "custom", "keep_within": "0d"}, "keep_within"),
    ({"scheme": "unlimited", "keep_daily": 3}, "keep_daily"),
    ({"scheme": "forever"}, "scheme"),
    ({"keep_daily": 3}, "scheme"),
    ({"scheme": "gfs", "daily": -2}, "daily"),
]


@pytest.mark.parametrize("rotation, field", BAD_ROTATIONS)
def test_bad_rotations_are_422_naming_the_field_and_store_nothing(
    sqlite_backend, sandbox_site, rotation, field
):
    backend = sqlite_backend
    backend.install(TENANT, sandbox_site.url)
    body = {"name": "x", "schedule": {"days": ["mon"], "hour": 3}, "rotation": rotation}
    r = backend.call("POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["fields"]["rotation"], r.json()
    assert len(backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"]) == 1
    plan = backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"][0]
    r = backend.call("PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={"rotation": rotation})
    assert r.status_code == 422 and field in r.json()["error"]["fields"]["rotation"], r.text


def test_legacy_names_are_accepted_and_stored_in_the_keep_form(sqlite_backend, sandbox_site):
    backend = sqlite_backend
    backend.install(TENANT, sandbox_site.url)
    plan = backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"][0]
    r = backend.call(
        "PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={"rotation": {"scheme": "gfs", "daily": 3}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["rotation"] == {"scheme": "gfs", "keep_daily": 3}
    r = backend.call(
        "PATCH",
        f"/api/v1/plans/{plan['id']}",
        TENANT,
        json={"rotation": {"scheme": "custom", "keep_last": 3, "keep_within": "2w", "keep_hourly": 24}},
    )
    assert r.json()["rotation"] == {
        "scheme": "custom",
        "keep_last": 3,
        "keep_hourly": 24,
        "keep_within": "2w",
    }
