"""Roles over real HTTP: every route has a rule (deny by default), viewers read only, operators run but do
not edit, admins do all; the last admin stays; a Jira hand-off gives the role Jira implies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from backend.auth.roles import ROLES, least_role, rule_for
from backend.db.models import Membership, Organisation, Plan, Run, StorageRecord, User
from tests.backend.conftest import Backend, make_backend, stop_backend
from tests.backend.test_sessions import csrf_of

TENANT = "11111111-2222-4333-8444-555555555555"
OTHER = "99999999-2222-4333-8444-555555555555"
PASSWORD = "correct horse battery staple"


def unruled_routes(app) -> None:
    """Test-only routes without a rule: one under the API's blueprint, one page."""
    app.add_url_rule("/api/v1/_test/unruled", "api._test_unruled", lambda: "reached")
    app.add_url_rule("/_test/unruled", "_test_unruled", lambda: "reached")
    app.add_url_rule("/_test/viewer", "_test_viewer", least_role("viewer")(lambda: "reached"))


class Member:
    """A signed-in browser of one local user (the login form), with the CSRF token of its session."""

    def __init__(self, backend: Backend, email: str, password: str = PASSWORD) -> None:
        self.backend = backend
        self.http = requests.Session()
        csrf = csrf_of(self.http.get(backend.url + "/login", timeout=10).text)
        r = self.http.post(
            backend.url + "/login",
            data={"email": email, "password": password, "csrf_token": csrf},
            allow_redirects=False,
            timeout=10,
        )
        assert r.status_code == 303, r.text
        self.csrf = csrf_of(self.http.get(backend.url + "/", timeout=10).text)

    def api(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"X-CSRFToken": self.csrf} if method != "GET" else {}
        return self.http.request(
            method, self.backend.url + "/api/v1" + path, headers=headers, timeout=30, **kw
        )

    def page(self, path: str) -> requests.Response:
        return self.http.get(self.backend.url + path, allow_redirects=False, timeout=30)

    def form(self, path: str, **data) -> requests.Response:
        return self.http.post(
            self.backend.url + path, data={"csrf_token": self.csrf, **data}, allow_redirects=False, timeout=30
        )


def add_member(backend: Backend, email: str, role: str, tenant: str = TENANT) -> None:
    with backend.app.extensions["keepstone"].db.session() as s:
        user = User(
            email=email, display_name=email.split("@")[0], password_hash=generate_password_hash(PASSWORD)
        )
        s.add(user)
        s.flush()
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == tenant))
        s.add(Membership(user_id=user.id, organisation_id=org.id, role=role))
        s.commit()


def state(backend: Backend) -> tuple:
    """What a refused write must leave as it was: plans (name, enabled), runs, storages, roles."""
    with backend.app.extensions["keepstone"].db.session() as s:
        return (
            sorted((p.name, p.enabled) for p in s.scalars(select(Plan))),
            s.scalar(select(func.count()).select_from(Run)),
            s.scalar(select(func.count()).select_from(StorageRecord)),
            sorted(s.execute(select(Membership.user_id, Membership.role)).all()),
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory, issuer, sandbox_site) -> Iterator[dict]:
    backend = make_backend(tmp_path_factory.mktemp("roles"), issuer, routes=unruled_routes)
    backend.install(TENANT, sandbox_site.url)
    backend.install(OTHER, sandbox_site.url)
    r = backend.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": "admin@example.com", "api_token": "sandbox-admin-token"},
    )
    assert r.status_code == 200, r.text
    for role in ROLES:
        add_member(backend, f"{role}@example.com", role)
    plan = backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"][0]
    members = {role: Member(backend, f"{role}@example.com") for role in ROLES}
    yield {"backend": backend, "plan": plan["id"], **members}
    stop_backend(backend)


def test_every_route_has_a_rule(stack):
    app = stack["backend"].app
    with app.app_context():
        missing = [
            r.endpoint
            for r in app.url_map.iter_rules()
            if rule_for(r.endpoint) is None and not r.endpoint.startswith(("api._test", "_test"))
        ]
    assert missing == [], f"routes without a least role (backend/auth/roles.py): {missing}"


