"""The /runs page and one run's page over real HTTP: filters (validated on the server), the run's log
(levels, search, download), grouped warnings, Cancel and Retry failed projects, and their roles."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select

from backend.db.models import Membership, Organisation, Plan, ProjectRun, Run, RunLog, User
from tests.backend.conftest import Backend, make_backend, stop_backend
from tests.backend.test_sessions import PASSWORD, add_local_user, csrf_of
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN

TENANT = "11111111-2222-4333-8444-555555555555"


OTHER = "99999999-2222-4333-8444-555555555555"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, issuer) -> Iterator[tuple[Backend, dict[str, str], requests.Session]]:
    """One backend for the read-only checks: two organisations, five runs, an admin signed in."""
    b = make_backend(tmp_path_factory.mktemp("runs-page"), issuer)
    b.install(TENANT, "https://acme.atlassian.net", time_zone="Europe/Berlin")
    b.install(OTHER, "https://other.atlassian.net")
    ids = seed(b)
    yield b, ids, browser(b)
    stop_backend(b)


def browser(backend: Backend, email: str = "ops@example.com", role: str = "admin") -> requests.Session:
    add_local_user(backend, email)
    with backend.app.extensions["keepstone"].db.session() as s:
        user = s.scalar(select(User).where(User.email == email))
        member = s.scalar(select(Membership).where(Membership.user_id == user.id))
        member.role = role
        s.commit()
    http = requests.Session()
    csrf = csrf_of(http.get(backend.url + "/login", timeout=10).text)
    r = http.post(
        backend.url + "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 303, r.text
    return http


def seed(backend: Backend) -> dict[str, str]:
    """Two plans and five runs over three days; returns public ids by name."""
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    with backend.app.extensions["keepstone"].db.session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == TENANT))
        default = next(p for p in org.plans if p.is_default)
        other = Plan(organisation_id=org.id, name="Nightly", storage_url=default.storage_url, spec={})
        s.add(other)
        s.flush()
        rows = {
            "old-ok": Run(organisation_id=org.id, plan_id=default.id, trigger="schedule", state="succeeded"),
            "old-failed": Run(organisation_id=org.id, plan_id=other.id, trigger="manual", state="failed"),
            "mid-warn": Run(organisation_id=org.id, plan_id=default.id, trigger="manual", state="warning"),
            "new-ok": Run(organisation_id=org.id, plan_id=other.id, trigger="schedule", state="succeeded"),
            "new-partial": Run(organisation_id=org.id, plan_id=default.id, trigger="manual", state="partial"),
        }
        ages = {"old-ok": 2, "old-failed": 2, "mid-warn": 1, "new-ok": 0, "new-partial": 0}
        for name, run in rows.items():
            run.created = run.started = now - timedelta(days=ages[name])
            run.finished = run.started + timedelta(minutes=3)
            s.add(run)
        s.commit()
        ids = {name: run.public_id for name, run in rows.items()}
        ids["plan:default"], ids["plan:nightly"] = default.public_id, other.public_id
        ids["day:old"] = (now - timedelta(days=2)).date().isoformat()
        ids["day:mid"] = (now - timedelta(days=1)).date().isoformat()
        return ids


def run_count(backend: Backend) -> int:
    with backend.app.extensions["keepstone"].db.session() as s:
        return s.scalar(select(func.count()).select_from(Run))


def listed(page: str) -> list[str]:
    return re.findall(r'<tr data-run="(run_[a-z0-9]+)"', page)


def test_runs_are_filtered_by_plan_state_trigger_and_dates(seeded):
    site, ids, http = seeded

    def names(**args) -> list[str]:
        r = http.get(site.url + "/runs", params=args, timeout=10)
        assert r.status_code == 200, r.text
        back = {v: k for k, v in ids.items()}
        return sorted(back[i] for i in listed(r.text))

    assert len(names()) == 5
    assert names(plan=ids["plan:nightly"]) == ["new-ok", "old-failed"]
    assert names(state="succeeded") == ["new-ok", "old-ok"]
    assert names(trigger="manual") == ["mid-warn", "new-partial", "old-failed"]
    assert names(plan=ids["plan:default"], trigger="manual") == ["mid-warn", "new-partial"]
    assert names(**{"from": ids["day:mid"]}) == ["mid-warn", "new-ok", "new-partial"]
    assert names(to=ids["day:mid"]) == ["mid-warn", "old-failed", "old-ok"]
    assert names(**{"from": ids["day:mid"], "to": ids["day:mid"]}) == ["mid-warn"]
    assert names(state="cancelled") == []
    page = http.get(site.url + "/runs", params={"state": "failed"}, timeout=10).text
    assert '<option value="failed" selected>' in page and "Clear filters" in page


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        ({"state": "exploded"}, "state", "Choose one of"),
        ({"trigger": "cron"}, "trigger", "Choose Backup now or Schedule"),
        ({"plan": "plan_doesnotexist000000"}, "plan", "No plan of this organisation"),
        ({"from": "2026-13-45"}, "from", "YYYY-MM-DD"),
        ({"from": "yesterday"}, "from", "YYYY-MM-DD"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to", "before the start date"),
    ],
)
def test_a_bad_filter_shows_its_error_beside_the_field_and_lists_nothing(seeded, args, field, words):
    site, _, http = seeded
    r = http.get(site.url + "/runs", params=args, timeout=10)
    assert r.status_code == 422
    assert listed(r.text) == []
    error = re.search(rf'<p class="field-error" id="err-{field}">([^<]*)</p>', r.text)
    assert error and words in html.unescape(error.group(1))
    assert f'aria-describedby="err-{field}"' in r.text


def test_another_organisations_plan_is_not_a_filter(seeded):
    site, ids, http = seeded
    with site.app.extensions["keepstone"].db.session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == OTHER))
        foreign = org.plans[0].public_id
    r = http.get(site.url + "/runs", params={"plan": foreign, "org": TENANT}, timeout=10)
    assert r.status_code == 422 and listed(r.text) == []
    assert ids["new-ok"] not in r.text


def finished_run(
    backend: Backend, statuses: dict[str, str], warnings: dict[str, list[str]] | None = None
) -> str:
    """A finished run of the default plan with a row per project (seeded, as the engine leaves them)."""
    with backend.app.extensions["keepstone"].db.session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == TENANT))
        plan = next(p for p in org.plans if p.is_default)
        now = datetime.now(UTC)
        run = Run(organisation_id=org.id, plan_id=plan.id, trigger="manual", state="partial")
        run.created = run.started = now - timedelta(minutes=2)
        run.finished = now
        s.add(run)
        s.flush()
        for key, status in statuses.items():
            s.add(
                ProjectRun(
                    run_id=run.id,
                    project=key,
                    status=status,
                    counts={"issues": 4, "fetched": 4, "attachment_bytes": 3 * 1024 * 1024},
                    warnings=(warnings or {}).get(key, []),
                    errors=["Jira: 500 on search"] if status == "failed" else [],
                )
            )
        lines = [
            ("info", "backing up 2 projects"),
            ("warning", "attachment 7 skipped"),
            ("error", "Jira: 500"),
        ]
        lines += [("info", f"page {i} read") for i in range(5)]
        for level, message in lines:
            s.add(RunLog(run_id=run.id, level=level, message=message, project="PLAT"))
        s.commit()
        return run.public_id


def test_the_log_filters_by_level_and_text_and_downloads_as_text(seeded):
    site, _, http = seeded
    run_id = finished_run(site, {"PLAT": "failed"})

    def lines(**args) -> list[str]:
        r = http.get(f"{site.url}/runs/{run_id}", params=args, timeout=10)
        assert r.status_code == 200, r.text
        return [html.unescape(m) for m in re.findall(r'<span class="text">([^<]*)</span>', r.text)]

    assert len(lines()) == 8
    assert lines(level="error") == ["Jira: 500"]
    assert lines(level="warning") == ["attachment 7 skipped", "Jira: 500"]
    assert lines(q="PAGE 3") == ["page 3 read"]
    assert lines(q="100%") == []  # a LIKE wildcard is a plain character
    bad = http.get(f"{site.url}/runs/{run_id}", params={"level": "loud"}, timeout=10)
    assert bad.status_code == 422 and 'id="err-level"' in bad.text and 'class="text"' not in bad.text

    text = http.get(f"{site.url}/runs/{run_id}/log.txt", params={"level": "warning"}, timeout=10)
    assert text.status_code == 200 and text.headers["Content-Type"].startswith("text/plain")
    assert f"keepstone-{run_id}.log.txt" in text.headers["Content-Disposition"]
    got = text.text.splitlines()
    assert len(got) == 2 and "WARNING" in got[0] and got[1].endswith("Jira: 500")
    assert len(http.get(f"{site.url}/runs/{run_id}/log.txt", timeout=10).text.splitlines()) == 8


def test_warnings_are_grouped_by_kind_and_expandable(seeded):
    site, _, http = seeded
    skipped = [f"attachment {i} (shot-{i}.png) of PLAT-{i} skipped: too large" for i in range(27)]
    run_id = finished_run(site, {"PLAT": "warning", "OPS": "ok"}, {"PLAT": [*skipped, "board 3 unreadable"]})
    page = http.get(f"{site.url}/runs/{run_id}", timeout=10).text
    groups = re.findall(r'<details data-kind="([^"]+)"><summary>.*?</span> ([^<]+)</summary>', page)
    assert groups == [
        ("attachments skipped", "27 attachments skipped"),
        ("other warnings", "1 other warning"),
    ]
    assert "PLAT-26: shot-26.png (too large)" in page
    assert "3.0 MiB of attachments" in page


def test_a_viewer_sees_no_cancel_or_retry_and_may_not_post_them(seeded):
    site, _, _ = seeded
    run_id = finished_run(site, {"PLAT": "failed"})
    before = run_count(site)
    viewer = browser(site, "viewer@example.com", role="viewer")
    page = viewer.get(f"{site.url}/runs/{run_id}", timeout=10).text
    assert 'id="retry-run"' not in page and 'id="cancel-run"' not in page
    csrf = csrf_of(page)
    for action in ("retry", "cancel"):
        r = viewer.post(
            f"{site.url}/runs/{run_id}/{action}", data={"csrf_token": csrf}, allow_redirects=False, timeout=10
        )
        assert r.status_code == 403
    assert run_count(site) == before  # nothing started


def test_retry_failed_projects_runs_the_plan_again_for_those_only(tmp_path, issuer, sandbox_site):
    backend = make_backend(tmp_path, issuer)
    try:
        backend.install(TENANT, sandbox_site.url)
        r = backend.call(
            "PUT",
            f"/api/v1/organisations/{TENANT}/account",
            TENANT,
            json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
        )
        assert r.status_code == 200, r.text
        keys = [
            p["key"]
            for p in requests.get(
                f"{sandbox_site.url}/rest/api/3/project", auth=(ADMIN_EMAIL, ADMIN_TOKEN), timeout=10
            ).json()
        ]
        first = finished_run(backend, {keys[0]: "ok", keys[1]: "failed", keys[2]: "cancelled"})
        http = browser(backend)
        page = http.get(f"{backend.url}/runs/{first}", timeout=10).text
        assert "Retry failed projects (2)" in page
        r = http.post(
            f"{backend.url}/runs/{first}/retry",
            data={"csrf_token": csrf_of(page)},
            allow_redirects=False,
            timeout=10,
        )
        assert r.status_code == 303
        retry_id = r.headers["Location"].rsplit("/", 1)[-1]
        assert retry_id != first
        run = backend.wait_for_run(TENANT, retry_id)
        assert run["state"] in ("succeeded", "warning"), run  # a few corrupt attachments
        assert sorted(p["project"] for p in run["projects"]) == sorted(keys[1:])
        assert run["progress"]["requests"] > 0 and run["progress"]["throttled"] == 0
        assert set(run["progress"]["projects"]) == set(keys[1:])  # each project's first event is written
        assert run["progress"]["only"] == keys[1:]  # kept: the charts do not take a retry for the selection
        page = http.get(f"{backend.url}/runs/{retry_id}", timeout=10).text
        assert f"retry of {first}" in page and 'id="retry-run"' not in page
    finally:
        stop_backend(backend)


def test_the_api_retries_only_a_finished_run_with_failed_projects(seeded):
    site, _, _ = seeded
    clean = finished_run(site, {"PLAT": "ok"})
    r = site.call("POST", f"/api/v1/runs/{clean}/retry", TENANT)
    assert r.status_code == 409 and "nothing to retry" in r.json()["error"]["message"]
    before = run_count(site)
    failed = finished_run(site, {"PLAT": "failed", "OPS": "ok", "WEB": "cancelled"})
    r = site.call("POST", f"/api/v1/runs/{failed}/retry", TENANT)
    assert r.status_code == 202, r.text
    assert r.json()["progress"]["only"] == ["PLAT", "WEB"] and run_count(site) == before + 2
    assert site.call("POST", f"/api/v1/runs/{failed}/retry", OTHER).status_code == 404
    site.wait_for_run(TENANT, r.json()["id"])  # no Jira account here: it fails at once, saying so


def test_an_active_run_in_the_list_shows_its_jira_traffic(seeded):
    site, _, http = seeded
    run_id = finished_run(site, {"PLAT": "queued"})
    with site.app.extensions["keepstone"].db.session() as s:
        run = s.scalar(select(Run).where(Run.public_id == run_id))
        run.state, run.finished = "running", None
        run.progress = {
            "projects_total": 1,
            "projects_done": 0,
            "requests": 42,
            "rate": 3.5,
            "throttling": True,
        }
        s.commit()
    page = http.get(f"{site.url}/runs", timeout=10).text
    row = page.split(f'data-run="{run_id}"')[1].split("</tr>")[0]
    assert "42 Jira requests, 3.5 a second" in row and "Jira is throttling" in row
    assert 'data-live="on"' in page
    detail = http.get(f"{site.url}/runs/{run_id}", timeout=10).text
    assert 'id="cancel-run"' in detail and "Jira is throttling" in detail and 'id="retry-run"' not in detail
    with site.app.extensions["keepstone"].db.session() as s:
        s.scalar(select(Run).where(Run.public_id == run_id)).state = "cancelled"
        s.commit()
