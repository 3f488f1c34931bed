"""Settings, Recovery in a real browser (Debian chromium + Playwright) against the real backend: an admin
sets the recovery passphrase (a short one and two different ones are refused beside the field, nothing
changed), the organisation's repository then opens with it, a viewer sees no form, the admin removes it.
375 and 1280 px, each state checked with axe-core."""

from __future__ import annotations

import time

import pytest

from backend.repository import Repository, WrongPassword
from backend.storage import open_storage
from tests.e2e.test_e2e_members import add_with_role, clean, sign_in_as
from tests.e2e.test_e2e_plans import NARROW, WIDE, shoot
from tests.e2e.ui_stack import EMAIL, TENANT, UiStack
from tests.e2e.ui_stack import ui_stack_fixture as ui_stack_fixture  # the fixture

pytestmark = pytest.mark.browser
PASSPHRASE = "four unrelated words in the safe"


def backed_up(stack: UiStack) -> str:
    """Run the default plan once, so the organisation has a repository; its URL."""
    run = stack.backend.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={}).json()
    deadline = time.monotonic() + 120
    while stack.backend.call("GET", f"/api/v1/runs/{run['id']}", TENANT).json()["state"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.3)
    return stack.backend.config.repository_url(TENANT)


def submit(page, passphrase: str, again: str, label: str = "") -> None:
    page.get_by_label("Passphrase", exact=True).fill(passphrase)
    page.get_by_label("Passphrase again").fill(again)
    page.get_by_label("Label").fill(label)
    with page.expect_navigation():
        page.get_by_role("button", name="Set passphrase").click()


def test_an_admin_sets_and_removes_the_recovery_passphrase_and_a_viewer_only_sees_it(ui_stack, browser_page):
    page, stack = browser_page, ui_stack
    url = backed_up(stack)
    page.set_viewport_size(WIDE)
    sign_in_as(page, stack, EMAIL)
    page.goto(f"{stack.url}/settings?org={TENANT}")
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Recovery").click()
    page.wait_for_url(f"{stack.url}/settings/recovery?org={TENANT}")
    assert "No recovery passphrase yet" in page.locator("#recovery").inner_text()
    clean(page)
    shoot(page, "settings-recovery-1280")

    submit(page, "short", "short")
    assert "at least 12 characters" in page.locator("#err-passphrase").inner_text()
    submit(page, PASSPHRASE, PASSPHRASE + " not", "safe")
    assert "the two passphrases differ" in page.locator("#err-again").inner_text()
    assert page.get_by_label("Label").input_value() == "safe"  # kept; the passphrases are not
    clean(page)
    shoot(page, "settings-recovery-refused-1280")
    with pytest.raises(WrongPassword):
        Repository.open(open_storage(url), PASSPHRASE)

    submit(page, PASSPHRASE, PASSPHRASE, "the office safe")
    flash = page.get_by_text("Recovery passphrase set (fingerprint").inner_text()
    assert "1 repository up to date" in flash, flash
    summary = page.locator("#recovery").inner_text()
    fingerprint = flash.split("fingerprint ")[1].split(")")[0]
    assert fingerprint in summary and "the office safe" in summary and "No recovery" not in summary, summary
    assert PASSPHRASE not in page.content()
    assert Repository.open(open_storage(url), PASSPHRASE).snapshots()
    clean(page)
    shoot(page, "settings-recovery-set-1280")
    page.set_viewport_size(NARROW)
    clean(page)
    shoot(page, "settings-recovery-set-375")

    viewer = page.context.browser.new_page()
    add_with_role(stack, "vic@example.com", "viewer", "Vic Viewer")
    sign_in_as(viewer, stack, "vic@example.com")
    viewer.goto(f"{stack.url}/settings/recovery?org={TENANT}")
    assert viewer.locator("#admins-only").is_visible() and viewer.locator("#f-passphrase").count() == 0
    assert "the office safe" in viewer.locator("#recovery").inner_text()
    clean(viewer)
    viewer.close()

    page.set_viewport_size(WIDE)
    with page.expect_navigation():
        page.get_by_role("button", name="Remove passphrase").click()
    assert "Recovery passphrase removed" in page.locator("main").inner_text()
    assert "No recovery passphrase yet" in page.locator("#recovery").inner_text()
    with pytest.raises(WrongPassword):
        Repository.open(open_storage(url), PASSPHRASE)
    clean(page)
