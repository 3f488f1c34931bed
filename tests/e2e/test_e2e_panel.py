"""The admin's journey in a real browser, through Forge (the Custom UI over @forge/bridge) and through
Connect: Apps page, panel figures, Settings, Edit, Backup now with progress, More features. Screenshots
at 1280 and 375 px (and Forge's dark theme) go to test-output/screenshots."""

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
CUSTOM_UI = ROOT / "manifest" / "build" / "panel" / "index.html"
# Tall enough for the whole panel: a viewport screenshot, not a full-page one (capturing the full page
# resizes the view, and headless chromium then sometimes captures the out-of-process app frame blank).
WIDE, NARROW = {"width": 1280, "height": 900}, {"width": 375, "height": 900}

pytestmark = pytest.mark.browser


@pytest.fixture
def stack(tmp_path: Path):
    """Sandbox + backend + connector as `keepstone run` starts them, the app installed both ways."""
    if importlib.util.find_spec("backend.app") is None:
        pytest.skip("the backend service (backend.app) is not in this checkout")
    if not CUSTOM_UI.exists():
        pytest.fail("the Forge Custom UI is not built: run `make install`")
    from keepstone.demo import start_stack, stop_stack

    running = start_stack(tmp_path / "var", forge=True)
    servers = running["servers"]
    info = {
        "forge": running["forge_apps_page"],
        "connect": running["connect_apps_page"],
        "cloud_id": running["cloud_id"],
        "servers": servers,
        "keys": servers["connector"].server.app.extensions["connector"].keys,
    }
    yield info
    stop_stack(running)


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


def settle(page) -> None:
    """Let the app's frame lay out and paint (its height follows its content: ResizeObserver -> host)."""
    frame = page.frame_locator("#app-frame").locator("body")
    for _ in range(2):
        frame.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.wait_for_timeout(150)


def shoot(page, path: str, name: str, narrow: bool = False) -> None:
    """A full-page screenshot at 1280 px, and with `narrow` one at 375 px too."""
    settle(page)
    page.screenshot(path=str(SCREENSHOTS / f"{path}-1280-{name}.png"))
    if narrow:
        page.set_viewport_size(NARROW)
        settle(page)
        page.screenshot(path=str(SCREENSHOTS / f"{path}-375-{name}.png"))
        page.set_viewport_size(WIDE)
        settle(page)


@pytest.mark.parametrize("path", ["forge", "connect"])
def test_admin_journey_through_the_panel(stack, browser_page, path):
    page = browser_page
    page.set_viewport_size(WIDE)
    hosts = tuple(s.url for s in stack["servers"].values())
    elsewhere = []
    page.context.on("request", lambda r: None if r.url.startswith(hosts) else elsewhere.append(r.url))
    page.goto(stack[path])
    frame = page.frame_locator("#app-frame")
    status = backend_status(stack)
    figure = frame.locator("#protected_projects")
    figure.wait_for()
    frame.locator("#next_backup_at").filter(has_text=re.compile(r"\d")).wait_for()
    assert figure.inner_text() == str(status["protected_projects"])
    assert frame.locator("#service_region").inner_text() == status["service_region"]
    assert frame.locator("#storage_region").inner_text() == status["storage_region"]
    assert frame.locator("#next_backup_at").inner_text() == shown(status["next_backup_at"])
    shoot(page, path, "01-panel", narrow=True)

    if path == "forge":
        # The Custom UI runs in a sandboxed frame of its own (opaque origin) and takes Jira's theme.
        assert page.locator("#app-frame").get_attribute("sandbox").split() == [
            "allow-scripts",
            "allow-forms",
            "allow-downloads",
            "allow-modals",
        ]
        html = frame.locator("html")
        assert html.get_attribute("data-color-mode") == "light"
        page.emulate_media(color_scheme="dark")
        frame.locator("html[data-color-mode=dark]").wait_for(state="attached")
        background = frame.locator("body").evaluate("b => getComputedStyle(b).backgroundColor")
        assert background == "rgb(29, 33, 37)", background  # --ds-surface of atlassian-dark
        shoot(page, path, "01-panel-dark", narrow=True)
        page.emulate_media(color_scheme="light")
        frame.locator("html[data-color-mode=light]").wait_for(state="attached")
        # The site URL comes from Forge's context (view.getContext), not from the page.
        assert frame.locator("#site_url").inner_text() == stack["servers"]["sandbox"].url

    # Settings: a wrong token is refused, a right one is kept.
    frame.locator("button.tab[data-tab=settings]").click()
    frame.locator("#email").fill("admin@example.com")
    frame.locator("#api_token").fill("not-the-token")
    frame.locator("#save_token").click()
    frame.locator("#account_message.bad").wait_for()
    shoot(page, path, "02-settings-refused", narrow=True)
    frame.locator("#api_token").fill("sandbox-admin-token")
    frame.locator("#save_token").click()
    frame.locator("#account_message.good").wait_for()
    frame.locator("#account_current").filter(has_text="admin@example.com").wait_for()
    shoot(page, path, "03-settings-kept")
    frame.locator("button.tab[data-tab=overview]").click()

    # Edit: Wednesdays at 05:00 moves the next backup.
    before = frame.locator("#next_backup_at").inner_text()
    frame.locator("#edit").click()
    for box in frame.locator("input[name=days]").all():
        box.set_checked(box.get_attribute("value") == "wed")
    frame.locator("#hour").select_option("5")
    shoot(page, path, "04-editing", narrow=True)
    frame.locator("#save_schedule").click()
    frame.locator("#message.good").wait_for()
    frame.locator("#schedule_form").wait_for(state="hidden")
    after_status = backend_status(stack)
    assert datetime.fromisoformat(after_status["next_backup_at"]).astimezone(UTC).weekday() == 2
    assert frame.locator("#next_backup_at").inner_text() == shown(after_status["next_backup_at"]) != before

    # Backup now: a run starts and its progress shows until it ends.
    frame.locator("#backup_now").click()
    frame.locator("#run").wait_for(state="visible")
    frame.locator("#run_progress").filter(has_text="%").wait_for()
    shoot(page, path, "05-backup-running")
    frame.locator("#run_state").filter(has_text=re.compile("succeeded|with warnings|partly done")).wait_for(
        timeout=90_000
    )
    assert frame.locator("#run_progress").inner_text() == "· 100%"
    assert frame.locator("#last_backup_at").inner_text() != "Never"
    shoot(page, path, "06-backup-done", narrow=True)

    # More features: a new tab lands logged in on the backend's dashboard, with a clean URL.
    backend_url = stack["servers"]["backend"].url
    with page.context.expect_page() as new_tab:
        frame.locator("#more").click()
    dashboard = new_tab.value
    dashboard.set_viewport_size(WIDE)
    dashboard.wait_for_url(backend_url + "/")
    dashboard.wait_for_load_state()
    assert "token" not in dashboard.url and "handoff" not in dashboard.url
    assert dashboard.locator("input[type=password]").count() == 0
    # Connect's token names the user; a Forge Invocation Token carries only the accountId.
    assert ("Site Admin" if path == "connect" else "Jira admin") in dashboard.content()
    dashboard.screenshot(path=str(SCREENSHOTS / f"{path}-1280-07-backend-dashboard.png"), full_page=True)
    assert elsewhere == [], elsewhere  # nothing was loaded from off this machine


