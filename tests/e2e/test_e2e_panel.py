"""The admin's journey in a real browser: Apps page, panel figures, Edit, Settings, Backup now, More features."""

from __future__ import annotations

import importlib.util
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from flask import Flask

from connector.handoff import service_token
from keepstone.servers import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture
def stack(tmp_path: Path):
    """Sandbox + backend + connector as `keepstone run` starts them, with the app installed."""
    if importlib.util.find_spec("backend.app") is None:
        pytest.skip("the backend service (backend.app) is not in this checkout")
    from keepstone.demo import start_stack

    running = start_stack(tmp_path / "var")
    servers = running["servers"]
    info = {"apps_page": running["apps_page"], "cloud_id": running["cloud_id"], "servers": servers}
    info["keys"] = servers["connector"].server.app.extensions["connector"].keys
    yield info
    for server in reversed(list(servers.values())):
        server.stop()


def backend_status(stack) -> dict:
    """Read the tenant's status straight from the backend with a service token."""
    token = service_token(stack["keys"], stack["cloud_id"])
    url = f"{stack['servers']['backend'].url}/api/v1/organisations/{stack['cloud_id']}/status"
    resp = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    resp.raise_for_status()
    return resp.json()


def shown(value: str | None) -> str:
    """Format a timestamp the way the panel shows it."""
    if not value:
        return "Never"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def test_admin_journey_through_the_panel(stack, browser_page):
    page = browser_page
    page.goto(stack["apps_page"])
    frame = page.frame_locator("#app-frame")
    status = backend_status(stack)
    figure = frame.locator("#protected_projects")
    figure.wait_for()
    frame.locator("#next_backup_at").filter(has_text=re.compile(r"\d")).wait_for()
    assert figure.inner_text() == str(status["protected_projects"])
    assert frame.locator("#service_region").inner_text() == status["service_region"]
    assert frame.locator("#storage_region").inner_text() == status["storage_region"]
    assert frame.locator("#next_backup_at").inner_text() == shown(status["next_backup_at"])
    page.screenshot(path=str(SCREENSHOTS / "01-panel.png"), full_page=True)

    # Settings: a wrong token is refused, a right one is kept.
    frame.locator("button.tab[data-tab=settings]").click()
    frame.locator("#email").fill("admin@example.com")
    frame.locator("#api_token").fill("not-the-token")
    frame.locator("#save_token").click()
    frame.locator("#account_message.bad").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "02-settings-refused.png"), full_page=True)
    frame.locator("#api_token").fill("sandbox-admin-token")
    frame.locator("#save_token").click()
    frame.locator("#account_message.good").wait_for()
    frame.locator("#account_current").filter(has_text="admin@example.com").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "03-settings-kept.png"), full_page=True)
    frame.locator("button.tab[data-tab=overview]").click()

    # Edit: Wednesdays at 05:00 moves the next backup.
    before = frame.locator("#next_backup_at").inner_text()
    frame.locator("#edit").click()
    for box in frame.locator("input[name=days]").all():
        box.set_checked(box.get_attribute("value") == "wed")
    frame.locator("#hour").select_option("5")
    frame.locator("#save_schedule").click()
    frame.locator("#message.good").wait_for()
    frame.locator("#schedule_form").wait_for(state="hidden")
    after_status = backend_status(stack)
    assert datetime.fromisoformat(after_status["next_backup_at"]).astimezone(UTC).weekday() == 2
    assert frame.locator("#next_backup_at").inner_text() == shown(after_status["next_backup_at"]) != before
    page.screenshot(path=str(SCREENSHOTS / "04-edited.png"), full_page=True)

    # Backup now: a run starts and its progress shows until it ends.
    frame.locator("#backup_now").click()
    frame.locator("#run").wait_for(state="visible")
    frame.locator("#run_progress").filter(has_text="%").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "05-backup-running.png"), full_page=True)
    frame.locator("#run_state").filter(has_text=re.compile("succeeded|warning|partial")).wait_for(
        timeout=90_000
    )
    assert frame.locator("#run_progress").inner_text() == "100%"
    assert frame.locator("#last_backup_at").inner_text() != "Never"
    page.screenshot(path=str(SCREENSHOTS / "06-backup-done.png"), full_page=True)

    # More features: a new tab lands logged in on the backend's dashboard, with a clean URL.
    backend_url = stack["servers"]["backend"].url
    with page.context.expect_page() as new_tab:
        frame.locator("#more").click()
    dashboard = new_tab.value
    dashboard.wait_for_url(backend_url + "/")
    dashboard.wait_for_load_state()
    assert "token" not in dashboard.url
    assert dashboard.locator("input[type=password]").count() == 0
    assert "Site Admin" in dashboard.content()
    dashboard.screenshot(path=str(SCREENSHOTS / "07-backend-dashboard.png"), full_page=True)


def test_panel_refuses_to_be_framed_by_another_origin(stack, browser_page):
    """The panel's frame-ancestors names only the tenant's Jira site; another page cannot frame it."""
    page = browser_page
    page.goto(stack["apps_page"])
    src = page.locator("#app-frame").get_attribute("src")
    # A page of another origin (not the tenant's site) frames the same signed panel URL.
    other = Flask("other-origin")
    other.add_url_rule("/", "index", lambda: f"<iframe id='f' src='{src}'></iframe>")
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "frame-ancestors" in m.text else None)
    with serve_in_thread(other) as evil:
        page.goto(evil.url + "/")
        page.wait_for_timeout(1500)
    frame = page.frame_locator("#f")
    assert frame.locator("#protected_projects").count() == 0
    assert any("frame-ancestors" in m for m in blocked), blocked