def test_a_route_without_a_rule_is_refused_to_everyone(stack):
    backend = stack["backend"]
    for who in ("admin", "viewer"):
        assert stack[who].api("GET", "/_test/unruled").status_code == 403
        page = stack[who].page("/_test/unruled")
        assert page.status_code == 403 and "reached" not in page.text
    service = backend.call("GET", "/api/v1/_test/unruled", TENANT)
    assert service.status_code == 403 and service.json()["error"]["code"] == "no_rule"
    assert stack["viewer"].page("/_test/viewer").text == "reached"


# (who, method, path, json) -> the writes a viewer may not make through the API
def api_writes(plan: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("POST", f"/organisations/{TENANT}/plans", {"name": "x", "schedule": {"days": ["mon"], "hour": 1}}),
        ("PATCH", f"/plans/{plan}", {"name": "renamed"}),
        ("DELETE", f"/plans/{plan}", None),
        (
            "POST",
            f"/organisations/{TENANT}/storages",
            {"name": "s", "kind": "local", "location": {"path": "s"}},
        ),
        ("PUT", f"/organisations/{TENANT}/account", {"email": "a@b.co", "api_token": "x"}),
        ("POST", f"/organisations/{TENANT}/invitations", {"email": "new@example.com", "role": "admin"}),
        ("POST", f"/organisations/{TENANT}/suspend", None),
    ]


@pytest.mark.parametrize("who", ["viewer", "operator"])
def test_viewers_and_operators_cannot_edit_through_the_api(stack, who):
    backend, before = stack["backend"], state(stack["backend"])
    me = stack[who]
    assert me.api("GET", f"/organisations/{TENANT}/plans").status_code == 200
    assert me.api("GET", f"/plans/{stack['plan']}").status_code == 200
    for method, path, body in api_writes(stack["plan"]):
        r = me.api(method, path, json=body) if body is not None else me.api(method, path)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "role"
        assert r.json()["error"]["message"].startswith(f"{who.capitalize()}s cannot")
    members = me.api("GET", f"/organisations/{TENANT}/members").json()["items"]
    target = next(m for m in members if m["email"] == "viewer@example.com")
    assert (
        me.api("PATCH", f"/organisations/{TENANT}/members/{target['id']}", json={"role": "admin"}).status_code
        == 403
    )
    assert me.api("DELETE", f"/organisations/{TENANT}/members/{target['id']}").status_code == 403
    assert state(backend) == before


def test_a_viewer_cannot_run_but_an_operator_can(stack):
    backend = stack["backend"]
    refused = stack["viewer"].api("POST", f"/organisations/{TENANT}/runs", json={})
    assert refused.status_code == 403 and "Viewers cannot run backups" in refused.json()["error"]["message"]
    started = stack["operator"].api("POST", f"/organisations/{TENANT}/runs", json={})
    assert started.status_code == 202, started.text
    run = started.json()["id"]
    assert stack["viewer"].api("POST", f"/runs/{run}/cancel").status_code == 403
    assert stack["operator"].api("POST", f"/runs/{run}/cancel").status_code in (202, 409)
    backend.wait_for_run(TENANT, run)


def test_not_a_member_is_404_and_a_member_without_the_role_403(stack):
    other = stack["viewer"].api("GET", f"/organisations/{OTHER}/status")
    assert other.status_code == 404  # not their tenant: not there, as far as they can tell
    assert stack["viewer"].api("POST", f"/organisations/{OTHER}/runs", json={}).status_code == 404
    assert stack["viewer"].api("POST", f"/organisations/{TENANT}/runs", json={}).status_code == 403


def test_the_ui_hides_and_refuses_what_a_viewer_may_not_do(stack):
    backend, plan, viewer = stack["backend"], stack["plan"], stack["viewer"]
    before = state(backend)
    listing = viewer.page("/plans")
    assert listing.status_code == 200 and f'data-plan="{plan}"' in listing.text
    for action in ('aria-label="Backup now', ">Edit<", "Duplicate", "Create plan", "/toggle"):
        assert action not in listing.text, action
    edit = viewer.page(f"/plans/{plan}/edit")
    assert edit.status_code == 403 and "Viewers cannot edit plans" in edit.text
    for path in (
        f"/plans/{plan}/toggle",
        f"/plans/{plan}/delete",
        f"/plans/{plan}/duplicate",
        f"/plans/{plan}/run",
    ):
        r = viewer.form(path)
        assert r.status_code == 403, path
    assert viewer.form("/plans/new", name="sneaky").status_code == 403
    assert state(backend) == before
    settings = viewer.page(f"/settings?org={TENANT}")
    assert (
        settings.status_code == 200
        and "Create invitation" not in settings.text
        and "Remove…" not in settings.text
    )


