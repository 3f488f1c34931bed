"""The audit log over real HTTP: each change records exactly one event (actor, address, field-level diff),
secrets never reach the log or its exports, the table refuses UPDATE and DELETE (SQLite and PostgreSQL),
the hash chain finds tampering, and filters, paging and exports return exactly the filtered events."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from werkzeug.security import generate_password_hash

from backend.audit import chain
from backend.db.models import AuditEvent, Membership, Organisation, Plan, User
from tests.backend.conftest import Backend, make_backend, stop_backend
from tests.backend.test_sessions import csrf_of
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT
from tests.restore.conftest import backed as backed  # the fixture: a project backed up

TENANT = "a0d17000-1111-4222-8333-444444444444"
OTHER = "b0d17000-1111-4222-8333-444444444444"
PASSWORD = "audit-password-Zq81!never-logged"
S3_SECRET = "audit-s3-secret-8c1f2e9b-first"
S3_SECRET_NEW = "audit-s3-secret-77aa01dd-second"
WEBHOOK_SECRET = "audit-webhook-signing-secret-5e1d"
WEBHOOK_PATH_SECRET = "audit0path0secret0c9f3a"
PROXIED = "203.0.113.77"  # the client address behind the one trusted proxy


def events(backend: Backend, after: int = 0) -> list[AuditEvent]:
    with backend.app.extensions["keepstone"].db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)))


def last_seq(backend: Backend) -> int:
    found = events(backend)
    return found[-1].seq if found else 0


def only_new(backend: Backend, after: int) -> AuditEvent:
    """The one event written since `after` (fails if there are none or several)."""
    found = events(backend, after)
    assert len(found) == 1, [(e.action, e.details) for e in found]
    return found[0]


def table_text(backend: Backend) -> str:
    """Every column of every audit row, as the database holds it."""
    with backend.app.extensions["keepstone"].db.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_events")).all()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


def add_member(backend: Backend, email: str, role: str, tenant: str = TENANT) -> None:
    with backend.app.extensions["keepstone"].db.session() as s:
        user = User(
            email=email,
            display_name=email.split("@")[0].title(),
            password_hash=generate_password_hash(PASSWORD, "pbkdf2:sha256:1000"),  # quick to check in tests,
        )
        s.add(user)
        s.flush()
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == tenant))
        s.add(Membership(user_id=user.id, organisation_id=org.id, role=role))
        s.commit()


class Browser:
    """A browser behind the trusted proxy (X-Forwarded-For), with its cookies and the page's CSRF token."""

    def __init__(self, backend: Backend, address: str = PROXIED) -> None:
        self.backend = backend
        self.http = requests.Session()
        self.http.headers["X-Forwarded-For"] = address
        self.csrf = csrf_of(self.http.get(backend.url + "/login", timeout=10).text)

    def login(self, email: str, password: str = PASSWORD) -> requests.Response:
        r = self.post("/login", {"email": email, "password": password})
        if r.status_code == 303:
            self.csrf = csrf_of(self.http.get(self.backend.url + "/plans", timeout=10).text)
        return r

    def post(self, path: str, data: dict | None = None) -> requests.Response:
        body = {"csrf_token": self.csrf, **(data or {})}
        return self.http.post(self.backend.url + path, data=body, allow_redirects=False, timeout=30)

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.backend.url + path, timeout=30, **kw)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """An SQLite database migrated once; each test copies it (the migrations take seconds, a copy none)."""
    from backend.db import migrate

    path = tmp_path_factory.mktemp("audit-db") / "migrated.db"
    migrate(f"sqlite:///{path}")
    return path


def copied(migrated: Path, folder: Path) -> str:
    """The URL of a fresh copy of the migrated database in `folder`."""
    shutil.copy(migrated, folder / "backend.db")
    return f"sqlite:///{folder}/backend.db"


