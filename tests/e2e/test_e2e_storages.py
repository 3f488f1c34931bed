"""Storages, the run detail page, the rotation preview and projects in two plans, in a real browser (Debian
chromium + Playwright) against the real backend, a sandbox site and Azurite over HTTP: a storage added and
tested (a wrong secret shows the reason, a missing container too, nothing stored by a test), its secret
never shown again; a storage in use cannot be deleted; a finished run's projects and log; each new page
at 375 and 1280 px, checked with axe-core (no serious or critical violations)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tests.backend.conftest import Issuer, make_backend, stop_backend
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, start_sandbox
from tests.e2e.test_e2e_plans import NARROW, WIDE, axe, shoot
from tests.e2e.ui_stack import EMAIL, SECOND, TENANT, UiStack, add_member_only, sign_in
from tests.storage.servers import AZURITE_KEY, azurite_server  # noqa: F401  (the `azurite` fixture)

pytestmark = pytest.mark.browser
WRONG_KEY = "d3Jvbmcga2V5IGZvciBrZWVwc3RvbmUgdGVzdHM="


@pytest.fixture(name="stack")
def stack_fixture(tmp_path: Path) -> Iterator[UiStack]:
    """ui_stack's stack, with a backend that may speak plain http to 127.0.0.1 (Azurite)."""
    issuer = Issuer()
    site = start_sandbox(projects=3, issues_per_project=12, seed=7, corrupt_share=0.0)
    backend = make_backend(tmp_path, issuer, storage_http_hosts="127.0.0.1")
    try:
        for cloud_id, name, tz in ((TENANT, "Acme Engineering", "Europe/Berlin"), (SECOND, "Globex", "UTC")):
            backend.call(
                "PUT",
                f"/api/v1/organisations/{cloud_id}",
                cloud_id,
                json={"site_url": site.url, "display_name": name, "time_zone": tz},
            ).raise_for_status()
        backend.call(
            "PUT",
            f"/api/v1/organisations/{TENANT}/account",
            TENANT,
            json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
        ).raise_for_status()
        add_member_only(backend, EMAIL, [TENANT, SECOND], "Ada Lovelace")
        yield UiStack(backend, site)
    finally:
        stop_backend(backend)
        site.stop()
        issuer.server.stop()


def api(stack: UiStack, method: str, path: str, **kw):
    r = stack.backend.call(method, path, TENANT, **kw)
    assert r.status_code < 300, r.text
    return r.json() if r.content else None


def stored(stack: UiStack) -> list[dict]:
    return api(stack, "GET", f"/api/v1/organisations/{TENANT}/storages")["items"]


def both_widths(page, name: str) -> None:
    """Screenshots at 1280 and 375 px, axe-core clean at each."""
    for size, label in ((WIDE, "1280"), (NARROW, "375")):
        page.set_viewport_size(size)
        shoot(page, f"{label}-{name}")
        assert axe(page) == [], (name, label)
    page.set_viewport_size(WIDE)