def test_the_ui_lets_an_operator_run_but_not_edit(stack):
    plan, operator = stack["plan"], stack["operator"]
    listing = operator.page("/plans")
    assert "Backup now" in listing.text and ">Edit<" not in listing.text
    toggled = operator.form(f"/plans/{plan}/toggle")
    assert toggled.status_code == 403 and "Operators cannot edit plans" in toggled.text
    run = operator.form(f"/plans/{plan}/run")
    assert run.status_code == 303 and "/runs" in run.headers["Location"]
    jira = operator.page(f"/settings/jira?org={TENANT}")
    assert "Check now" in jira.text and "Replace token" not in jira.text


def test_an_admin_may_do_all_and_the_last_admin_stays(stack):
    admin = stack["admin"]
    plan = stack["plan"]
    assert "Edit" in admin.page("/plans").text
    assert (
        admin.api("PATCH", f"/plans/{plan}", json={"schedule": {"days": ["tue"], "hour": 2}}).status_code
        == 200
    )
    members = {m["email"]: m for m in admin.api("GET", f"/organisations/{TENANT}/members").json()["items"]}
    me = members["admin@example.com"]
    demoted = admin.api("PATCH", f"/organisations/{TENANT}/members/{me['id']}", json={"role": "viewer"})
    assert demoted.status_code == 409 and demoted.json()["error"]["code"] == "last_admin"
    assert admin.api("DELETE", f"/organisations/{TENANT}/members/{me['id']}").status_code == 409
    page = admin.form(f"/settings/members/{me['id']}/role?org={TENANT}", role="viewer")
    assert page.status_code == 303
    assert admin.api("GET", f"/organisations/{TENANT}/members").json()["items"] == list(members.values())
    # With a second admin, the first may step down.
    op = members["operator@example.com"]
    assert admin.form(f"/settings/members/{op['id']}/role?org={TENANT}", role="admin").status_code == 303
    assert (
        admin.api("PATCH", f"/organisations/{TENANT}/members/{me['id']}", json={"role": "viewer"}).status_code
        == 200
    )
    assert admin.api("PATCH", f"/plans/{plan}", json={"name": "after"}).status_code == 403
    back = stack["operator"].api(
        "PATCH", f"/organisations/{TENANT}/members/{me['id']}", json={"role": "admin"}
    )
    assert back.status_code == 200, back.text
    down = stack["operator"].api(
        "PATCH", f"/organisations/{TENANT}/members/{op['id']}", json={"role": "operator"}
    )
    assert down.status_code == 200, down.text
    assert admin.api("PATCH", f"/plans/{plan}", json={"name": plan_name(stack)}).status_code == 200


def plan_name(stack) -> str:
    return stack["backend"].call("GET", f"/api/v1/plans/{stack['plan']}", TENANT).json()["name"]


