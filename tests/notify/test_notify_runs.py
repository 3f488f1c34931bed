"""A finished run notifies the channels whose rules ask for it: exactly one message each, with the reason
and a link, over a real SMTP server (STARTTLS + AUTH) and a real webhook receiver, signed with HMAC."""

from __future__ import annotations

import time

import requests
from sqlalchemy import func, select

from backend.db.models import NotificationMessage
from backend.notify import signing
from tests.notify.conftest import TENANT

BASE = f"/api/v1/organisations/{TENANT}/notifications"


def add_channel(backend, body: dict) -> dict:
    r = backend.call("POST", f"{BASE}/channels", TENANT, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def failing_plan(backend) -> str:
    """A plan whose next run fails: Jira refuses the stored token (401) when the run lists the projects."""
    plans = backend.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"]
    r = requests.post(
        backend.site.url + "/_sandbox/faults",
        json={"path": "/rest/api/3/project", "status": 401, "count": 1000},
        timeout=10,
    )
    assert r.status_code < 300, r.text
    return plans[0]["id"]


def run(backend, plan_id: str) -> dict:
    r = backend.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={"plan_id": plan_id})
    assert r.status_code in (200, 201, 202), r.text
    return backend.wait_for_run(TENANT, r.json()["id"])


def outbox_rows(backend) -> int:
    with backend.app.extensions["keepstone"].db.session() as s:
        return s.scalar(select(func.count()).select_from(NotificationMessage))


def test_a_failed_run_sends_one_email_and_one_signed_webhook_with_the_reason_and_a_link(
    backend, smtp, receiver
):
    email = add_channel(
        backend,
        {"name": "Ops mail", "kind": "email", "recipients": ["ops@example.com"], "events": ["failure"]},
    )
    hook = add_channel(
        backend,
        {"name": "Ops hook", "kind": "webhook", "url": receiver.url, "events": ["failure", "warning"]},
    )
    quiet = add_channel(
        backend,
        {"name": "Good news", "kind": "webhook", "url": receiver.url + "?quiet=1", "events": ["success"]},
    )
    secret = hook["secret"]
    assert secret.startswith("whsec_") and secret not in backend.call("GET", BASE, TENANT).text
    finished = run(backend, failing_plan(backend))
    assert finished["state"] == "failed", finished

    mails = smtp.wait_for(1)
    hits = receiver.wait_for(1)
    time.sleep(1.5)  # anything more would arrive within the sender's poll and backoff
    assert len(smtp.inbox.messages) == 1 and len(receiver.hits) == 1
    assert smtp.inbox.auth == ["PLAIN:ok"] or smtp.inbox.auth == ["LOGIN:ok"], smtp.inbox.auth

    rcpts, mail = mails[0]
    assert rcpts == ["ops@example.com"]
    assert mail["Subject"].startswith("Backup failed: ")
    text = mail.get_payload(decode=True).decode()
    assert "Reason:" in text and "401" in text, text
    link = f"{backend.url}/runs?org={TENANT}&run={finished['id']}"
    assert link in text

    hit = hits[0]
    assert signing.verify(secret, hit.headers, hit.body)  # HMAC over the timestamp and the raw body
    assert not signing.verify(secret, hit.headers, hit.body + b" ")
    assert not signing.verify("whsec_other", hit.headers, hit.body)
    doc = hit.json()
    assert doc["event"] == "failure" and doc["run"]["id"] == finished["id"] and doc["url"] == link
    assert "401" in doc["reason"] and doc["run"]["state"] == "failed"
    assert hit.headers[signing.DELIVERY] == doc["id"] == hit.headers[signing.IDEMPOTENCY]
    channels = {c["id"]: c for c in backend.call("GET", BASE, TENANT).json()["items"]}
    assert channels[email["id"]]["last_delivery"]["state"] == "delivered"
    assert channels[hook["id"]]["last_delivery"]["status"] == "HTTP 200"
    assert channels[quiet["id"]]["last_delivery"] is None  # its rule wants successes only
