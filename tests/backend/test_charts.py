"""The dashboard's chart endpoints over real HTTP: figures from seeded runs and catalog rows, the archived
projects (catalogued, no longer listed by a plan's latest run), bad arguments, another tenant's 404."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from backend.db.models import CatalogSnapshot, Organisation, ProjectRun, Run
from tests.backend.conftest import Backend, make_backend, stop_backend
from tests.conftest import ROOT

TENANT = "11111111-2222-4333-8444-555555555555"
OTHER = "99999999-2222-4333-8444-555555555555"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def charted(tmp_path_factory, issuer) -> Iterator[Backend]:
    b = make_backend(tmp_path_factory.mktemp("charts"), issuer)
    b.install(TENANT, "https://acme.atlassian.net")
    b.install(OTHER, "https://other.atlassian.net")
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    with b.app.extensions["keepstone"].db.session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == TENANT))
        plan = org.plans[0]

        def run(
            days_ago: int, state: str, minutes: int, projects: dict[str, str], only: bool = False
        ) -> None:
            r = Run(organisation_id=org.id, plan_id=plan.id, trigger="manual", state=state)
            r.progress = {"only": sorted(projects)} if only else {}
            r.created = r.started = now - timedelta(days=days_ago)
            r.finished = r.started + timedelta(minutes=minutes)
            s.add(r)
            s.flush()
            for key, status in projects.items():
                snapshot = f"snap-{key}-{days_ago}" if status == "ok" else None
                s.add(ProjectRun(run_id=r.id, project=key, status=status, snapshot_id=snapshot))

        run(3, "succeeded", 2, {"OLD": "ok", "PLAT": "ok"})
        run(2, "failed", 1, {"PLAT": "failed"})
        run(1, "warning", 4, {"PLAT": "ok", "OPS": "failed"})
        run(0, "succeeded", 3, {"PLAT": "ok", "OPS": "ok"})
        run(0, "cancelled", 1, {"PLAT": "cancelled", "OPS": "ok", "NEW": "failed"})
        run(0, "failed", 1, {"NEW": "failed"}, only=True)  # a retry of NEW: not the plan's selection

        def snap(project: str, days_ago: int, size: int, new: int) -> None:
            s.add(
                CatalogSnapshot(
                    organisation_id=org.id,
                    plan_id=plan.id,
                    repository="repo-1",
                    snapshot_id=f"snap-{project}-{days_ago}",
                    project=project,
                    time=now - timedelta(days=days_ago),
                    issues=10,
                    size=size,
                    counts={"attachment_bytes": new},
                )
            )

        snap("OLD", 3, 5 * MiB, 2 * MiB)
        snap("PLAT", 3, 10 * MiB, 4 * MiB)
        snap("PLAT", 1, 12 * MiB, 1 * MiB)
        snap("PLAT", 0, 13 * MiB, 1 * MiB)
        snap("OPS", 0, 3 * MiB, 3 * MiB)
        s.commit()
    yield b
    stop_backend(b)


def get(b: Backend, what: str, tenant: str = TENANT, **params) -> dict:
    r = b.call("GET", f"/api/v1/organisations/{tenant}/charts/{what}", tenant, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_backups_a_day_count_runs_by_outcome(charted):
    d = get(charted, "backups", days=5)
    assert len(d["days"]) == 5 and d["days"][-1] == datetime.now(UTC).date().isoformat()
    assert d["succeeded"] == [0, 1, 0, 0, 1]
    assert d["warning"] == [0, 0, 0, 1, 0]
    assert d["failed"] == [0, 0, 1, 0, 2]  # the cancelled run counts as not succeeded
    assert get(charted, "backups")["days"].__len__() == 30


def test_bytes_a_day_follow_each_projects_latest_snapshot(charted):
    d = get(charted, "bytes", days=4)
    (storage,) = d["storages"]
    assert storage["storage"] == "Default repository" and d["source"] == "catalog"
    assert storage["stored"] == [15 * MiB, 15 * MiB, 17 * MiB, 21 * MiB]  # OLD 5 + PLAT 10 -> 12 -> 13, OPS 3
    assert storage["new"] == [6 * MiB, 0, 1 * MiB, 4 * MiB]


def test_durations_and_protected_and_archived_projects(charted):
    items = get(charted, "durations")["items"]
    assert [i["seconds"] for i in items] == [120, 60, 240, 180, 60, 60]
    assert items[0]["started"] < items[-1]["started"]
    d = get(charted, "projects")
    assert d["protected"] == ["OPS", "PLAT"]  # a snapshot within the daily period; OLD: 3 days old
    assert d["unprotected"] == ["NEW"]  # listed by the latest run, never backed up
    (archived,) = d["archived"]  # OLD: catalogued, not listed by the plan's latest full run (PLAT, OPS)
    assert archived["project"] == "OLD" and archived["snapshot_id"] == "snap-OLD-3"


@pytest.mark.parametrize(
    ("what", "params"), [("backups", {"days": 0}), ("bytes", {"days": 400}), ("durations", {"limit": "x"})]
)
def test_bad_arguments_are_a_422_naming_the_field(charted, what, params):
    r = charted.call("GET", f"/api/v1/organisations/{TENANT}/charts/{what}", TENANT, params=params)
    assert r.status_code == 422 and set(params) <= set(r.json()["error"]["fields"])


def test_another_tenant_sees_nothing_of_these_figures(charted):
    r = charted.call("GET", f"/api/v1/organisations/{TENANT}/charts/backups", OTHER)
    assert r.status_code == 404
    assert get(charted, "projects", OTHER) == {"protected": [], "unprotected": [], "archived": []}


def test_the_charts_are_in_the_openapi_document(charted):
    doc = charted.call("GET", "/api/v1/openapi.json").json()
    for what in ("backups", "bytes", "durations", "projects"):
        assert f"/api/v1/organisations/{{cloud_id}}/charts/{what}" in doc["paths"]


def test_the_served_uplot_is_the_pinned_npm_package():
    """static/vendor/uplot is a copy of node_modules/uplot/dist at the version package.json pins."""
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["uplot"]
    installed = ROOT / "node_modules" / "uplot"
    if not installed.exists():
        pytest.skip("node_modules is not installed (make install runs npm ci)")
    assert json.loads((installed / "package.json").read_text())["version"] == pinned
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        served = (ROOT / "static" / "vendor" / "uplot" / name).read_bytes()
        assert served == (installed / "dist" / name).read_bytes(), f"{name}: copy it again from node_modules"
