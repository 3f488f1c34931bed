"""The Notifications page in a real browser (Debian chromium + Playwright) against the real backend and a
real webhook receiver: add a webhook channel, see its secret once, Send test, see "delivered"; a bad URL
is refused beside its field and stores nothing; a viewer sees the list without the controls. Screenshots
at 375 and 1280 px, axe-core on each page (no serious or critical violations)."""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select

from backend.db.models import Membership, User
from backend.notify import signing
from tests.e2e.conftest import browser_page as browser_page  # the fixture
from tests.e2e.test_e2e_plans import NARROW, WIDE, axe, shoot
from tests.e2e.ui_stack import PASSWORD, TENANT, add_member_only, sign_in
from tests.e2e.ui_stack import ui_stack_fixture as ui_stack_fixture  # the fixture
from tests.notify.conftest import SMTP_PASSWORD, SMTP_USER

pytestmark = pytest.mark.browser


def channels(stack) -> list[dict]:
    r = stack.backend.call("GET", f"/api/v1/organisations/{TENANT}/notifications", TENANT)
    r.raise_for_status()
    return r.json()["items"]


def test_add_a_webhook_send_a_test_and_see_it_delivered(ui_stack, browser_page, receiver):
    page, stack = browser_page, ui_stack
    stack.backend.config.webhook_http_hosts = "127.0.0.1"  # the receiver is on this machine
    stack.backend.config.public_url = stack.url
    problems: dict[str, list] = {}
    page.set_viewport_size(WIDE)
    sign_in(page, stack)
    page.get_by_role("navigation", name="Keepstone").get_by_role("link", name="Notifications").click()
    assert "No channels yet" in page.locator("main").inner_text()
    shoot(page, "1280-notifications-empty")
    problems["empty"] = axe(page)

    # a bad URL: refused beside its field, nothing stored
    page.get_by_role("link", name="Add channel").click()
    page.get_by_label("Name", exact=True).fill("Ops webhook")
    page.get_by_label("Webhook URL").fill("http://hooks.example.com/keepstone")
    with page.expect_navigation():
        page.get_by_role("button", name="Add channel").click()
    box = page.locator("#f-url")
    assert box.get_attribute("aria-invalid") == "true"
    message = page.locator("#" + box.get_attribute("aria-describedby").split()[0])
    assert "use https" in message.inner_text()
    assert page.get_by_label("Name", exact=True).input_value() == "Ops webhook"  # what was typed survives
    assert channels(stack) == []
    shoot(page, "1280-notifications-form-errors")
    problems["errors"] = axe(page)

    # the good one, for failures and successes of the whole organisation
    page.get_by_label("Webhook URL").fill(receiver.url)
    page.get_by_role("checkbox", name=re.compile("On success")).check()
    with page.expect_navigation():
        page.get_by_role("button", name="Add channel").click()
    assert "Channel added" in page.locator("h1").inner_text()
    secret = page.locator("#secret").inner_text().strip()
    assert secret.startswith("whsec_")
    shoot(page, "1280-notifications-secret")
    problems["secret"] = axe(page)
    stored = channels(stack)
    assert (
        len(stored) == 1
        and stored[0]["events"] == ["failure", "success"]
        and stored[0]["url"] == receiver.url
    )

    page.get_by_role("link", name="Back to notifications").click()
    row = page.locator(f"tr[data-channel='{stored[0]['id']}']")
    assert "Nothing sent yet" in row.inner_text()
    with page.expect_navigation():
        row.get_by_role("button", name="Send test").click()
    assert "delivered" in page.locator("#flash").inner_text()
    row = page.locator(f"tr[data-channel='{stored[0]['id']}']")
    assert row.get_attribute("data-last") == "delivered"
    assert "delivered" in row.locator("td[data-label='Last delivery']").text_content()
    hits = receiver.wait_for(1)
    assert len(hits) == 1 and signing.verify(secret, hits[0].headers, hits[0].body)
    assert hits[0].json()["event"] == "test"
    shoot(page, "1280-notifications-channel")
    problems["list"] = axe(page)

    # both pages at 375 px
    page.set_viewport_size(NARROW)
    for path, name in (
        ("/notifications", "notifications-channel"),
        ("/notifications/new?kind=email", "notifications-new-email"),
    ):
        page.goto(stack.url + path)
        shoot(page, f"375-{name}")
        problems[f"375 {path}"] = axe(page)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)
    page.set_viewport_size(WIDE)
    page.goto(stack.url + f"/notifications/{stored[0]['id']}/edit")
    deliveries = page.locator("#deliveries tbody tr")
    assert deliveries.count() == 1 and "Keepstone test message" in deliveries.first.inner_text()
    assert deliveries.first.get_attribute("data-key") == hits[0].headers[signing.DELIVERY]
    shoot(page, "1280-notifications-edit")
    problems["edit"] = axe(page)
    page.get_by_role("checkbox", name=re.compile("On success")).uncheck()
    page.get_by_role("radio", name="Slack incoming webhook").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Save channel").click()
    assert "saved" in page.locator("#flash").inner_text()
    edited = channels(stack)[0]
    assert edited["events"] == ["failure"] and edited["format"] == "slack" and edited["has_secret"]
    assert {k: v for k, v in problems.items() if v} == {}


