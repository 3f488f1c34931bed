"""The snapshot browser and search in a real browser: two runs with an edit between them, then projects ->
snapshots -> issues -> an old version of an issue and its diff, a search hit across snapshots, an
attachment download; screenshots at 375 and 1280 px, each page checked with axe-core."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.e2e.test_e2e_plans import WIDE, checked_at_both_widths
from tests.e2e.ui_stack import TENANT, UiStack, sign_in
from tests.e2e.ui_stack import ui_stack_fixture as ui_stack_fixture  # the fixture

pytestmark = pytest.mark.browser
PHRASE = "quarterly marmalade audit"


def _keep_everything(stack: UiStack) -> None:
    """Two runs on one day: GFS would keep only the newest of the day; an archive plan keeps both."""
    plans = stack.backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"]
    default = next(p for p in plans if p["is_default"])
    answer = stack.backend.call(
        "PATCH", f"/api/v1/plans/{default['id']}", TENANT, json={"rotation": {"scheme": "unlimited"}}
    )
    assert answer.status_code == 200, answer.text


def _run(stack: UiStack) -> dict:
    started = stack.backend.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={})
    assert started.status_code == 202, started.text
    run = stack.backend.wait_for_run(TENANT, started.json()["id"])
    assert run["state"] in ("succeeded", "warning"), run
    return {p["project"]: p["snapshot_id"] for p in run["projects"]}


def _edit(stack: UiStack, key: str) -> None:
    """An admin's edit in Jira, through its REST API: a new summary and a comment with the phrase."""
    auth = ("admin@example.com", "sandbox-admin-token")
    body = {"fields": {"summary": f"Renamed before the second backup ({key})"}}
    requests.put(
        f"{stack.site.url}/rest/api/3/issue/{key}", json=body, auth=auth, timeout=10
    ).raise_for_status()
    comment = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
        {"type": "text", "text": f"Notes of the {PHRASE}."}]}]}  # fmt: skip
    requests.post(
        f"{stack.site.url}/rest/api/3/issue/{key}/comment", json={"body": comment}, auth=auth, timeout=10
    ).raise_for_status()


