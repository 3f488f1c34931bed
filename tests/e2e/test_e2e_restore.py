"""Restore from the UI in a real browser: a deleted issue put back into its project, and a whole project
into a new key, each ending with its report and key map; a bad form stores nothing; a viewer cannot
restore. Screenshots at 375 and 1280 px, each page checked with axe-core."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, update

from backend.db.models import Membership, RestoreJob, User
from tests.e2e.test_e2e_members import sign_in_as
from tests.e2e.test_e2e_plans import WIDE, checked_at_both_widths
from tests.e2e.ui_stack import TENANT, UiStack, add_member_only, sign_in
from tests.e2e.ui_stack import ui_stack_fixture as ui_stack_fixture  # the fixture

pytestmark = pytest.mark.browser
AUTH = ("admin@example.com", "sandbox-admin-token")


def _backup(stack: UiStack) -> dict:
    started = stack.backend.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={})
    run = stack.backend.wait_for_run(TENANT, started.json()["id"])
    assert run["state"] in ("succeeded", "warning"), run
    return {p["project"]: p["snapshot_id"] for p in run["projects"]}


def _jira(stack: UiStack, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, f"{stack.site.url}{path}", auth=AUTH, timeout=30, **kw)


def _finished(page) -> str:
    page.locator("#live[data-live=off]").wait_for(timeout=120_000)
    return page.locator("#restore-state .lozenge").text_content()


def test_a_deleted_issue_and_a_whole_project_come_back_from_the_ui(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    snapshots = _backup(stack)
    summary = _jira(stack, "GET", "/rest/api/3/issue/PLAT-3").json()["fields"]["summary"]
    assert _jira(stack, "DELETE", "/rest/api/3/issue/PLAT-3").status_code == 204
    page.set_viewport_size(WIDE)
    sign_in(page, stack)
    page.get_by_role("navigation", name="Keepstone").get_by_role("link", name="Restore").click()
    page.wait_for_url(re.compile(r".*/restore$"))
    checked_at_both_widths(page, "restore")

    # A bad submit: a key that is not in the snapshot, and a new project without a key. Nothing starts.
    page.get_by_label("Snapshot").select_option(f"PLAT/{snapshots['PLAT']}")
    page.get_by_role("radio", name="Single issues").check()
    page.get_by_label("Issue keys").fill("PLAT-3, PLAT-999")
    page.get_by_role("radio", name="A new project").check()
    page.get_by_role("button", name="Restore", exact=True).click()
    assert "not in this snapshot: PLAT-999" in page.locator("#err-issues").inner_text()
    assert page.locator("#err-target_key").is_visible()
    assert page.locator("#restores").count() == 0  # no restore was started
    checked_at_both_widths(page, "restore-errors")

    # The dry run says what would happen and changes nothing.
    page.get_by_label("Issue keys").fill("PLAT-3")
    page.get_by_role("radio", name="The original project (re-create what is gone)").check()
    page.get_by_role("button", name="Dry run").click()
    plan = page.locator("#dry-run pre").inner_text()
    assert "into the original project PLAT" in plan and "issues: 1" in plan
    assert _jira(stack, "GET", "/rest/api/3/issue/PLAT-3").status_code == 404
    checked_at_both_widths(page, "restore-dry-run")

    page.get_by_role("button", name="Restore", exact=True).click()
    page.wait_for_url(re.compile(r".*/restore/rst_[a-z2-7]+$"))
    assert _finished(page) == "succeeded"
    rows = page.locator("#key-map tbody tr")
    assert rows.count() == 1 and rows.first.locator("td").first.inner_text() == "PLAT-3"
    new_key = rows.first.locator("td").nth(1).inner_text()
    assert _jira(stack, "GET", f"/rest/api/3/issue/{new_key}").json()["fields"]["summary"] == summary
    assert "Fidelity report" in page.content()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download key map (JSON)").click()
    assert json.loads(Path(download.value.path()).read_text())["keys"] == {"PLAT-3": new_key}
    checked_at_both_widths(page, "restore-single-done")

    # The whole project into a new key.
    page.goto(stack.url + "/restore")
    page.get_by_label("Snapshot").select_option(f"WEB/{snapshots['WEB']}")
    page.get_by_role("radio", name="The whole project").check()
    page.get_by_role("radio", name="A new project").check()
    page.get_by_label("Project key").fill("WEBR")
    page.get_by_label("New project's name").fill("Web (restored)")
    page.get_by_role("button", name="Restore", exact=True).click()
    assert _finished(page) in ("succeeded", "partial")
    mapped = page.locator("#key-map tbody tr td:nth-child(2)").all_inner_texts()
    issues = _jira(
        stack,
        "GET",
        "/rest/api/3/search/jql",
        params={"jql": "project = WEBR", "maxResults": 100, "fields": "summary"},
    )
    assert len(mapped) == 12 and all(k.startswith("WEBR-") for k in mapped)
    assert sorted(i["key"] for i in issues.json()["issues"]) == sorted(mapped)
    checked_at_both_widths(page, "restore-project-done")


def test_a_viewer_sees_restores_but_cannot_start_one(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    snapshots = _backup(stack)
    add_member_only(stack.backend, "vic@example.com", [TENANT], "Vic Viewer")
    db = stack.backend.app.extensions["keepstone"].db
    with db.session() as s:
        vic = s.scalar(select(User.id).where(User.email == "vic@example.com"))
        s.execute(update(Membership).where(Membership.user_id == vic).values(role="viewer"))
        s.commit()
    sign_in_as(page, stack, "vic@example.com")
    page.goto(stack.url + "/restore")
    assert page.get_by_role("button", name="Restore", exact=True).count() == 0
    assert page.get_by_role("button", name="Dry run").count() == 0  # a dry run needs the operator role too
    assert "operators and admins run them" in page.content()
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    form = {"csrf_token": token, "snapshot": f"PLAT/{snapshots['PLAT']}", "what": "issues", "issues": "PLAT-1",
            "target": "original", "action": "start"}  # fmt: skip
    assert page.request.post(stack.url + "/restore", form=form).status == 403
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(RestoreJob)) == 0