def test_a_viewer_sees_channels_but_cannot_change_or_test_them(backend, org, receiver):
    """Without a browser: the page's HTML and its forms, as a member with the viewer role."""
    made = backend.call(
        "POST",
        f"{org.base}/channels",
        org.cloud_id,
        json={"name": "Hook", "kind": "webhook", "url": receiver.url},
    )
    assert made.status_code == 201, made.text
    email = f"vera-{org.cloud_id[:8]}@example.com"
    add_member_only(backend, email, [org.cloud_id], "Vera Viewer")
    with backend.app.extensions["keepstone"].db.session() as s:
        user = s.scalar(select(User).where(User.email == email))
        s.scalar(select(Membership).where(Membership.user_id == user.id)).role = "viewer"
        s.commit()
    browser = requests.Session()
    token = (
        browser.get(backend.url + "/login", timeout=10)
        .text.split('name="csrf_token" value="')[1]
        .split('"')[0]
    )
    r = browser.post(
        backend.url + "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}, timeout=10
    )
    assert r.status_code == 200
    listing = browser.get(backend.url + "/notifications", timeout=10)
    assert listing.status_code == 200 and "Hook" in listing.text
    assert "Send test" not in listing.text and "Add channel" not in listing.text
    token = listing.text.split('name="csrf_token" value="')[1].split('"')[0]
    channel_id = made.json()["id"]
    for path in (
        f"/notifications/{channel_id}/test",
        f"/notifications/{channel_id}/delete",
        "/notifications/new",
    ):
        r = browser.post(
            backend.url + path, data={"csrf_token": token, "name": "x", "kind": "webhook"}, timeout=10
        )
        assert r.status_code == 403, (path, r.status_code)
    assert browser.get(backend.url + f"/notifications/{channel_id}/edit", timeout=10).status_code == 403
    # the API refuses the same member's writes (a session needs the CSRF token, which it has)
    api = f"/api/v1/organisations/{org.cloud_id}/notifications/channels/{channel_id}/test"
    r = browser.post(backend.url + api, headers={"X-CSRFToken": token}, timeout=10)
    assert r.status_code == 403, r.text
    assert browser.get(backend.url + f"/api/v1/organisations/{org.cloud_id}/notifications", timeout=10).ok
    assert receiver.hits == []


@pytest.mark.slow  # the same path without a browser: tests/notify/test_notify_runs.py
def test_a_failed_run_sends_one_mail_to_the_channel_added_on_the_page(ui_stack, browser_page, smtp, tls_cert):
    page, stack = browser_page, ui_stack
    config = stack.backend.config
    config.smtp_host, config.smtp_port, config.smtp_ca_file = smtp.host, smtp.port, tls_cert[0]
    config.smtp_user, config.smtp_password, config.public_url = SMTP_USER, SMTP_PASSWORD, stack.url
    before = len(smtp.inbox.messages)
    page.set_viewport_size(WIDE)
    sign_in(page, stack)
    page.goto(stack.url + "/notifications/new?kind=email")
    page.get_by_label("Name", exact=True).fill("Backup team")
    page.get_by_label("Recipients").fill("team@example.com, lead@example.com")
    with page.expect_navigation():
        page.get_by_role("button", name="Add channel").click()
    assert "added" in page.locator("#flash").inner_text()
    # Jira refuses the stored token when the run lists the projects: the run fails, saying why
    requests.post(
        stack.site.url + "/_sandbox/faults",
        json={"path": "/rest/api/3/project", "status": 401, "count": 1000},
        timeout=10,
    ).raise_for_status()
    page.goto(stack.url + "/plans")
    page.locator("#plans tbody tr").first.get_by_role("button", name="Backup now").click()
    page.wait_for_url(re.compile(r"/runs\?org="))
    page.wait_for_function(
        "() => { const row = document.querySelector('#runs tbody tr');"
        " return row !== null && !['queued', 'running'].includes(row.dataset.state); }",
        timeout=60_000,
    )
    run_row = page.locator("#runs tbody tr").first
    assert run_row.get_attribute("data-state") == "failed"
    run_id = run_row.get_attribute("data-run")
    rcpts, mail = smtp.wait_for(before + 1, timeout=60)[before]
    assert sorted(rcpts) == ["lead@example.com", "team@example.com"]
    assert mail["Subject"].startswith("Backup failed: ") and "Acme Engineering" in mail["Subject"]
    text = mail.get_payload(decode=True).decode()
    assert f"{stack.url}/runs/{run_id}" in text and "Reason:" in text and "401" in text
    page.goto(stack.url + "/notifications")
    row = page.locator("#channels tbody tr").first
    assert row.get_attribute("data-last") == "delivered" and "failure" in row.inner_text()
    shoot(page, "1280-notifications-after-failed-run")
    assert axe(page) == []
    assert len(smtp.inbox.messages) == before + 1  # one message, one channel, one run