def test_a_storage_added_and_tested_a_wrong_secret_shows_the_reason(stack, browser_page, azurite):
    page = browser_page
    endpoint = re.search(r"BlobEndpoint=([^;]+)", azurite).group(1)
    container = f"ui-{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(azurite).create_container(container)
    page.set_viewport_size(WIDE)
    sign_in(page, stack)
    page.get_by_role("navigation", name="Keepstone").get_by_role("link", name="Storages").click()
    assert "No storages yet" in page.locator("main").inner_text()
    both_widths(page, "storages-empty")
    page.get_by_role("link", name="Add storage").first.click()
    page.get_by_label("Name", exact=True).fill("Azure primary")
    page.get_by_role("radio", name=re.compile("^Azure Blob")).check()
    page.get_by_label("Account URL", exact=True).fill(endpoint)
    page.get_by_label("Account name", exact=True).fill("devstoreaccount1")
    page.get_by_label("Container", exact=True).fill(container)
    page.get_by_label("Region", exact=True).fill("azurite (loopback)")
    page.get_by_label("Account key", exact=True).fill(WRONG_KEY)
    with page.expect_navigation():
        page.get_by_role("button", name="Test connection").click()
    result = page.locator("#probe-result")
    assert "Test failed" in result.inner_text() and "Authentication" in result.inner_text()
    key = page.get_by_label("Account key", exact=True)
    assert key.get_attribute("aria-invalid") == "true" and key.input_value() == ""  # never echoed back
    message = page.locator("#" + key.get_attribute("aria-describedby").split()[0])
    assert "refused these credentials" in message.inner_text()
    assert WRONG_KEY not in page.content()
    both_widths(page, "storage-test-failed")
    assert stored(stack) == []  # a test stores nothing

    # a container that does not exist is named as such
    page.get_by_label("Container", exact=True).fill("missing-container")
    page.get_by_label("Account key", exact=True).fill(AZURITE_KEY)
    with page.expect_navigation():
        page.get_by_role("button", name="Test connection").click()
    assert "Missing container or bucket" in page.locator("#probe-result").inner_text()
    assert page.get_by_label("Container", exact=True).get_attribute("aria-invalid") == "true"

    page.get_by_label("Container", exact=True).fill(container)
    page.get_by_label("Account key", exact=True).fill(AZURITE_KEY)
    with page.expect_navigation():
        page.get_by_role("button", name="Test connection").click()
    assert "Connection works" in page.locator("#probe-result").inner_text()
    assert stored(stack) == []
    page.get_by_label("Account key", exact=True).fill(AZURITE_KEY)  # the form never keeps a typed secret
    with page.expect_navigation(url=re.compile(r"/storages\?org=")):
        page.get_by_role("button", name="Add storage").click()
    assert "added" in page.locator("#flash").inner_text()
    [record] = stored(stack)
    assert (
        record["kind"] == "azure"
        and record["has_credentials"]
        and record["location"]["container"] == container
    )
    row = page.locator(f"tr[data-storage='{record['id']}']")
    assert "Azure Blob" in row.inner_text() and "Empty: no backup yet" in row.inner_text()
    assert "No plan" in row.inner_text() and "azurite (loopback)" in row.inner_text()
    assert AZURITE_KEY not in page.content()
    both_widths(page, "storages-list")

    # the secret is never shown again; saving without typing it keeps it
    row.get_by_role("link", name="Edit Azure primary").click()
    key = page.get_by_label("Account key", exact=True)
    assert key.input_value() == "" and "saved, enter a new one" in (key.get_attribute("placeholder") or "")
    assert AZURITE_KEY not in page.content()
    both_widths(page, "storage-edit")
    page.get_by_label("Region", exact=True).fill("West Europe")
    with page.expect_navigation(url=re.compile(r"/storages\?org=")):
        page.get_by_role("button", name="Save storage").click()
    row = page.locator(f"tr[data-storage='{record['id']}']")
    with page.expect_navigation():
        row.get_by_role("button", name="Test connection").click()
    assert "Connection works" in page.locator("#probe-result").inner_text()
    assert stored(stack)[0]["region"] == "West Europe"

    # in use by a plan, it cannot be deleted; once the plan moves away it can
    plan = api(
        stack,
        "POST",
        f"/api/v1/organisations/{TENANT}/plans",
        json={"name": "Nightly", "schedule": {"days": ["mon"], "hour": 3}, "storage_id": record["id"]},
    )
    page.goto(stack.url + "/storages")
    row = page.locator(f"tr[data-storage='{record['id']}']")
    assert "Nightly" in row.inner_text() and "(primary)" in row.inner_text()
    row.get_by_role("link", name="Delete Azure primary").click()
    refusal = page.locator("#in-use")
    assert "cannot be deleted" in refusal.inner_text() and "Nightly" in refusal.inner_text()
    assert page.get_by_role("button", name="Delete storage").count() == 0
    both_widths(page, "storage-delete-refused")
    assert [s["id"] for s in stored(stack)] == [record["id"]]
    api(stack, "PATCH", f"/api/v1/plans/{plan['id']}", json={"storage_id": None})
    page.reload()
    with page.expect_navigation(url=re.compile(r"/storages\?org=")):
        page.get_by_role("button", name="Delete storage").click()
    assert "deleted" in page.locator("#flash").inner_text()
    assert stored(stack) == []


@pytest.mark.slow  # tests/backend/test_storage_pages.py checks the same refusals without a browser
def test_a_bad_storage_form_stores_nothing_and_shows_errors_beside_fields(stack, browser_page):
    page = browser_page
    sign_in(page, stack)
    page.goto(stack.url + "/storages/new")
    page.get_by_label("Name", exact=True).fill("Bad")
    page.get_by_role("radio", name=re.compile("^S3-compatible")).check()
    page.get_by_label("Endpoint", exact=True).fill("ftp://example.com")
    page.get_by_label("Bucket", exact=True).fill("UPPER")
    with page.expect_navigation():
        page.get_by_role("button", name="Add storage").click()
    assert "was not saved" in page.locator("#error-summary").inner_text()
    for field in ("bucket", "secret_access_key"):
        assert page.locator(f"#f-{field}").get_attribute("aria-invalid") == "true", field
    assert page.get_by_label("Endpoint", exact=True).input_value() == "ftp://example.com"  # kept as typed
    # the location's schema first, then the service's rules (backend/storages.py), as through the API
    page.get_by_label("Bucket", exact=True).fill("backups")
    page.get_by_label("Access key id", exact=True).fill("AKIAEXAMPLE")
    page.get_by_label("Secret access key", exact=True).fill("not-a-real-secret")
    with page.expect_navigation():
        page.get_by_role("button", name="Add storage").click()
    endpoint = page.get_by_label("Endpoint", exact=True)
    assert endpoint.get_attribute("aria-invalid") == "true"
    assert "https" in page.locator("#err-endpoint").inner_text()
    assert "not-a-real-secret" not in page.content()
    assert stored(stack) == []
    shoot(page, "1280-storage-errors")
    assert axe(page) == []


