"""Watching a run in a real browser (Debian chromium + Playwright) against the real backend and a sandbox
site slowed down on purpose (latency and a rate limit, so a run lasts several seconds): the run page
fills in live (issues read of total, Jira's requests), Cancel stops it, Retry failed projects runs the
cancelled ones again; the log filters; the dashboard's charts draw from their JSON endpoints. Screenshots
at 375 and 1280 px, axe-core clean."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend.conftest import Issuer, make_backend, stop_backend
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, start_sandbox
from tests.e2e.test_e2e_plans import NARROW, WIDE, axe, shoot
from tests.e2e.ui_stack import EMAIL, TENANT, UiStack, add_member_only, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def slow_stack(tmp_path: Path) -> Iterator[UiStack]:
    """One tenant on a sandbox that answers in 60 ms and allows 8 requests a second (a run: about 20 s)."""
    issuer = Issuer()
    site = start_sandbox(
        projects=3, issues_per_project=80, seed=5, corrupt_share=0.0, latency_ms=60, rate_limit=8, burst=3
    )
    backend = make_backend(tmp_path, issuer)
    try:
        backend.install(TENANT, site.url, time_zone="Europe/Berlin")
        answer = backend.call(
            "PUT",
            f"/api/v1/organisations/{TENANT}/account",
            TENANT,
            json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
        )
        assert answer.status_code == 200, answer.text
        add_member_only(backend, EMAIL, [TENANT], "Ada Lovelace")
        yield UiStack(backend, site)
    finally:
        stop_backend(backend)
        site.stop()
        issuer.server.stop()


def run_api(stack: UiStack, run_id: str) -> dict:
    return stack.backend.call("GET", f"/api/v1/runs/{run_id}", TENANT).json()


def wait_finished(stack: UiStack, run_id: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = run_api(stack, run_id)
        if run["state"] not in ("queued", "running"):
            return run
        time.sleep(0.25)
    raise AssertionError(f"run {run_id} did not finish")


def check(page, name: str) -> None:
    for size, label in ((WIDE, "1280"), (NARROW, "375")):
        page.set_viewport_size(size)
        page.wait_for_timeout(200)
        shoot(page, f"{name}-{label}")
        assert axe(page) == [], f"{name} at {label} px"
    page.set_viewport_size(WIDE)


def test_watch_a_run_live_cancel_it_retry_its_projects_and_see_the_charts(slow_stack, browser_page):
    page, stack = browser_page, slow_stack
    page.set_viewport_size(WIDE)
    sign_in(page, stack)
    page.goto(stack.url + "/plans")
    page.get_by_role("button", name=re.compile("Backup now")).first.click()
    page.wait_for_url(re.compile(r"/runs"))
    page.locator("#runs tbody tr a").first.click()
    page.wait_for_url(re.compile(r"/runs/run_"))
    run_id = page.url.rsplit("/", 1)[-1]

    # live: without reloading, a project shows issues read of its total and the run its Jira requests
    page.locator("#projects .progress-cell .total").first.wait_for(timeout=30_000)
    assert page.locator("#live").get_attribute("data-live") == "on"
    # ... and the bytes its snapshot holds so far, growing while it reads
    page.locator("#projects .progress-cell .bytes").first.wait_for(timeout=30_000)
    assert re.fullmatch(
        r"[0-9.]+ (B|KiB|MiB)", page.locator("#projects .progress-cell .bytes").first.inner_text()
    )
    page.wait_for_function(
        "() => /^[1-9]/.test(document.querySelector('#traffic').textContent.trim())", timeout=20_000
    )
    shoot(page, "run-live-1280")  # quickly while live, then Cancel at once: the run lasts seconds only
    assert axe(page) == []
    page.set_viewport_size(NARROW)
    shoot(page, "run-live-375")
    page.set_viewport_size(WIDE)

    page.get_by_role("button", name="Cancel run").click()
    page.wait_for_url(re.compile(rf"/runs/{run_id}$"))
    assert "Cancel requested" in page.locator("#flash").inner_text()
    run = wait_finished(stack, run_id)
    assert run["state"] == "cancelled", run
    cancelled = sorted(p["project"] for p in run["projects"] if p["status"] in ("cancelled", "failed"))
    assert cancelled, run["projects"]
    page.locator("#live[data-live=off]").wait_for(timeout=10_000)  # the page saw the end by itself
    assert "The run is cancelled" in page.locator("#run-status").inner_text()
    # requests and 429s over time: the run page's chart draws one point a sample interval
    page.reload()
    page.locator("#chart-traffic[data-loaded=yes] canvas").wait_for(timeout=10_000)
    samples = run["progress"]["samples"]
    assert len(samples) >= 2 and samples[-1][1] > samples[0][1]
    assert page.locator("#chart-traffic").get_attribute("data-points") == str(len(samples) - 1)
    throttled = run["progress"].get("throttled", 0)  # the 429s the rate-limited sandbox answered
    shown = page.locator("#throttling").inner_text()
    assert (f"{throttled} × 429" in shown) if throttled else shown.startswith("None"), shown

    # the log: errors and warnings only, then a text search, under the filters in the address
    page.get_by_label("Level").select_option("warning")
    page.get_by_role("button", name="Filter").click()
    levels = set(page.locator("#log li").evaluate_all("els => els.map(e => e.dataset.level)"))
    assert levels <= {"warning", "error"}
    page.get_by_label("Level").select_option("")
    page.get_by_label("Find").fill("cancel")
    page.get_by_role("button", name="Filter").click()
    texts = page.locator("#log li .text").all_inner_texts()
    assert texts and all("cancel" in t.lower() for t in texts)
    assert "level=" not in (page.locator("#log-download").get_attribute("href") or "")
    check(page, "run-cancelled")

    page.get_by_role("button", name=re.compile("Retry failed projects")).click()
    page.wait_for_url(re.compile(r"/runs/run_"))
    retry_id = page.url.rsplit("/", 1)[-1]
    assert retry_id != run_id
    retried = wait_finished(stack, retry_id)
    assert retried["state"] in ("succeeded", "warning"), retried
    assert sorted(p["project"] for p in retried["projects"]) == cancelled
    page.locator("#live[data-live=off]").wait_for(timeout=10_000)
    assert page.locator("#projects tbody tr").count() == len(cancelled)

    # the runs list, filtered to cancelled runs: only the first one
    page.goto(stack.url + "/runs?state=cancelled")
    assert page.locator("#runs tbody tr").count() == 1
    check(page, "runs-filtered")

    # the dashboard: four charts, each drawn from its endpoint
    page.goto(stack.url + "/")
    page.wait_for_function(
        "() => [...document.querySelectorAll('figure[data-chart]')].every(f => f.dataset.loaded === 'yes')",
        timeout=15_000,
    )
    assert page.locator("figure[data-chart] canvas").count() == 4
    # every project is still in the plan's latest full run (the retry lists only what it retried)
    assert page.locator("#archived-projects").count() == 0
    backups = stack.backend.call("GET", f"/api/v1/organisations/{TENANT}/charts/backups", TENANT).json()
    assert page.locator("#chart-backups").get_attribute("data-points") == str(len(backups["days"]))
    done = sum(backups["succeeded"]) + sum(backups["warning"])
    summary = page.locator("#chart-backups .chart-summary").inner_text()
    assert summary.startswith(f"{sum(backups['succeeded'])} succeeded") and done >= 1
    assert f"{sum(backups['failed'])} failed" in summary  # the cancelled run
    durations = stack.backend.call("GET", f"/api/v1/organisations/{TENANT}/charts/durations", TENANT).json()
    assert (
        page.locator("#chart-durations").get_attribute("data-points") == str(len(durations["items"])) == "2"
    )
    check(page, "dashboard-charts")

    # the dark theme: the charts' axes take the theme's text colour (read when they are drawn)
    page.emulate_media(color_scheme="dark")
    page.reload()
    page.wait_for_function(
        "() => [...document.querySelectorAll('figure[data-chart]')].every(f => f.dataset.loaded === 'yes')",
        timeout=15_000,
    )
    shoot(page, "dashboard-charts-dark-1280")
    assert axe(page) == []