def test_panel_refuses_to_be_framed_by_another_origin(stack, browser_page):
    """The Connect panel's frame-ancestors names only the tenant's Jira site; another page cannot frame it."""
    page = browser_page
    page.goto(stack["connect"])
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


def test_the_panel_tells_the_truth_first_step_failure_running_and_warnings(stack, browser_page):
    """A new site: the panel says to set the token first; Backup now then fails and says why; with the
    token a run shows as running at once and ends with its warnings counted in the warning colour."""
    page = browser_page
    page.set_viewport_size(WIDE)
    page.goto(stack["forge"])
    frame = page.frame_locator("#app-frame")
    frame.locator("#first_step").wait_for(state="visible")
    assert frame.locator("#state").inner_text() == "Never backed up"
    shoot(page, "forge", "10-first-step", narrow=True)

    frame.locator("#backup_now").click()
    failed = frame.locator("#message.bad")
    failed.filter(has_text="no Jira credentials").wait_for(timeout=30_000)
    assert failed.inner_text() == "Backup failed: no Jira credentials: set the API token in Settings"
    assert frame.locator("#state.bad").inner_text() == "Failed"
    assert frame.locator("#last_backup_at").inner_text() == "Never"  # a failed run is no backup
    assert frame.locator("#run").is_hidden() and frame.locator("#last_attempt").is_hidden()  # said once
    shoot(page, "forge", "11-failed-with-reason", narrow=True)
    page.reload()  # later, the reason is still there: as the last attempt
    attempt = frame.locator("#last_attempt")
    attempt.wait_for(state="visible")
    assert "failed: no Jira credentials" in attempt.inner_text() and attempt.get_attribute("class") == "bad"
    assert frame.locator("#message").inner_text() == ""

    frame.locator("#go_settings").click()
    frame.locator("#settings").wait_for(state="visible")
    frame.locator("#email").fill("admin@example.com")
    frame.locator("#api_token").fill("sandbox-admin-token")
    frame.locator("#save_token").click()
    frame.locator("#account_message.good").wait_for()
    frame.locator("button.tab[data-tab=overview]").click()
    frame.locator("#first_step").wait_for(state="hidden")

    # Every state the card passes through, recorded as it changes.
    frame.locator("#state").evaluate(
        """el => { window.__states = [el.textContent];
                   new MutationObserver(() => window.__states.push(el.textContent))
                     .observe(el, {childList: true, characterData: true, subtree: true}); }"""
    )
    frame.locator("#backup_now").click()
    frame.locator("#run_state").filter(has_text=re.compile("succeeded|with warnings|partly done")).wait_for(
        timeout=90_000
    )
    frame.locator("#last_backup_at").filter(has_text=re.compile(r"\d")).wait_for()
    states = frame.locator("#state").evaluate("() => window.__states")
    assert "Running" in states and states[-1] != "Running", states
    status = backend_status(stack)
    assert status["warnings"] > 0, "the demo site has corrupted attachments: the run must warn"
    warnings = frame.locator("#warnings")
    warnings.wait_for(state="visible")
    assert warnings.get_attribute("class") == "warn"
    assert (
        frame.locator("#warnings_text").inner_text() == f"{status['warnings']} warnings in the last backup."
    )
    assert frame.locator("#state.warn").inner_text() == "Finished with warnings"
    assert frame.locator("#last_attempt").is_hidden()  # the latest run went well enough
    assert frame.locator("#last_backup_plan").inner_text() == status["last_backup"]["plan"]
    assert frame.locator("#protected_projects").inner_text() == str(status["protected_projects"]) != "0"
    shoot(page, "forge", "12-warnings", narrow=True)
    # Review in Keepstone: a new tab signed in on that run's page.
    backend_url = stack["servers"]["backend"].url
    with page.context.expect_page() as new_tab:
        frame.locator("#review").click()
    run_page = new_tab.value
    run_page.wait_for_url(f"{backend_url}/runs/{status['last_backup']['id']}")
    assert status["last_backup"]["id"] in run_page.content()