def test_a_finished_runs_detail_page_the_rotation_preview_and_a_project_in_two_plans(stack, browser_page):
    page = browser_page
    primary, replica = (
        api(
            stack,
            "POST",
            f"/api/v1/organisations/{TENANT}/storages",
            json={"name": name, "kind": "local", "location": {"path": path}},
        )
        for name, path in (("Primary folder", "primary"), ("Replica folder", "replica"))
    )
    plan = api(
        stack,
        "POST",
        f"/api/v1/organisations/{TENANT}/plans",
        json={
            "name": "Platform",
            "schedule": {"days": ["mon"], "hour": 3},
            "spec": {"projects": {"mode": "selected", "keys": ["PLAT"]}, "data": {"attachments": False}},
            "rotation": {"scheme": "unlimited"},
            "storage_id": primary["id"],
            "replica_ids": [replica["id"]],
        },
    )
    snapshots = []
    for _ in range(2):
        started = api(stack, "POST", f"/api/v1/organisations/{TENANT}/runs", json={"plan_id": plan["id"]})
        run = stack.backend.wait_for_run(TENANT, started["id"])
        assert run["state"] == "succeeded", run
        snapshots.append(run["projects"][0]["snapshot_id"])
    sign_in(page, stack)

    # the run detail page, from the runs list
    page.goto(stack.url + "/runs")
    page.locator(f"tr[data-run='{run['id']}']").get_by_role("link", name="Platform").click()
    page.wait_for_url(re.compile(rf"/runs/{run['id']}$"))
    assert "succeeded" in page.locator("#run-summary").inner_text().lower()
    assert "Backup now" in page.locator("#run-summary").inner_text()
    row = page.locator("#projects tr[data-project='PLAT']")
    assert row.get_attribute("data-status") == "ok" and "12 issues" in row.inner_text()
    assert snapshots[1][:8] in row.inner_text()
    levels = page.locator("#log li").evaluate_all("els => els.map(e => e.dataset.level)")
    assert levels and set(levels) <= {"info", "warning", "error", "debug"}
    assert "rotation unlimited" in page.locator("#log").inner_text()
    assert page.locator("#live").get_attribute("data-live") == "off"  # finished: no polling
    both_widths(page, "run-detail")
    assert page.request.get(stack.url + "/runs/run_aaaaaaaaaaaaaaaaaaaa").status == 404
    replica_row = page.locator(f"#replicas tr[data-replica='{replica['id']}']")
    assert "ok" in replica_row.inner_text().lower() and "0 snapshots" in replica_row.inner_text()

    # the storages hold what the runs wrote: two snapshots on the primary, copied to the replica
    page.goto(stack.url + "/storages")
    first = page.locator(f"tr[data-storage='{primary['id']}']")
    second = page.locator(f"tr[data-storage='{replica['id']}']")
    assert "2 snapshots" in first.inner_text() and "Platform (primary)" in first.inner_text()
    assert "Not a replica" in first.inner_text()
    assert "2 snapshots" in second.inner_text() and "Platform (replica)" in second.inner_text()
    assert re.search(r"Platform: ok\s+lag 0 snapshots", second.inner_text(), re.I), second.inner_text()
    both_widths(page, "storages-in-use")

    # a project in two plans, and what a rotation would keep
    page.goto(stack.url + "/plans")
    row = page.locator(f"tr[data-plan='{plan['id']}']")
    assert "PLAT also in “Default plan”" in row.inner_text()  # the default plan backs up every project
    row.get_by_role("link", name="Edit Platform").click()
    assert "PLAT also in “Default plan”" in page.locator("#also-in").inner_text()
    page.get_by_role("radio", name=re.compile("^Custom")).check()
    page.get_by_label("Last", exact=True).fill("1")
    with page.expect_navigation():
        page.get_by_role("button", name="Preview", exact=True).click()
    preview = page.locator("#rotation-preview")
    assert "keeps 1, forgets 1 of 2 snapshots" in preview.inner_text()
    kept = preview.locator("table[data-project='PLAT'] tr[data-keep='yes']")
    gone = preview.locator("table[data-project='PLAT'] tr[data-keep='no']")
    assert kept.count() == 1 and gone.count() == 1
    assert snapshots[1][:8] in kept.inner_text() and "last" in kept.inner_text()
    assert snapshots[0][:8] in gone.inner_text()
    assert page.get_by_label("Last", exact=True).input_value() == "1"  # the form keeps what was typed
    both_widths(page, "plan-rotation-preview")
    assert api(stack, "GET", f"/api/v1/plans/{plan['id']}")["rotation"] == {
        "scheme": "unlimited"
    }  # nothing saved
