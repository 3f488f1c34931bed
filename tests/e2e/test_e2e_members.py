"""Accounts and roles in a real browser (Debian chromium + Playwright) against the real backend and a
sandbox site: a viewer who cannot edit (no Edit/Delete/Backup now, a forced POST refused, nothing
changed); an admin invites, the invitee accepts and signs in; the Jira account's Check now and a refused
Replace token. Settings at 375 and 1280 px, each page checked with axe-core."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from tests.e2e.test_e2e_plans import NARROW, WIDE, axe, plans_of, shoot
from tests.e2e.ui_stack import PASSWORD, TENANT, UiStack, sign_in
from tests.e2e.ui_stack import ui_stack_fixture as ui_stack_fixture  # the fixture

pytestmark = pytest.mark.browser
VIEWER = "vera@example.com"


def add_with_role(stack: UiStack, email: str, role: str, name: str) -> None:
    from backend.db.models import Membership, Organisation, User

    with stack.backend.app.extensions["keepstone"].db.session() as s:
        user = User(email=email, display_name=name, password_hash=generate_password_hash(PASSWORD))
        s.add(user)
        s.flush()
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == TENANT))
        s.add(Membership(user_id=user.id, organisation_id=org.id, role=role))
        s.commit()


def sign_in_as(page, stack: UiStack, email: str, password: str = PASSWORD) -> None:
    page.goto(stack.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + "/")


def clean(page) -> None:
    violations = axe(page)
    assert violations == [], violations


def test_a_viewer_who_cannot_edit(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    add_with_role(stack, VIEWER, "viewer", "Vera Viewer")
    before = plans_of(stack)
    plan = before[0]
    page.set_viewport_size(WIDE)
    sign_in_as(page, stack, VIEWER)
    page.get_by_role("navigation", name="Keepstone").get_by_role("link", name="Plans").click()
    row = page.locator(f'tr[data-plan="{plan["id"]}"]')
    assert plan["name"] in row.inner_text()
    for name in ("Edit", "Backup now", "More", "Delete…"):
        assert row.get_by_role("button", name=re.compile(name)).count() == 0, name
        assert row.get_by_role("link", name=re.compile(name)).count() == 0, name
    assert page.get_by_role("link", name="Create plan").count() == 0
    assert "viewer role" in page.locator("#role-note").inner_text()
    clean(page)
    shoot(page, "plans-viewer-1280")

    # Forced: the edit page by its URL, and POSTs with a valid CSRF token, as a crafted form would send.
    page.goto(f"{stack.url}/plans/{plan['id']}/edit")
    assert "Viewers cannot edit plans" in page.locator("main").inner_text()
    clean(page)
    shoot(page, "plan-edit-refused-1280")
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    for action in ("toggle", "delete", "duplicate", "run"):
        answer = page.request.post(
            f"{stack.url}/plans/{plan['id']}/{action}", form={"csrf_token": token}, max_redirects=0
        )
        assert answer.status == 403, (action, answer.status)
    api = page.request.patch(
        f"{stack.url}/api/v1/plans/{plan['id']}", data={"name": "renamed"}, headers={"X-CSRFToken": token}
    )
    assert api.status == 403 and "Viewers cannot edit plans" in api.json()["error"]["message"]
    assert plans_of(stack) == before  # nothing changed
    runs = stack.backend.call("GET", f"/api/v1/organisations/{TENANT}/runs", TENANT).json()["items"]
    assert runs == []

    page.get_by_role("navigation", name="Keepstone").get_by_role("link", name="Settings").click()
    assert page.get_by_role("button", name="Create invitation").count() == 0
    assert page.locator("#members").get_by_role("button").count() == 0
    assert "Only admins" in page.locator("#admins-only").inner_text()


def test_an_admin_invites_and_the_invitee_joins(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    add_with_role(stack, VIEWER, "viewer", "Vera Viewer")  # a second member: role select and Remove shown
    page.set_viewport_size(WIDE)
    sign_in(page, stack)
    page.get_by_role("navigation", name="Keepstone").get_by_role("link", name="Settings").click()
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Role", exact=True).select_option("operator")
    with page.expect_navigation():
        page.get_by_role("button", name="Create invitation").click()
    link = page.locator("#invite-link pre").inner_text().strip()
    assert re.fullmatch(rf"{re.escape(stack.url)}/invite/[A-Za-z0-9_-]{{43}}", link), link
    assert "grace@example.com" in page.locator("#invitations").inner_text()
    vera = page.locator("#members tr", has_text="Vera Viewer")
    assert vera.get_by_label("Role of Vera Viewer", exact=True).input_value() == "viewer"
    ada = page.locator("#members tr", has_text="Ada Lovelace")
    assert ada.locator("select").count() == 0 and "the last admin" in ada.inner_text()
    clean(page)
    shoot(page, "settings-members-1280")
    page.set_viewport_size(NARROW)
    clean(page)
    shoot(page, "settings-members-375")

    page.get_by_role("button", name="Sign out").click()
    page.goto(link)
    assert "Join Acme Engineering" in page.locator("h1").inner_text()
    clean(page)
    shoot(page, "invite-375")
    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_label("Choose a password").fill("short")
    page.get_by_label("The password again").fill("short")
    with page.expect_navigation():
        page.get_by_role("button", name="Join and sign in").click()
    assert "at least 12 characters" in page.locator("#err-password").inner_text()
    page.get_by_label("Choose a password").fill("compilers all the way down")
    page.get_by_label("The password again").fill("compilers all the way down")
    with page.expect_navigation():
        page.get_by_role("button", name="Join and sign in").click()
    assert page.url.startswith(stack.url + "/")
    assert "operator role" in page.locator("#flash").inner_text()
    page.set_viewport_size(WIDE)
    page.get_by_role("navigation", name="Keepstone").get_by_role("link", name="Plans").click()
    row = page.locator("#plans tbody tr").first
    assert row.get_by_role("button", name=re.compile("Backup now")).count() == 1  # an operator runs
    assert row.get_by_role("link", name=re.compile("Edit")).count() == 0  # but does not edit
    page.goto(link)  # used: the link is dead now
    assert "This link does not work" in page.locator("h1").inner_text()


def test_the_jira_account_check_now_and_a_refused_replacement(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    page.set_viewport_size(WIDE)
    sign_in(page, stack)
    page.goto(f"{stack.url}/settings/jira?org={TENANT}")
    with page.expect_navigation():
        page.get_by_role("button", name="Check now").click()
    assert "accepted" in page.locator("#last-check").inner_text()
    assert "Jira accepted the token" in page.locator("#flash").inner_text()
    before = stack.backend.call("GET", f"/api/v1/organisations/{TENANT}/account", TENANT).json()
    page.get_by_label("API token").fill("not-the-right-token")
    with page.expect_navigation():
        page.get_by_role("button", name="Replace token").click()
    assert "rejected by Jira" in page.locator("#err-api_token").inner_text()
    after = stack.backend.call("GET", f"/api/v1/organisations/{TENANT}/account", TENANT).json()
    assert after["set_at"] == before["set_at"] and after["email"] == before["email"]
    page.goto(f"{stack.url}/settings/jira?org={TENANT}")
    clean(page)
    shoot(page, "settings-jira-1280")
    page.set_viewport_size(NARROW)
    clean(page)
    shoot(page, "settings-jira-375")
