"""A finished run notifies the channels whose rules ask for it: exactly one message each, with the reason
and a link, over a real SMTP server (STARTTLS + AUTH) and a real webhook receiver, signed with HMAC."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from backend.notify import signing


def add_channel(backend, org, body: dict) -> dict:
    r = backend.call("POST", f"{org.base}/channels", org.cloud_id, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_failed_run_sends_one_email_and_one_signed_webhook_with_the_reason_and_a_link(
    backend, org, smtp, receiver
):
    email = add_channel(
        backend,
        org,
        {"name": "Ops mail", "kind": "email", "recipients": ["ops@example.com"], "events": ["failure"]},
    )
    hook = add_channel(
        backend,
        org,
        {"name": "Ops hook", "kind": "webhook", "url": receiver.url, "events": ["failure", "warning"]},
    )
    quiet = add_channel(
        backend,
        org,
        {"name": "Good news", "kind": "webhook", "url": receiver.url + "?quiet=1", "events": ["success"]},
    )
    secret = hook["secret"]
    assert secret.startswith("whsec_") and secret not in backend.call("GET", org.base, org.cloud_id).text
    before = len(smtp.inbox.messages)
    plan = backend.call("GET", f"/api/v1/organisations/{org.cloud_id}/plans", org.cloud_id).json()["items"][0]
    # Jira refuses the stored token (401) when the run lists the projects: the run fails, saying why
    faults = backend.site.url + "/_sandbox/faults"
    requests.post(faults, json={"path": "/rest/api/3/project", "status": 401, "count": 1000}, timeout=10)
    try:
        started = backend.call(
            "POST", f"/api/v1/organisations/{org.cloud_id}/runs", org.cloud_id, json={"plan_id": plan["id"]}
        )
        finished = backend.wait_for_run(org.cloud_id, started.json()["id"])
    finally:
        requests.delete(faults, timeout=10)
    assert finished["state"] == "failed", finished

    mails = smtp.wait_for(before + 1)[before:]
    hits = receiver.wait_for(1)
    time.sleep(1.0)  # anything more would arrive within the sender's poll and backoff
    assert len(smtp.inbox.messages) == before + 1 and len(receiver.hits) == 1
    assert smtp.inbox.auth[-1] in ("PLAIN:ok", "LOGIN:ok"), smtp.inbox.auth  # after STARTTLS (required)

    rcpts, mail = mails[0]
    assert rcpts == ["ops@example.com"]
    assert mail["Subject"].startswith("Backup failed: ")
    text = mail.get_payload(decode=True).decode()
    assert "Reason:" in text and "401" in text, text
    link = f"{backend.url}/runs/{finished['id']}"
    assert link in text

    hit = hits[0]
    assert signing.verify(secret, hit.headers, hit.body)  # HMAC over the timestamp and the raw body
    assert not signing.verify(secret, hit.headers, hit.body + b" ")
    assert not signing.verify("whsec_other", hit.headers, hit.body)
    assert not signing.verify(secret, hit.headers, hit.body, now=time.time() + 600)  # a replay, later
    doc = hit.json()
    assert doc["event"] == "failure" and doc["run"]["id"] == finished["id"] and doc["url"] == link
    assert "401" in doc["reason"] and doc["run"]["state"] == "failed"
    assert hit.headers[signing.DELIVERY] == doc["id"] == hit.headers[signing.IDEMPOTENCY]
    channels = {c["id"]: c for c in backend.call("GET", org.base, org.cloud_id).json()["items"]}
    assert channels[email["id"]]["last_delivery"]["state"] == "delivered"
    assert channels[hook["id"]]["last_delivery"]["status"] == "HTTP 200"
    assert channels[quiet["id"]]["last_delivery"] is None  # its rule wants successes only


def test_a_channel_for_one_plan_hears_only_of_that_plan(backend, org, receiver):
    plans_url = f"/api/v1/organisations/{org.cloud_id}/plans"
    default = backend.call("GET", plans_url, org.cloud_id).json()["items"][0]
    made = backend.call(
        "POST",
        plans_url,
        org.cloud_id,
        json={"name": "Nightly", "schedule": {"days": ["mon"], "hour": 3, "time_zone": "UTC"}},
    )
    assert made.status_code == 201, made.text
    nightly = made.json()
    scoped = add_channel(
        backend,
        org,
        {"name": "Nightly only", "kind": "webhook", "url": receiver.url, "events": ["success", "failure"],
         "plan_ids": [nightly["id"]]},
    )  # fmt: skip
    assert scoped["scope"] == "plans" and scoped["plan_ids"] == [nightly["id"]]
    for plan in (default, nightly):
        started = backend.call(
            "POST", f"/api/v1/organisations/{org.cloud_id}/runs", org.cloud_id, json={"plan_id": plan["id"]}
        )
        assert backend.wait_for_run(org.cloud_id, started.json()["id"])["state"] == "succeeded"
    hits = receiver.wait_for(1)
    time.sleep(1.0)
    assert len(receiver.hits) == 1 and hits[0].json()["plan"]["id"] == nightly["id"]
    assert hits[0].json()["event"] == "success"
    # its plan deleted, a channel says so (and hears of no plan) rather than seeming to cover all
    spare = backend.call(
        "POST",
        plans_url,
        org.cloud_id,
        json={"name": "Spare", "schedule": {"days": ["tue"], "hour": 4, "time_zone": "UTC"}},
    ).json()
    body = {"name": "Spare only", "kind": "webhook", "url": receiver.url, "plan_ids": [spare["id"]]}
    orphan = add_channel(backend, org, body)
    gone = backend.call("DELETE", f"/api/v1/plans/{spare['id']}", org.cloud_id)
    assert gone.status_code == 204, gone.text
    after = backend.call("GET", f"{org.base}/channels/{orphan['id']}", org.cloud_id).json()
    assert after["scope"] == "plans" and after["plan_ids"] == []


@pytest.mark.postgres
def test_on_postgres_the_messages_commit_with_the_run_and_a_failure_to_enqueue_never_loses_the_state(
    tmp_path, issuer, tls_cert, receiver, monkeypatch
):
    from sqlalchemy import text

    from backend.notify import outbox
    from tests.backend.conftest import _postgres_url, stop_backend
    from tests.notify.conftest import notify_backend

    b = notify_backend(tmp_path, issuer, None, tls_cert[0], database_url=_postgres_url())
    try:
        cloud_id = str(uuid.uuid4())
        b.install(cloud_id, "https://acme.atlassian.net")  # no Jira token: every run fails at once
        base = f"/api/v1/organisations/{cloud_id}"
        body = {"name": "Hook", "kind": "webhook", "url": receiver.url}
        assert b.call("POST", f"{base}/notifications/channels", cloud_id, json=body).status_code == 201

        def start() -> dict:
            started = b.call("POST", f"{base}/runs", cloud_id, json={}).json()
            return b.wait_for_run(cloud_id, started["id"])

        first = start()
        assert first["state"] == "failed"
        hit = receiver.wait_for(1)[0]
        assert hit.json()["run"]["id"] == first["id"] and "credentials" in hit.json()["reason"]
        # a statement that fails inside the enqueueing (which would abort a PostgreSQL transaction) is
        # logged, and the run's final state is written all the same: the enqueueing has its SAVEPOINT
        monkeypatch.setattr(
            outbox, "_enqueue_run", lambda s, config, run_id: s.execute(text("SELECT * FROM no_such_table"))
        )
        second = start()
        assert second["state"] == "failed"  # (it would stay "running" if the transaction had aborted)
        time.sleep(1.0)
        assert len(receiver.hits) == 1
    finally:
        b.app.extensions["keepstone_notify"].stop()
        stop_backend(b)
