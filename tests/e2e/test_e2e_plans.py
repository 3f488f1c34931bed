"""The management UI in a real browser (Debian chromium + Playwright) against the real backend and a
sandbox site over HTTP: a plan for selected projects with GFS made in the form and run by Backup now; a
bad plan refused beside its fields with nothing stored; every page at 375 and 1280 px (light, and dark
for some), each checked with axe-core (no serious or critical violations)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from tests.e2e.ui_stack import PASSWORD, SECOND, TENANT, UiStack, add_member_only, sign_in
from tests.e2e.ui_stack import ui_stack_fixture as ui_stack_fixture  # the fixture

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WIDE, NARROW = {"width": 1280, "height": 860}, {"width": 375, "height": 812}
PAGES = ["/", "/plans", "/plans/new", "/runs", "/storages", "/snapshots", "/restore", "/notifications", "/audit", "/settings"]  # fmt: skip

pytestmark = pytest.mark.browser


def plans_of(stack: UiStack, tenant: str = TENANT) -> list[dict]:
    r = stack.backend.call("GET", f"/api/v1/organisations/{tenant}/plans", tenant)
    r.raise_for_status()
    return r.json()["items"]


def axe(page) -> list[dict]:
    """Serious and critical axe-core violations of the page as it is now."""
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `make install` (npm ci)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # through DevTools: the page's CSP allows no inline script
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def shoot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"backend-{name}.png"), full_page=True)


def checked_at_both_widths(page, name: str) -> None:
    """axe-core finds nothing serious at 1280 and at 375 px; a screenshot of each (the page ends wide)."""
    for width, size in (("1280", WIDE), ("375", NARROW)):
        page.set_viewport_size(size)
        assert axe(page) == [], width
        shoot(page, f"{name}-{width}")
    page.set_viewport_size(WIDE)


def test_a_plan_for_selected_projects_with_gfs_runs_on_backup_now(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    page.set_viewport_size(WIDE)
    sign_in(page, stack)
    page.get_by_role("navigation", name="Keepstone").get_by_role("link", name="Plans").click()
    page.get_by_role("link", name="Create plan").first.click()
    page.get_by_label("Plan name", exact=True).fill("Platform and web")
    page.get_by_role("radio", name="Selected projects").check()
    # the picker lists the site's projects live from Jira and filters as one types
    search = page.get_by_label("Find a project")
    search.fill("plat")
    assert page.locator("#f-keys li:visible").count() == 1
    page.get_by_role("checkbox", name=re.compile("PLAT")).check()
    search.fill("web")
    page.get_by_role("checkbox", name=re.compile("WEB")).check()
    search.fill("")
    assert page.locator("#f-keys li:visible").count() == 3
    for day in ("Sat", "Sun"):
        page.locator("#f-days").get_by_label(day).uncheck()
    page.get_by_label("At", exact=True).select_option("3")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_label("Daily", exact=True).fill("14")
    page.get_by_label("Leave out issues matching (JQL)").fill('labels = "no-backup"')
    with page.expect_navigation():
        page.get_by_role("button", name="Check plan").click()
    runs = page.locator("#next-runs li")
    assert runs.count() == 5
    texts = runs.all_inner_texts()
    assert all("03:00" in t and not t.startswith(("Sat", "Sun")) for t in texts), texts
    assert "Europe/Berlin" in page.locator("#next-runs h3").inner_text()
    assert plans_of(stack) and len(plans_of(stack)) == 1  # a check stores nothing
    page.get_by_role("button", name="Create plan").click()
    page.wait_for_url(re.compile(r"/plans\?org="))
    assert "created" in page.locator("#flash").inner_text()

    stored = next(p for p in plans_of(stack) if p["name"] == "Platform and web")
    assert stored["spec"]["projects"]["mode"] == "selected"
    assert stored["spec"]["projects"]["keys"] == ["PLAT", "WEB"]
    assert stored["spec"]["exclude_jql"] == 'labels = "no-backup"'  # Jira took it
    assert stored["schedule"] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "hour": 3,
        "time_zone": "Europe/Berlin",
    }
    assert stored["rotation"] == {
        "scheme": "gfs",
        "keep_daily": 14,
        "keep_weekly": 4,
        "keep_monthly": 12,
        "keep_yearly": 3,
    }
    row = page.locator(f"tr[data-plan='{stored['id']}']")
    assert "PLAT, WEB" in row.inner_text() and "GFS: 14 daily" in row.inner_text()
    assert "Europe/Berlin" in row.inner_text() and "Never run" in row.inner_text()

    row.get_by_role("button", name="Backup now").click()
    page.wait_for_url(re.compile(r"/runs\?org="))
    run_row = page.locator("#runs tbody tr").first
    # the page refreshes itself while the run is active; no reload here
    page.wait_for_function(
        "() => { const row = document.querySelector('#runs tbody tr');"
        " return row !== null && !['queued', 'running'].includes(row.dataset.state); }",
        timeout=60_000,
    )
    run_row = page.locator("#runs tbody tr").first
    assert run_row.get_attribute("data-state") == "succeeded", run_row.inner_text()
    assert "Platform and web" in run_row.inner_text() and "2 ok" in run_row.inner_text()
    assert "No run in progress" in page.locator("#run-status").inner_text()
    run = stack.backend.call("GET", f"/api/v1/runs/{run_row.get_attribute('data-run')}", TENANT).json()
    assert sorted(p["project"] for p in run["projects"]) == ["PLAT", "WEB"]
    assert all(p["snapshot_id"] and p["counts"]["issues"] == 12 for p in run["projects"])
    page.goto(stack.url + "/plans")
    row = page.locator(f"tr[data-plan='{stored['id']}']")
    assert "succeeded" in row.locator("td[data-label='Last result']").text_content()

    # Duplicate (lands on the copy's form, disabled), Disable, Delete (confirmed; the runs of others stay)
    row.locator("summary").click()
    row.get_by_role("button", name="Duplicate").click()
    page.wait_for_url(re.compile(r"/plans/pln_[a-z0-9]+/edit"))
    assert page.get_by_label("Plan name", exact=True).input_value() == "Platform and web (copy)"
    assert not page.get_by_label("Enabled").is_checked()
    copy = next(p for p in plans_of(stack) if p["name"] == "Platform and web (copy)")
    assert copy["spec"] == stored["spec"] and copy["rotation"] == stored["rotation"] and not copy["enabled"]
    page.goto(stack.url + "/plans")
    row = page.locator(f"tr[data-plan='{stored['id']}']")
    row.locator("summary").click()
    with page.expect_navigation():
        row.get_by_role("button", name="Disable").click()
    assert "disabled" in page.locator("#flash").inner_text()
    assert next(p for p in plans_of(stack) if p["id"] == stored["id"])["enabled"] is False
    row = page.locator(f"tr[data-plan='{copy['id']}']")
    row.locator("summary").click()
    with page.expect_navigation(url=re.compile(r"/delete$")):
        row.get_by_role("link", name="Delete").click()
    assert "The backups stay" in page.locator("main").inner_text()
    with page.expect_navigation(url=re.compile(r"/plans\?org=")):
        page.get_by_role("button", name="Delete plan").click()
    assert "deleted" in page.locator("#flash").inner_text()
    assert [p["id"] for p in plans_of(stack) if p["id"] == copy["id"]] == []
    assert stack.backend.call("GET", f"/api/v1/runs/{run['id']}", TENANT).status_code == 200


def test_a_bad_plan_shows_each_error_beside_its_field_and_stores_nothing(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    page.set_viewport_size(WIDE)
    sign_in(page, stack)
    before = plans_of(stack)
    page.goto(stack.url + "/plans/new")
    page.get_by_label("Plan name", exact=True).fill("Typo")
    page.get_by_role("radio", name="Selected projects").check()
    page.get_by_label("Or type keys").fill("PLAT, WBE")
    page.get_by_role("radio", name="By a cron expression").check()
    page.get_by_label("Cron expression", exact=True).fill("99 * * * *")
    page.get_by_role("radio", name=re.compile("^Custom")).check()
    page.get_by_label("Within", exact=True).fill("forever")
    page.get_by_label("Leave out issues matching (JQL)").fill("labels = = broken")
    with page.expect_navigation():
        page.get_by_role("button", name="Create plan").click()
    assert "/plans/new" in page.url
    summary = page.locator("#error-summary")
    assert "was not saved" in summary.inner_text()
    # each message beside its own field, tied to it for screen readers
    for field, text in (
        ("keys_text", "no project WBE"),
        ("cron", "not a valid cron expression"),
        ("keep_within", "not a duration"),
        ("exclude_jql", "Jira refused this JQL"),
    ):
        box = page.locator(f"#f-{field}")
        assert box.get_attribute("aria-invalid") == "true", field
        described = box.get_attribute("aria-describedby").split()[0]
        message = page.locator(f"#{described}")
        assert message.is_visible() and text in message.inner_text(), (field, message.inner_text())
    assert (
        "PLAT" in page.get_by_label("Or type keys").input_value()
        or page.get_by_role("checkbox", name=re.compile("PLAT")).is_checked()
    )  # what was typed survives
    assert page.get_by_label("Cron expression", exact=True).input_value() == "99 * * * *"
    shoot(page, "1280-plan-errors")
    assert axe(page) == []
    assert plans_of(stack) == before  # nothing stored


def test_pages_need_a_session_and_plans_of_others_are_not_there(ui_stack):
    stack = ui_stack
    for path in PAGES:
        r = requests.get(stack.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 302 and "/login" in r.headers["Location"], path
    other = plans_of(stack, SECOND)[0]["id"]
    browser = requests.Session()
    token = (
        browser.get(stack.url + "/login", timeout=10).text.split('name="csrf_token" value="')[1].split('"')[0]
    )
    # a member of TENANT only: SECOND's plan is the same 404 as one that does not exist
    add_member_only(stack.backend, "solo@example.com", [TENANT])
    r = browser.post(
        stack.url + "/login",
        data={"email": "solo@example.com", "password": PASSWORD, "csrf_token": token},
        timeout=10,
    )
    assert r.status_code == 200 and "Dashboard" in r.text
    for method, path in (("GET", f"/plans/{other}/edit"), ("GET", f"/plans/{other}/delete")):
        assert browser.request(method, stack.url + path, timeout=10).status_code == 404
    missing = "pln_" + "a" * 20
    assert browser.get(stack.url + f"/plans/{missing}/edit", timeout=10).status_code == 404
    page = browser.get(stack.url + "/plans", timeout=10).text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    for action in ("run", "toggle", "duplicate", "delete"):
        r = browser.post(stack.url + f"/plans/{other}/{action}", data={"csrf_token": token}, timeout=10)
        assert r.status_code == 404, action
    # a write without the CSRF token is refused
    mine = plans_of(stack)[0]["id"]
    assert browser.post(stack.url + f"/plans/{mine}/toggle", timeout=10).status_code == 400
    assert plans_of(stack)[0]["enabled"] is True
    assert plans_of(stack, SECOND)[0]["enabled"] is True and len(plans_of(stack, SECOND)) == 1


def test_every_page_at_375_and_1280_px_passes_axe(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    # content for the tables: a second plan on a rule, and a finished run
    made = stack.backend.call(
        "POST",
        f"/api/v1/organisations/{TENANT}/plans",
        TENANT,
        json={
            "name": "Platform (hourly, custom)",
            "schedule": {"cron": "15 * * * *", "time_zone": "America/New_York"},
            "spec": {"projects": {"mode": "rule", "key_pattern": "P*"}},
            "rotation": {"scheme": "custom", "keep_last": 24, "keep_daily": 7},
        },
    )
    assert made.status_code == 201, made.text
    started = stack.backend.call(
        "POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={"plan_id": made.json()["id"]}
    )
    stack.backend.wait_for_run(TENANT, started.json()["id"])
    page.set_viewport_size(WIDE)
    sign_in(page, stack)
    problems: dict[str, list] = {}
    for width, size in (("1280", WIDE), ("375", NARROW)):
        page.set_viewport_size(size)
        for path in PAGES:
            page.goto(stack.url + path)
            page.wait_for_load_state()
            assert page.get_by_role("navigation", name="Keepstone").is_visible(), path
            assert "Acme Engineering" in page.locator("header").inner_text(), path
            name = "dashboard" if path == "/" else path.strip("/").replace("/", "-")
            shoot(page, f"{width}-{name}")
            found = axe(page)
            if found:
                problems[f"{width} {path}"] = found
            # nothing wider than the screen (a table may scroll inside its own box)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (width, path, overflow)
    # the rule's preview of what matches now, on the plan's edit page
    page.set_viewport_size(WIDE)
    page.goto(stack.url + f"/plans/{made.json()['id']}/edit")
    assert "Matches now: 1 of 3" in page.locator("#rule-preview").inner_text()
    assert "PLAT" in page.locator("#rule-preview").inner_text()
    shoot(page, "1280-plan-edit-rule")
    # dark
    page.emulate_media(color_scheme="dark")
    for path, name in (("/plans", "plans"), ("/plans/new", "plans-new"), ("/runs", "runs")):
        page.goto(stack.url + path)
        shoot(page, f"1280-dark-{name}")
        found = axe(page)
        if found:
            problems[f"dark {path}"] = found
    page.emulate_media(color_scheme="light")
    # the switcher: the other organisation, and back
    page.goto(stack.url + "/plans")
    with page.expect_navigation(url=stack.url + "/plans"):
        page.get_by_label("Organisation").select_option(SECOND)
    assert "Globex Support" in page.locator("header").inner_text()
    assert page.locator("#plans tbody tr").count() == 1
    assert problems == {}, problems