def hand_off(backend: Backend, sub: str, **claims) -> requests.Session:
    token = backend.issuer.token(
        TENANT, typ="sso-handoff+jwt", aud="keepstone-backend-sso", sub=sub, name="Jira person", **claims
    )
    browser = requests.Session()
    r = browser.post(
        backend.url + "/sso",
        data={"token": token},
        headers={"Origin": backend.issuer.server.url},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 303, r.text
    return browser


def role_of(backend: Backend, account_id: str) -> tuple[str, str]:
    with backend.app.extensions["keepstone"].db.session() as s:
        row = s.execute(
            select(Membership.role, Membership.source)
            .join(User, User.id == Membership.user_id)
            .where(User.jira_account_id == account_id)
        ).one()
        return row.role, row.source


def test_a_jira_hand_off_gives_the_role_jira_implies(stack):
    backend = stack["backend"]
    hand_off(backend, "jira-admin-1", jira_admin=True)
    assert role_of(backend, "jira-admin-1") == ("admin", "jira")
    browser = hand_off(backend, "jira-user-1", jira_admin=False)
    assert role_of(backend, "jira-user-1") == ("viewer", "jira")
    r = browser.get(f"{backend.url}/plans/{stack['plan']}/edit", timeout=10)
    assert r.status_code == 403 and "Viewers cannot edit plans" in r.text
    hand_off(backend, "jira-none-1")  # a token without the claim: the least role
    assert role_of(backend, "jira-none-1") == ("viewer", "jira")
    # Auto-created: follows Jira. Once an admin sets a role by hand, it is kept.
    hand_off(backend, "jira-user-1", jira_admin=True)
    assert role_of(backend, "jira-user-1") == ("admin", "jira")
    members = {
        m["jira_account_id"]: m
        for m in stack["admin"].api("GET", f"/organisations/{TENANT}/members").json()["items"]
    }
    target = members["jira-user-1"]["id"]
    changed = stack["admin"].api(
        "PATCH", f"/organisations/{TENANT}/members/{target}", json={"role": "operator"}
    )
    assert changed.status_code == 200 and changed.json()["source"] == "manual"
    hand_off(backend, "jira-user-1", jira_admin=False)
    hand_off(backend, "jira-user-1", jira_admin=True)
    assert role_of(backend, "jira-user-1") == ("operator", "manual")


def test_the_connector_acts_as_admin_of_its_tenant(stack):
    backend = stack["backend"]
    assert (
        backend.call("PATCH", f"/api/v1/plans/{stack['plan']}", TENANT, json={"enabled": True}).status_code
        == 200
    )
    assert backend.call("GET", f"/api/v1/plans/{stack['plan']}", OTHER).status_code == 404


def test_two_admins_demoting_each_other_at_once_leave_one(backend, sandbox_site):
    """The last-admin rule holds under a race: the check is inside the UPDATE (and a row lock on PostgreSQL)."""
    import threading

    backend.install(TENANT, sandbox_site.url)
    add_member(backend, "a@example.com", "admin")
    add_member(backend, "b@example.com", "admin")
    a, b = Member(backend, "a@example.com"), Member(backend, "b@example.com")
    ids = {m["email"]: m["id"] for m in a.api("GET", f"/organisations/{TENANT}/members").json()["items"]}
    for _ in range(5):
        barrier, answers = threading.Barrier(2), {}

        def demote(me: Member, other: str, barrier=barrier, answers=answers) -> None:
            barrier.wait()
            path = f"/organisations/{TENANT}/members/{ids[other]}"
            answers[other] = me.api("PATCH", path, json={"role": "viewer"}).status_code

        threads = [
            threading.Thread(target=demote, args=(a, "b@example.com")),
            threading.Thread(target=demote, args=(b, "a@example.com")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # One wins; the other is refused as the last admin (409) or, already demoted, as a viewer (403).
        assert sorted(answers.values()) in ([200, 403], [200, 409]), answers
        with backend.app.extensions["keepstone"].db.session() as s:
            assert (
                s.scalar(select(func.count()).select_from(Membership).where(Membership.role == "admin")) == 1
            )
        winner = a if answers["b@example.com"] == 200 else b
        loser = "b@example.com" if winner is a else "a@example.com"
        assert (
            winner.api(
                "PATCH", f"/organisations/{TENANT}/members/{ids[loser]}", json={"role": "admin"}
            ).status_code
            == 200
        )


def test_create_user_gives_the_role_asked_for(tmp_path, issuer, sandbox_site):
    import os
    import subprocess
    import sys

    backend = make_backend(tmp_path, issuer)
    CLI = (sys.executable, "-m", "keepstone.cli", "backend")
    try:
        backend.install(TENANT, sandbox_site.url)
        env = {
            **os.environ,
            "KEEPSTONE_DATABASE_URL": backend.config.database_url,
            "KEEPSTONE_DATA_DIR": str(tmp_path / "data"),
            "KEEPSTONE_SECRET_KEY": backend.config.secret_key,
            "KEEPSTONE_USER_PASSWORD": PASSWORD,
        }
        made = subprocess.run(
            [*CLI, "create-user", "op@example.com", "--org", TENANT, "--role", "operator"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stderr
        bad = subprocess.run(
            [
                sys.executable,
                "-m",
                "keepstone.cli",
                "backend",
                "create-user",
                "x@example.com",
                "--role",
                "owner",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert bad.returncode == 2 and "invalid choice: 'owner'" in bad.stderr
        op = Member(backend, "op@example.com")
        assert op.api("POST", f"/organisations/{TENANT}/runs", json={}).status_code == 202
        plan = op.api("GET", f"/organisations/{TENANT}/plans").json()["items"][0]["id"]
        assert op.api("PATCH", f"/plans/{plan}", json={"name": "x"}).status_code == 403
    finally:
        stop_backend(backend)