@pytest.fixture
def stack(tmp_path, issuer, sandbox_site, migrated) -> Iterator[Backend]:
    """A backend behind one trusted proxy, a tenant on the sandbox site with its token, an admin and a viewer."""
    backend = make_backend(tmp_path, issuer, copied(migrated, tmp_path), trusted_proxies=1)
    try:
        backend.install(TENANT, sandbox_site.url)
        backend.install(OTHER, sandbox_site.url)
        r = backend.call(
            "PUT",
            f"/api/v1/organisations/{TENANT}/account",
            TENANT,
            json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
        )
        assert r.status_code == 200, r.text
        add_member(backend, "ada@example.com", "admin")
        add_member(backend, "vic@example.com", "viewer")
        yield backend
    finally:
        stop_backend(backend)


def plan_body(name: str, keys: list[str] | None = None) -> dict:
    """A plan for the selected `keys` (checked with Jira: the tenant needs its token), else all projects."""
    body: dict = {"name": name, "schedule": {"days": ["mon"], "hour": 3, "time_zone": "UTC"}}
    if keys:
        body["spec"] = {"projects": {"mode": "selected", "keys": keys}}
    return body


def test_plan_changes_by_the_connector_record_one_event_each_with_the_field_diff(stack):
    b = stack
    mark = last_seq(b)
    plan = b.call(
        "POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=plan_body("Platform", ["PLAT"])
    ).json()
    made = only_new(b, mark)
    assert (made.action, made.actor_kind, made.actor, made.cloud_id) == (
        "plan.create",
        "connector",
        "connector",
        TENANT,
    )
    assert made.address == "127.0.0.1"  # the proxy's own address: no X-Forwarded-For was sent
    assert (made.target_id, made.target_name) == (plan["id"], "Platform")
    assert made.changes["name"] == {"before": None, "after": "Platform"}
    assert made.changes["spec.projects.keys"] == {"before": None, "after": ["PLAT"]}

    mark = made.seq
    r = b.call(
        "PATCH",
        f"/api/v1/plans/{plan['id']}",
        TENANT,
        json={"name": "Platform team", "spec": {"projects": {"mode": "selected", "keys": ["PLAT", "WEB"]}}},
        headers={"X-Forwarded-For": PROXIED},
    )
    assert r.status_code == 200, r.text
    changed = only_new(b, mark)
    assert changed.action == "plan.update" and changed.address == PROXIED
    assert changed.changes["name"] == {"before": "Platform", "after": "Platform team"}
    assert changed.changes["spec.projects.keys"] == {"before": ["PLAT"], "after": ["PLAT", "WEB"]}
    assert "schedule.hour" not in changed.changes  # only what changed

    # the panel's schedule form PATCHes the schedule alone: schedule.update
    mark = changed.seq
    r = b.call(
        "PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={"schedule": {"days": ["tue"], "hour": 5}}
    )
    assert r.status_code == 200, r.text
    moved = only_new(b, mark)
    assert moved.action == "schedule.update"
    assert moved.changes["schedule.hour"] == {"before": 3, "after": 5}
    assert moved.changes["schedule.days"] == {"before": ["mon"], "after": ["tue"]}

    # a refused change records nothing
    mark = moved.seq
    assert b.call("PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={"name": ""}).status_code == 422
    assert events(b, mark) == []

    assert b.call("DELETE", f"/api/v1/plans/{plan['id']}", TENANT).status_code == 204
    gone = only_new(b, mark)
    assert (gone.action, gone.target_id, gone.target_name) == ("plan.delete", plan["id"], "Platform team")
    assert gone.changes["name"] == {"before": "Platform team", "after": None}


def test_sign_in_ui_changes_backup_now_and_sign_out_each_record_one_event(stack):
    b = stack
    plan = b.call(
        "POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=plan_body("Web", ["WEB"])
    ).json()
    browser = Browser(b)

    mark = last_seq(b)
    assert browser.login("ada@example.com", "wrong password").status_code == 401
    failed = only_new(b, mark)
    assert (failed.action, failed.actor_kind, failed.actor, failed.address) == (
        "signin.failed",
        "anonymous",
        "ada@example.com",
        PROXIED,
    )

    mark = failed.seq
    assert browser.login("ada@example.com").status_code == 303
    ok = only_new(b, mark)
    assert (ok.action, ok.actor_kind, ok.actor, ok.actor_name, ok.address) == (
        "signin.ok",
        "user",
        "ada@example.com",
        "Ada",
        PROXIED,
    )

    mark = ok.seq
    assert browser.post(f"/plans/{plan['id']}/toggle").status_code == 303
    toggled = only_new(b, mark)
    assert (toggled.action, toggled.actor, toggled.target_id) == (
        "plan.update",
        "ada@example.com",
        plan["id"],
    )
    assert toggled.changes == {"enabled": {"before": True, "after": False}}

    mark = toggled.seq
    assert browser.post(f"/plans/{plan['id']}/run").status_code == 303
    run = only_new(b, mark)
    assert (run.action, run.actor, run.target_id, run.target_name, run.cloud_id) == (
        "backup.now",
        "ada@example.com",
        plan["id"],
        "Web",
        TENANT,
    )

    mark = run.seq
    assert browser.post("/logout").status_code == 303
    out = only_new(b, mark)
    assert (out.action, out.actor, out.address) == ("signout", "ada@example.com", PROXIED)


def test_a_secret_never_reaches_the_log_or_its_exports(stack):
    b = stack
    path = f"/api/v1/organisations/{TENANT}/storages"
    mark = last_seq(b)
    body = {
        "name": "Offsite",
        "kind": "s3",
        "location": {"endpoint": "https://s3.example.com", "bucket": "acme-backups"},
        "credentials": {"access_key_id": "AKIAAUDITEXAMPLE", "secret_access_key": S3_SECRET},
    }
    s3 = b.call("POST", path, TENANT, json=body)
    assert s3.status_code == 201, s3.text
    made = only_new(b, mark)
    assert made.action == "storage.create" and made.target_name == "Offsite"
    assert made.changes["credentials"] == {"before": None, "after": "(changed)"}
    assert made.changes["location.bucket"] == {"before": None, "after": "acme-backups"}

    mark = made.seq
    r = b.call(
        "PATCH",
        f"/api/v1/storages/{s3.json()['id']}",
        TENANT,
        json={
            "region": "eu-west-1",
            "credentials": {"access_key_id": "AKIAAUDITEXAMPLE", "secret_access_key": S3_SECRET_NEW},
        },
    )
    assert r.status_code == 200, r.text
    changed = only_new(b, mark)
    assert changed.action == "storage.update"
    assert changed.changes["credentials"] == {"before": "(changed)", "after": "(changed)"}
    assert changed.changes["region"]["after"] == "eu-west-1"

    mark = changed.seq
    local = b.call(
        "POST", path, TENANT, json={"name": "Local", "kind": "local", "location": {"path": "primary"}}
    )
    assert local.status_code == 201, local.text
    assert b.call("POST", f"/api/v1/storages/{local.json()['id']}/test", TENANT).status_code == 200
    assert b.call("DELETE", f"/api/v1/storages/{local.json()['id']}", TENANT).status_code == 204
    assert [e.action for e in events(b, mark)] == ["storage.create", "storage.test", "storage.delete"]
    assert all(e.target_id == local.json()["id"] and e.target_name == "Local" for e in events(b, mark))

    mark = last_seq(b)
    r = b.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
    )
    assert r.status_code == 200, r.text
    token = only_new(b, mark)
    assert token.action == "token.set" and token.changes == {
        "api_token": {"before": "(changed)", "after": "(changed)"}
    }

    # a webhook: its signing secret only "(changed)", its URL (a Slack webhook's path is a secret) its origin
    mark = token.seq
    hook_url = "https://hooks.slack.com/services/T000/B000/" + WEBHOOK_PATH_SECRET
    channel = b.call(
        "POST",
        f"/api/v1/organisations/{TENANT}/notifications/channels",
        TENANT,
        json={"name": "Ops", "kind": "webhook", "url": hook_url, "format": "slack", "secret": WEBHOOK_SECRET},
    )
    assert channel.status_code == 201, channel.text
    made = only_new(b, mark)
    assert (made.action, made.target_name) == ("notification.create", "Ops")
    assert made.changes["address"]["after"] == "https://hooks.slack.com/…"
    assert made.changes["secret_sealed"]["after"] == "(changed)"

    browser = Browser(b)
    browser.login("ada@example.com", PASSWORD + "-typo")
    browser.login("ada@example.com")
    exports = [
        browser.get("/audit/export.csv", params={"org": TENANT}).text,
        browser.get("/audit/export.json", params={"org": TENANT}).text,
        b.call("GET", f"/api/v1/organisations/{TENANT}/audit", TENANT, params={"format": "csv"}).text,
    ]
    assert "storage.update" in exports[0] and "token.set" in exports[1] and "signin.failed" in exports[2]
    for secret in (S3_SECRET, S3_SECRET_NEW, ADMIN_TOKEN, PASSWORD, WEBHOOK_SECRET, WEBHOOK_PATH_SECRET):
        assert secret not in table_text(b)
        assert all(secret not in text_ for text_ in exports)


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_table_refuses_update_and_delete_and_the_chain_holds(
    dialect, tmp_path, issuer, sandbox_site, migrated
):
    from tests.backend.conftest import _postgres_url

    b = make_backend(
        tmp_path, issuer, _postgres_url() if dialect == "postgres" else copied(migrated, tmp_path)
    )
    try:
        b.install(TENANT, sandbox_site.url)
        b.call("POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=plan_body("Platform"))
        before = table_text(b)
        assert before and len(events(b)) >= 2
        engine = b.app.extensions["keepstone"].db.engine
        for statement in (
            "UPDATE audit_events SET actor = 'someone else'",
            "DELETE FROM audit_events",
            *(["TRUNCATE audit_events"] if dialect == "postgres" else []),
        ):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
        assert table_text(b) == before
        assert not hasattr(AuditEvent, "update") and not hasattr(AuditEvent, "delete")
        verdict = chain.verify(event_dicts(b))
        assert verdict.ok and verdict.checked == len(events(b))
    finally:
        stop_backend(b)


def event_dicts(b: Backend) -> list[dict]:
    return [{c: getattr(e, c) for c in (*chain.HASHED, "prev_hash", "hash")} for e in events(b)]


def test_the_hash_chain_finds_an_edited_row_and_a_cut_end(
    tmp_path, issuer, migrated, sandbox_site, monkeypatch, capsys
):
    from keepstone.cli import main

    b = make_backend(tmp_path, issuer, copied(migrated, tmp_path))
    try:
        monkeypatch.setenv("KEEPSTONE_DATABASE_URL", b.config.database_url)
        b.install(TENANT, sandbox_site.url)
        for name in ("One", "Two", "Three"):
            b.call("POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=plan_body(name))
        assert chain.verify(event_dicts(b)).ok
        assert main(["backend", "audit", "verify"]) == 0
        out = capsys.readouterr().out
        head = out.split("hash ")[-1].strip()
        assert head == events(b)[-1].hash and f"intact: {len(events(b))} events" in out

        engine = b.app.extensions["keepstone"].db.engine
        with engine.begin() as conn:  # someone with the database's keys cuts the newest event
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
            conn.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": events(b)[-1].seq})
        assert main(["backend", "audit", "verify"]) == 0  # a cut end alone leaves a valid chain...
        assert main(["backend", "audit", "verify", "--head", head]) == 1  # ...but not the head kept elsewhere
        assert "no longer in the chain" in capsys.readouterr().err

        target = events(b)[1].seq
        with engine.begin() as conn:  # and edits a row
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(
                text("UPDATE audit_events SET target_name = 'Innocent' WHERE seq = :s"), {"s": target}
            )
        verdict = chain.verify(event_dicts(b))
        assert not verdict.ok and verdict.broken_seq == target and "content" in verdict.reason
        assert main(["backend", "audit", "verify"]) == 1
        assert f"BROKEN at event {target}" in capsys.readouterr().err
    finally:
        stop_backend(b)


def test_filters_paging_and_exports_return_exactly_the_filtered_events(stack):
    b = stack
    ids = [
        b.call("POST", f"/api/v1/organisations/{TENANT}/plans", TENANT, json=plan_body(f"Plan {n}")).json()[
            "id"
        ]
        for n in range(3)
    ]
    b.call("POST", f"/api/v1/organisations/{OTHER}/plans", OTHER, json=plan_body("Elsewhere"))
    browser = Browser(b)
    browser.login("ada@example.com")
    browser.post(f"/plans/{ids[0]}/toggle")
    api = f"/api/v1/organisations/{TENANT}/audit"

    def listed(**params) -> list[dict]:
        r = b.call("GET", api, TENANT, params=params)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    everything = listed(limit=500)
    assert [e["seq"] for e in everything] == sorted(
        (e["seq"] for e in everything), reverse=True
    )  # newest first
    assert all(e["organisation"] in (TENANT, None) for e in everything)
    assert "Elsewhere" not in json.dumps(everything)  # another organisation's events stay out

    plans = listed(action="plan")
    assert [e["action"] for e in plans] == ["plan.update", "plan.create", "plan.create", "plan.create"]
    assert [e["action"] for e in listed(action="plan.update")] == ["plan.update"]
    by_ada = listed(actor="ADA@example")
    assert {e["action"] for e in by_ada} == {"signin.ok", "plan.update"}
    assert [e["target"]["name"] for e in listed(target=ids[1])] == ["Plan 1"]
    assert [e["target"]["id"] for e in listed(target="plan 2")] == [ids[2]]
    today = datetime.now(UTC).date()
    assert listed(**{"from": str(today + timedelta(days=1))}) == []
    assert listed(**{"to": str(today - timedelta(days=1))}) == []
    assert len(listed(**{"from": str(today), "to": str(today)})) == len(everything)

    # cursor paging walks the same list, two at a time
    walked, cursor = [], None
    while True:
        page = b.call(
            "GET", api, TENANT, params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).json()
        walked += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == everything

    # exports hold exactly the filtered events, API and page alike
    as_json = b.call("GET", api, TENANT, params={"action": "plan", "format": "json"})
    assert as_json.headers["Content-Type"].startswith("application/json")
    assert "attachment" in as_json.headers["Content-Disposition"]
    assert json.loads(as_json.text) == plans
    as_csv = browser.get("/audit/export.csv", params={"org": TENANT, "action": "plan"})
    assert as_csv.status_code == 200 and as_csv.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [int(r["seq"]) for r in rows] == [e["seq"] for e in plans]
    assert json.loads(rows[0]["changes"]) == plans[0]["changes"]
    page = browser.get("/audit", params={"org": TENANT, "action": "plan"}).text
    assert page.count('data-action="plan.') == 4 and "signin.ok" not in page

    # a bad filter is a 422 naming it, on the page an error beside the field
    bad = b.call("GET", api, TENANT, params={"from": "last tuesday"})
    assert bad.status_code == 422 and "from" in bad.json()["error"]["fields"]
    assert b.call("GET", api, TENANT, params={"format": "xml"}).status_code == 422
    shown = browser.get("/audit", params={"org": TENANT, "from": "2026-13-45"})
    assert shown.status_code == 200 and 'id="err-from"' in shown.text and "data-seq" not in shown.text


def test_only_admins_see_the_audit_log(stack):
    b = stack
    # a write without a session is sent to sign in, and records nothing
    storage = b.call(
        "POST",
        f"/api/v1/organisations/{TENANT}/storages",
        TENANT,
        json={"name": "L", "kind": "local", "location": {"path": "l"}},
    ).json()
    mark = last_seq(b)
    stranger = Browser(b)
    assert stranger.post(f"/storages/{storage['id']}/test").status_code in (302, 303)
    assert events(b, mark) == []
    viewer = Browser(b)
    viewer.login("vic@example.com")
    assert (
        'href="/plans"' in (nav := viewer.get("/plans", params={"org": TENANT}).text)
        and 'href="/audit"' not in nav
    )
    assert viewer.get("/audit", params={"org": TENANT}).status_code == 403
    assert viewer.get("/audit/export.csv", params={"org": TENANT}).status_code == 403
    assert viewer.get(f"/api/v1/organisations/{TENANT}/audit").status_code == 403
    admin = Browser(b)
    admin.login("ada@example.com")
    assert admin.get("/audit", params={"org": TENANT}).status_code == 200
    assert 'href="/audit"' in admin.get("/plans", params={"org": TENANT}).text
    # 50 a page, newest first; Older events goes on from the last one shown, Newest comes back
    from backend.audit.log import append

    for n in range(60):
        append(
            b.app.extensions["keepstone"].db, action="plan.update", cloud_id=TENANT, target_name=f"Bulk {n}"
        )
    first = admin.get("/audit", params={"org": TENANT}).text
    seqs = [int(x) for x in re.findall(r'data-seq="(\d+)"', first)]
    assert len(seqs) == 50 and seqs == sorted(seqs, reverse=True) and "Bulk 59" in first
    older = html.unescape(re.search(r'href="([^"]*before=[^"]*)"', first).group(1))
    second = admin.get(older).text
    rest = [int(x) for x in re.findall(r'data-seq="(\d+)"', second)]
    assert rest and max(rest) == seqs[-1] - 1 and "Newest" in second
    # a name a spreadsheet would run as a formula is exported as text
    append(
        b.app.extensions["keepstone"].db, action="plan.create", cloud_id=TENANT, target_name="=HYPERLINK(1)"
    )
    exported = admin.get("/audit/export.csv", params={"org": TENANT, "target": "hyperlink"}).text
    assert [r["target_name"] for r in csv.DictReader(io.StringIO(exported))] == ["'=HYPERLINK(1)"]
    assert admin.get(f"/api/v1/organisations/{TENANT}/audit").status_code == 200
    # another organisation's log is not there, for the page's ?org= or the API
    assert admin.get(f"/api/v1/organisations/{OTHER}/audit").status_code == 404
    assert b.call("GET", f"/api/v1/organisations/{TENANT}/audit", OTHER).status_code == 404


def test_the_sso_hand_off_is_recorded_for_its_organisation(stack):
    b = stack
    mark = last_seq(b)
    token = b.issuer.token(
        TENANT, typ="sso-handoff+jwt", aud="keepstone-backend-sso", sub="jira-77", name="Grace"
    )
    browser = requests.Session()
    r = browser.post(
        b.url + "/sso",
        data={"token": token},
        headers={"Origin": b.issuer.server.url},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 303, r.text
    sso = only_new(b, mark)
    assert (sso.action, sso.actor, sso.actor_name, sso.cloud_id) == ("sso", "jira:jira-77", "Grace", TENANT)
    assert {c["kind"] for c in sso.details["also"]} >= {"user", "member"}
    # the same token again: refused, and recorded as a failed hand-off
    again = browser.post(
        b.url + "/sso", data={"token": token}, headers={"Origin": b.issuer.server.url}, timeout=10
    )
    assert again.status_code == 401
    assert only_new(b, sso.seq).action == "sso.failed"


def test_the_command_line_records_forget_and_prune_with_a_service_database(tmp_path, monkeypatch, migrated):
    from keepstone.cli import main

    url = copied(migrated, tmp_path)
    monkeypatch.setenv("KEEPSTONE_REPO_PASSWORD", "repo-password")
    repo = f"file://{tmp_path}/repo"
    assert main(["init", "--repo", repo]) == 0
    # without a service database nothing is recorded, and nothing fails
    assert main(["forget", "--repo", repo, "--keep-last", "1"]) == 0
    monkeypatch.setenv("KEEPSTONE_DATABASE_URL", url)
    assert main(["forget", "--repo", repo, "--keep-last", "1", "--dry-run"]) == 0  # a dry run changes nothing
    assert main(["prune", "--repo", repo, "--dry-run"]) == 0
    assert main(["forget", "--repo", repo, "--keep-last", "1"]) == 0
    assert main(["prune", "--repo", repo]) == 0
    from backend.db import Database

    db = Database(url)
    with db.session() as s:
        found = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    db.engine.dispose()
    assert [(e.action, e.actor_kind, e.target_id) for e in found] == [
        ("forget", "cli", repo),
        ("prune", "cli", repo),
    ]
    assert found[0].address.startswith("cli@") and "summary" in found[1].details
    assert "repo-password" not in json.dumps([e.details for e in found])


def test_invitations_roles_and_removals_record_one_event_each(stack):
    b = stack
    base = f"/api/v1/organisations/{TENANT}"
    mark = last_seq(b)
    made = b.call(
        "POST", f"{base}/invitations", TENANT, json={"email": "Grace@Example.com", "role": "operator"}
    )
    assert made.status_code == 201, made.text
    invited = only_new(b, mark)
    assert (invited.action, invited.target_id, invited.target_name) == (
        "member.invite",
        made.json()["id"],
        "grace@example.com",
    )
    assert invited.changes["role"] == {"before": None, "after": "operator"}
    assert invited.changes["token_hash"] == {"before": None, "after": "(changed)"}
    assert made.json()["token"] not in table_text(b)

    mark = invited.seq
    assert b.call("DELETE", f"{base}/invitations/{made.json()['id']}", TENANT).status_code == 204
    assert only_new(b, mark).action == "member.invite.withdraw"

    members = {m["email"]: m["id"] for m in b.call("GET", f"{base}/members", TENANT).json()["items"]}
    mark = last_seq(b)
    r = b.call("PATCH", f"{base}/members/{members['vic@example.com']}", TENANT, json={"role": "operator"})
    assert r.status_code == 200, r.text
    role = only_new(b, mark)
    assert (role.action, role.target_id, role.cloud_id) == ("member.role", "vic@example.com", TENANT)
    assert role.changes["role"] == {"before": "viewer", "after": "operator"}

    mark = role.seq
    assert b.call("DELETE", f"{base}/members/{members['vic@example.com']}", TENANT).status_code == 204
    removed = only_new(b, mark)
    assert (removed.action, removed.target_id) == ("member.remove", "vic@example.com")
    assert removed.changes["role"] == {"before": "operator", "after": None}

    # refused (the last admin stays): nothing recorded
    mark = removed.seq
    r = b.call("PATCH", f"{base}/members/{members['ada@example.com']}", TENANT, json={"role": "viewer"})
    assert r.status_code == 409
    assert events(b, mark) == []


def test_settings_pages_record_role_changes_and_token_checks_for_the_page_organisation(stack):
    b = stack
    members = {
        m["email"]: m["id"]
        for m in b.call("GET", f"/api/v1/organisations/{TENANT}/members", TENANT).json()["items"]
    }
    browser = Browser(b)
    browser.login("ada@example.com")
    mark = last_seq(b)
    r = browser.post(
        f"/settings/members/{members['vic@example.com']}/role?org={TENANT}", {"role": "operator"}
    )
    assert r.status_code == 303
    role = only_new(b, mark)
    assert (role.action, role.actor, role.target_id, role.cloud_id, role.address) == (
        "member.role",
        "ada@example.com",
        "vic@example.com",
        TENANT,
        PROXIED,
    )
    assert role.changes["role"] == {"before": "viewer", "after": "operator"}
    mark = role.seq
    assert browser.post(f"/settings/jira/check?org={TENANT}").status_code == 303
    check = only_new(b, mark)
    assert (check.action, check.cloud_id, check.changes) == ("token.check", TENANT, {})


def chain_of(dbs: list, writers: list[str], others: list) -> None:
    """Threads append 40 events over `dbs` while `others` (processes) append theirs; one chain holds them all."""
    from concurrent.futures import ThreadPoolExecutor

    from backend.audit.log import append

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: append(dbs[n % 2], action="plan.update", target_id=f"p{n}"), range(40)))
    assert [p.wait(timeout=120) for p in others] == [0] * len(others)
    with dbs[0].session() as s:
        rows = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    wanted = [f"p{n}" for n in range(40)] + [f"{t}{n}" for t in writers for n in range(15)]
    assert [e.seq for e in rows] == list(range(1, len(wanted) + 1))
    assert sorted(e.target_id for e in rows) == sorted(wanted)
    assert chain.verify({c: getattr(e, c) for c in (*chain.HASHED, "prev_hash", "hash")} for e in rows).ok


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("processes", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_writers_in_parallel_extend_one_chain_without_a_fork(dialect, processes, tmp_path, migrated):
    import subprocess
    import sys

    from backend.db import Database, migrate
    from tests.backend.conftest import _postgres_url

    url = _postgres_url() if dialect == "postgres" else copied(migrated, tmp_path)
    migrate(url)
    dbs = [Database(url), Database(url)]  # two engines: two pools, as two workers of the service would have
    # other processes at once share no lock with these threads: the unique seq and retries keep one chain
    script = (
        "import sys; from backend.db import Database; from backend.audit.log import append; db = Database(sys.argv[1]); "
        "[append(db, action='plan.create', target_id=f'{sys.argv[2]}{n}') for n in range(15)]"
    )
    writers = ["x", "y"] if processes else []
    others = [subprocess.Popen([sys.executable, "-c", script, url, tag], cwd=ROOT) for tag in writers]
    try:
        chain_of(dbs, writers, others)
    finally:
        for db in dbs:
            db.engine.dispose()


@pytest.mark.slow  # a backup first; forget and prune show the same path quickly
def test_a_restore_from_the_command_line_is_recorded_when_it_starts(backed, monkeypatch, migrated, tmp_path):
    url = copied(migrated, tmp_path)
    monkeypatch.setenv("KEEPSTONE_DATABASE_URL", url)
    status, out = backed.restore("--issues", "PLAT-5", "--original", "--dry-run")
    assert status == 0, out
    status, out = backed.restore("--issues", "PLAT-5", "--original")
    assert status == 0, out
    from backend.db import Database

    db = Database(url)
    with db.session() as s:
        found = list(s.scalars(select(AuditEvent)))
    db.engine.dispose()
    assert [(e.action, e.target_id) for e in found] == [
        ("restore.start", backed.repo_url)
    ]  # the dry run: none
    assert found[0].details == {"snapshot": backed.snapshot_id, "site": backed.site.url}


def test_a_view_that_records_its_own_event_gets_exactly_that_one(tmp_path, issuer, migrated, sandbox_site):
    from flask import Flask

    from backend import audit
    from backend.auth.roles import PUBLIC_ROLE, least_role

    def routes(app: Flask) -> None:
        @app.post("/_test/rename/<plan_id>")
        @least_role(PUBLIC_ROLE)
        def rename(plan_id: str):
            from backend.services import services

            with services().db.session() as s:
                plan = s.scalar(select(Plan).where(Plan.public_id == plan_id))
                plan.name = "Renamed by a job"
                s.commit()
            audit.record("job.rename", cloud_id=TENANT, target_id=plan_id, details={"why": "test"})
            return "", 204

    b = make_backend(tmp_path, issuer, copied(migrated, tmp_path), routes=routes)
    try:
        b.install(TENANT, sandbox_site.url)
        plan = b.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"][0]
        mark = last_seq(b)
        # a bearer header skips the session CSRF check (this test route reads no token)
        answer = requests.post(
            f"{b.url}/_test/rename/{plan['id']}", headers={"Authorization": "Bearer -"}, timeout=10
        )
        assert answer.status_code == 204, answer.text
        event = only_new(b, mark)  # the view's, not also the hook's plan.update
        assert (event.action, event.target_id, event.details, event.address) == (
            "job.rename",
            plan["id"],
            {"why": "test"},
            "127.0.0.1",
        )
    finally:
        stop_backend(b)
