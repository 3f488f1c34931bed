"""The Audit page in a real browser (Debian chromium + Playwright) against the real backend: change a plan
in its form, see the event with its field diff on /audit, filter, download the CSV; screenshots at 1280
and 375 px (and dark), each checked with axe-core."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.e2e.test_e2e_plans import NARROW, WIDE, axe, plans_of, shoot
from tests.e2e.ui_stack import TENANT, sign_in
from tests.e2e.ui_stack import ui_stack_fixture as ui_stack_fixture  # the fixture

pytestmark = pytest.mark.browser


def test_a_changed_plan_shows_on_audit_with_its_diff_and_downloads_as_csv(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    page.set_viewport_size(WIDE)
    sign_in(page, stack)
    plan = plans_of(stack)[0]
    page.goto(f"{stack.url}/plans/{plan['id']}/edit")
    page.get_by_label("Plan name", exact=True).fill("Nightly, all projects")
    with page.expect_navigation():
        page.get_by_role("button", name="Save plan").click()
    assert plans_of(stack)[0]["name"] == "Nightly, all projects"

    page.get_by_role("navigation", name="Keepstone").get_by_role("link", name="Audit").click()
    page.wait_for_url(f"{stack.url}/audit")
    row = page.locator('#audit tr[data-action="plan.update"]').first
    assert "Ada Lovelace" in row.inner_text()
    change = row.locator("ul.changes li", has_text="name")
    assert change.locator("del").inner_text() == plan["name"]
    assert change.locator("ins").inner_text() == "Nightly, all projects"
    assert page.locator('#audit tr[data-action="signin.ok"]').count() == 1
    assert axe(page) == [], axe(page)
    shoot(page, "audit-1280")

    # a filter narrows the table and the export links carry it
    page.get_by_label("Action").select_option("plan")
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()
    assert (
        page.locator("#audit tbody tr").count()
        == page.locator('#audit tr[data-action^="plan."]').count()
        >= 1
    )
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    with open(download.value.path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    assert rows and all(r["action"].startswith("plan.") for r in rows)
    edited = next(r for r in rows if r["action"] == "plan.update")
    assert json.loads(edited["changes"])["name"] == {"before": plan["name"], "after": "Nightly, all projects"}
    assert edited["actor"] == "ada@example.com" and edited["organisation"] == TENANT

    page.set_viewport_size(NARROW)
    page.goto(f"{stack.url}/audit")
    assert axe(page) == [], axe(page)
    shoot(page, "audit-375")
    page.set_viewport_size(WIDE)
    page.emulate_media(color_scheme="dark")
    page.reload()
    assert axe(page) == [], axe(page)
    shoot(page, "audit-1280-dark")