def test_browse_to_an_old_version_and_its_diff_and_search_across_snapshots(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    _keep_everything(stack)
    first = _run(stack)
    key = "PLAT-2"
    _edit(stack, key)
    second = _run(stack)
    page.set_viewport_size(WIDE)
    sign_in(page, stack)

    page.get_by_role("navigation", name="Keepstone").get_by_role("link", name="Snapshots").click()
    page.wait_for_url(re.compile(r".*/snapshots$"))
    rows = page.locator("#projects tbody tr")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.project)")) == sorted(first)
    assert page.locator("tr[data-project=PLAT] td[data-label=Snapshots]").inner_text() == "2"
    checked_at_both_widths(page, "snapshots")

    page.get_by_role("link", name="PLAT", exact=True).click()
    assert page.locator("#snapshots tbody tr").evaluate_all("rs => rs.map(r => r.dataset.snapshot)") == [
        second["PLAT"],
        first["PLAT"],
    ]
    checked_at_both_widths(page, "snapshot-list")
    page.locator(f"tr[data-snapshot='{first['PLAT']}'] a").click()  # the older one
    # Filter by status: every row listed has it, and the count says how many of all match.
    status = page.locator("#f-status option").nth(1).get_attribute("value")
    page.locator("#f-status").select_option(status)
    page.get_by_role("button", name="Find").click()
    shown = page.locator("#issues td[data-label=Status]").all_inner_texts()
    assert shown and set(shown) == {status} and len(shown) < 12
    page.locator("#f-status").select_option("")
    page.get_by_label("Find issues by key or summary").fill(key)
    page.get_by_role("button", name="Find").click()
    assert page.locator("#issues tbody tr").evaluate_all("rs => rs.map(r => r.dataset.key)") == [key]
    checked_at_both_widths(page, "snapshot-issues")

    # The old version: its own summary, no phrase in its comments, and a history that says it changed.
    page.get_by_role("link", name=key, exact=True).click()
    heading = page.get_by_role("heading", level=1).inner_text()
    assert key in heading and "Renamed before the second backup" not in heading
    assert PHRASE not in page.locator("#h-comments").locator("..").inner_text()
    history = page.locator("ol.history li")
    assert history.count() == 2 and "(this one)" in history.nth(0).inner_text()
    details = dict(
        zip(
            page.locator("dl.details dt").all_inner_texts(),
            page.locator("dl.details dd").all_inner_texts(),
            strict=True,
        )
    )
    assert details["Type"] and details["Status"] and "T" not in details["Created"]  # names and local times
    assert "changed" in history.nth(1).inner_text()
    checked_at_both_widths(page, "snapshot-issue-old")

    # The newer version: the diff names the summary, old and new, and the added comment.
    history.nth(1).get_by_role("link").click()
    diff = page.locator("#diff")
    diff.wait_for()
    text = diff.inner_text()
    assert "summary" in text and f"+ Renamed before the second backup ({key})" in text
    assert "1 comment(s) added." in text
    assert PHRASE in page.locator("#h-comments").locator("..").inner_text()
    checked_at_both_widths(page, "snapshot-issue-diff")

    # Search: the phrase is in the newer snapshot only; a phrase of an unchanged issue is in both.
    page.goto(stack.url + "/search?q=" + requests.utils.quote("Quarterly  MARMALADE audit"))
    hits = page.locator("section.hit")
    assert hits.count() == 1 and hits.first.get_attribute("data-key") == key
    assert "In 1 snapshot:" in hits.first.inner_text()
    checked_at_both_widths(page, "search")
    page.get_by_label("Phrase").fill("   ")
    page.get_by_role("button", name="Search").click()
    assert page.locator("#err-q").inner_text() == "give a word or a phrase to search for"

    # What PLAT-2 looked like on a date: today is the newer snapshot; long ago there was none.
    page.get_by_label("Issue key").fill(key)
    page.get_by_label("Date", exact=True).fill(
        datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin")).date().isoformat()
    )
    page.get_by_role("button", name="Open").click()
    page.wait_for_url(re.compile(rf".*/snapshots/PLAT/{second['PLAT']}/issues/{key}$"))
    page.goto(stack.url + f"/search/as-of?key={key}&date=2001-01-01")
    assert page.locator("#err-as-of").inner_text() == f"no snapshot held {key} on or before 2001-01-01"


def test_another_organisations_snapshot_is_not_there_and_attachments_download(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    snapshots = _run(stack)
    sign_in(page, stack)
    # An issue with an attachment in the backup: download it, byte for byte as Jira serves it.
    listed = requests.get(f"{stack.site.url}/_sandbox/attachments", timeout=10).json()
    item = next(a for a in listed if a["issue"].startswith("PLAT-"))
    page.goto(f"{stack.url}/snapshots/PLAT/{snapshots['PLAT']}/issues/{item['issue']}")
    link = page.locator(f"a.attachment[href$='/attachments/{item['id']}']").first
    with page.expect_download() as download:
        link.click()
    got = download.value
    auth = ("admin@example.com", "sandbox-admin-token")
    original = requests.get(
        f"{stack.site.url}/rest/api/3/attachment/content/{item['id']}", auth=auth, timeout=10
    )
    assert original.status_code == 200 and Path(got.path()).read_bytes() == original.content
    assert got.suggested_filename == item["filename"]  # the UTF-8 name (RFC 6266), not the ASCII fallback
    # The same snapshot asked for under the other organisation is the same 404 as one that does not exist.
    other = page.goto(
        f"{stack.url}/snapshots/PLAT/{snapshots['PLAT']}?org=bbbbbbbb-1111-4222-8333-444444444444"
    )
    missing = page.goto(f"{stack.url}/snapshots/PLAT/{'0' * 64}")
    assert other.status == missing.status == 404
