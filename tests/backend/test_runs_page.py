"""The /runs page and one run's page over real HTTP: filters (validated on the server), the run's log
(levels, search, download), grouped warnings, Cancel and Retry failed projects, and their roles."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from backend.db.models import Membership, Organisation, Plan, Run, User
from tests.backend.conftest import Backend, make_backend, stop_backend
from tests.backend.test_sessions import PASSWORD, add_local_user, csrf_of

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
