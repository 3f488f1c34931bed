"""Delivery through the outbox: retries with backoff until one success, the same idempotency key on every
try, one delivery per message with two senders on one database, refusals that store nothing, the digest."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from backend.config import Config
from backend.db import Database, migrate
from backend.db.models import NotificationChannel, NotificationMessage, Organisation
from backend.notify import outbox, signing
from backend.notify.sender import Sender
from tests.backend.conftest import _postgres_url

TENANT = "eeeeeeee-1111-4222-8333-444444444444"


def add_webhook(backend, org, url: str, **body) -> dict:
    body = {"name": "Hook", "kind": "webhook", "url": url, **body}
    r = backend.call("POST", f"{org.base}/channels", org.cloud_id, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def rows(backend, org, model=NotificationMessage) -> int:
    with backend.app.extensions["keepstone"].db.session() as s:
        org_id = s.scalar(select(Organisation.id).where(Organisation.cloud_id == org.cloud_id))
        return s.scalar(select(func.count()).select_from(model).where(model.organisation_id == org_id))


def wait_state(backend, org, channel_id: str, state: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = backend.call("GET", f"{org.base}/channels/{channel_id}", org.cloud_id).json()["last_delivery"]
        if last and last["state"] == state:
            return last
        time.sleep(0.1)
    raise AssertionError(f"not {state}: {last}")


def send_test(backend, org, channel: dict) -> dict:
    r = backend.call("POST", f"{org.base}/channels/{channel['id']}/test", org.cloud_id)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_receiver_answering_503_twice_is_retried_with_backoff_and_gets_the_message_once(
    backend, org, receiver
):
    receiver.script = [503, 503]
    channel = add_webhook(backend, org, receiver.url)
    first = send_test(backend, org, channel)
    assert first["state"] == "pending" and first["attempts"] == 1 and first["status"] == "HTTP 503"
    done = wait_state(backend, org, channel["id"], "delivered")
    hits = receiver.wait_for(3)
    time.sleep(1.0)  # a fourth try would come within this
    assert len(receiver.hits) == 3 and done["attempts"] == 3 and done["status"] == "HTTP 200"
    keys = {h.headers[signing.DELIVERY] for h in hits}
    assert keys == {first["id"]}  # one message: the same idempotency key on every try
    assert len({h.body for h in hits}) == 1  # the same bytes, signed anew with each try's timestamp
    assert all(signing.verify(channel["secret"], h.headers, h.body) for h in hits)
    gaps = [b.time - a.time for a, b in itertools.pairwise(hits)]
    # backoff 0.3 s, then 0.6 s (times 0.85..1 jitter): never sooner, whatever the machine's load
    assert gaps[0] >= 0.25 and gaps[1] >= 0.5, gaps
    assert hits[0].json()["event"] == "test"


def test_a_timeout_after_the_receiver_took_the_message_is_retried_with_the_same_key(backend, org, receiver):
    """At least once: the answer was lost, so the message is sent again; the key lets the receiver drop it."""
    config = backend.app.extensions["keepstone"].config
    config.notify_timeout_seconds = 1
    try:
        receiver.delay_first = 1.5
        channel = add_webhook(backend, org, receiver.url)
        first = send_test(backend, org, channel)
        assert first["state"] == "pending" and first["status"] == "timeout"
        wait_state(backend, org, channel["id"], "delivered")
        hits = receiver.wait_for(2)
    finally:
        config.notify_timeout_seconds = 5
    assert len(hits) == 2 and hits[0].headers[signing.DELIVERY] == hits[1].headers[signing.DELIVERY]
    assert len({h.headers[signing.IDEMPOTENCY] for h in hits}) == 1  # what a receiver keeps to drop repeats


def test_a_receiver_refusing_with_400_is_not_retried(backend, org, receiver):
    receiver.script = [400]
    channel = add_webhook(backend, org, receiver.url)
    answer = send_test(backend, org, channel)
    assert answer["state"] == "failed" and answer["status"] == "HTTP 400" and answer["attempts"] == 1
    time.sleep(0.8)
    assert len(receiver.hits) == 1


BAD = {
    "not a URL": {"kind": "webhook", "url": "not a url at all"},
    "ftp": {"kind": "webhook", "url": "ftp://hooks.example.com/x"},
    "plain http to a host not listed": {"kind": "webhook", "url": "http://hooks.example.com/x"},
    "a private address": {"kind": "webhook", "url": "https://10.1.2.3/hook"},
    "loopback by name": {"kind": "webhook", "url": "https://localhost/hook"},
    "a password in the URL": {"kind": "webhook", "url": "https://u:p@hooks.example.com/x"},
    "no URL": {"kind": "webhook"},
    "a bad email": {"kind": "email", "recipients": ["not-an-email"]},
    "a header in an email": {"kind": "email", "recipients": ["a@example.com\r\nBcc: b@example.com"]},
    "no recipients": {"kind": "email", "recipients": []},
    "recipients on a webhook": {
        "kind": "webhook",
        "url": "https://hooks.example.com/x",
        "recipients": ["a@b.cd"],
    },
    "an unknown event": {"kind": "webhook", "url": "https://hooks.example.com/x", "events": ["sometimes"]},
    "an unknown plan": {
        "kind": "webhook",
        "url": "https://hooks.example.com/x",
        "plan_ids": ["pln_" + "a" * 20],
    },
    "an unknown format": {"kind": "webhook", "url": "https://hooks.example.com/x", "format": "xml"},
    "a short secret": {"kind": "webhook", "url": "https://hooks.example.com/x", "secret": "short"},
}


def test_a_bad_channel_is_refused_naming_the_field_and_stores_nothing(backend, org):
    for case, body in BAD.items():
        r = backend.call("POST", f"{org.base}/channels", org.cloud_id, json={"name": "Bad", **body})
        assert r.status_code == 422, (case, r.status_code, r.text)
        error = r.json()["error"]
        assert error["fields"], (case, error)
    config = backend.app.extensions["keepstone"].config
    config.webhook_hosts = "hooks.example.com"  # the operator's allow-list: no other host
    try:
        body = {"name": "Elsewhere", "kind": "webhook", "url": "https://other.example.com/x"}
        r = backend.call("POST", f"{org.base}/channels", org.cloud_id, json=body)
        assert r.status_code == 422 and "KEEPSTONE_WEBHOOK_HOSTS" in r.text
    finally:
        config.webhook_hosts = ""
    assert rows(backend, org, NotificationChannel) == 0


def test_email_is_refused_while_smtp_is_not_configured(backend, org):
    config = backend.app.extensions["keepstone"].config
    host, config.smtp_host = config.smtp_host, ""
    try:
        r = backend.call(
            "POST",
            f"{org.base}/channels",
            org.cloud_id,
            json={"name": "Mail", "kind": "email", "recipients": ["a@b.example"]},
        )
        assert r.status_code == 422 and "KEEPSTONE_SMTP_HOST" in r.text
        assert backend.call("GET", org.base, org.cloud_id).json() == {"email_enabled": False, "items": []}
    finally:
        config.smtp_host = host


def test_slack_and_teams_bodies(backend, org, receiver):
    slack = add_webhook(backend, org, receiver.url + "?slack", format="slack")
    teams = add_webhook(backend, org, receiver.url + "?teams", format="teams", name="Teams")
    for c in (slack, teams):
        assert send_test(backend, org, c)["state"] == "delivered"
    hits = receiver.wait_for(2)
    body = hits[0].json()
    assert "Keepstone test message" in body["text"] and body["blocks"][0]["type"] == "header"
    card = hits[1].json()["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard" and card["content"]["actions"][0]["url"].startswith(
        "http"
    )


def test_channels_of_another_organisation_are_not_there(backend, org, receiver):
    other = str(uuid.uuid4())
    backend.install(other, backend.site.url)
    mine = add_webhook(backend, org, receiver.url)
    for method, path in (
        ("GET", f"/api/v1/organisations/{other}/notifications/channels/{mine['id']}"),
        ("PATCH", f"/api/v1/organisations/{other}/notifications/channels/{mine['id']}"),
        ("DELETE", f"/api/v1/organisations/{other}/notifications/channels/{mine['id']}"),
        ("POST", f"/api/v1/organisations/{other}/notifications/channels/{mine['id']}/test"),
    ):
        r = backend.call(method, path, other, json={"name": "x"})
        assert r.status_code == 404, (method, r.text)
    assert backend.call("GET", f"{org.base}/channels/{mine['id']}", org.cloud_id).json()["name"] == "Hook"
    assert receiver.hits == []


def test_patch_and_delete(backend, org, receiver):
    c = add_webhook(backend, org, receiver.url)
    path = f"{org.base}/channels/{c['id']}"
    r = backend.call("PATCH", path, org.cloud_id, json={"events": ["success", "failure"], "enabled": False})
    assert r.status_code == 200, r.text
    assert r.json()["events"] == ["failure", "success"] and r.json()["enabled"] is False
    r = backend.call("PATCH", path, org.cloud_id, json={"recipients": ["a@b.example"]})
    assert r.status_code == 422
    r = backend.call("PATCH", path, org.cloud_id, json={"url": "http://hooks.example.com/x"})
    assert r.status_code == 422
    assert backend.call("GET", path, org.cloud_id).json()["url"] == receiver.url  # nothing changed
    send_test(backend, org, c)
    assert backend.call("DELETE", path, org.cloud_id).status_code == 204
    assert rows(backend, org) == 0 and rows(backend, org, NotificationChannel) == 0


@pytest.mark.postgres
def test_two_senders_on_one_postgres_deliver_each_message_exactly_once(tmp_path, receiver):
    url = _postgres_url()
    migrate(url)
    config = Config(
        data_dir=tmp_path,
        database_url=url,
        secret_key="k" * 40,
        webhook_http_hosts="127.0.0.1",
        notify_backoff_seconds=0.2,
        notify_poll_seconds=0.2,
    )
    db = Database(url)
    with db.session() as s:
        org = Organisation(cloud_id=TENANT, site_url="https://acme.atlassian.net", display_name="Acme")
        s.add(org)
        s.flush()
        channel = NotificationChannel(
            organisation_id=org.id, name="Hook", kind="webhook", address=receiver.url, format="json",
            events=["failure"], plans=[], enabled=True,
        )  # fmt: skip
        s.add(channel)
        s.flush()
        for n in range(40):
            outbox._add(
                s, channel, "test", f"test:{n}", {"subject": f"m{n}", "text": "t", "event": "test", "url": ""}
            )
        s.commit()
    receiver.script = [503] * 5  # some tries fail and come back later, to either sender
    senders = [Sender(config, Database(url)) for _ in range(2)]
    for sender in senders:
        sender.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with db.session() as s:
                left = s.scalar(select(func.count()).where(NotificationMessage.state != "delivered"))
            if left == 0:
                break
            time.sleep(0.2)
        assert left == 0
        time.sleep(0.5)
        delivered = [h.headers[signing.DELIVERY] for h in receiver.hits if True]
        ok = len(receiver.hits) - 5  # the five 503s were answered, then each message once
        assert ok == 40 and len(set(delivered)) == 40
        with db.session() as s:
            attempts = s.scalar(select(func.sum(NotificationMessage.attempts)))
        assert attempts == 45
    finally:
        for sender in senders:
            sender.stop()
        db.engine.dispose()


def test_the_daily_digest_is_enqueued_once_for_the_previous_day(backend, org, receiver):
    channel = add_webhook(backend, org, receiver.url, events=["digest"])
    plans = backend.call("GET", f"/api/v1/organisations/{org.cloud_id}/plans", org.cloud_id).json()["items"]
    started = backend.call(
        "POST", f"/api/v1/organisations/{org.cloud_id}/runs", org.cloud_id, json={"plan_id": plans[0]["id"]}
    )
    run = backend.wait_for_run(org.cloud_id, started.json()["id"])
    svc = backend.app.extensions["keepstone"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0)
    before = rows(backend, org)
    outbox.enqueue_digests(svc.db, svc.config, tomorrow)
    outbox.enqueue_digests(svc.db, svc.config, tomorrow)  # once a day, whoever asks
    outbox.enqueue_digests(svc.db, svc.config, tomorrow.replace(hour=3))  # before the digest hour: none
    assert rows(backend, org) == before + 1
    backend.app.extensions["keepstone_notify"].wake()
    done = wait_state(backend, org, channel["id"], "delivered")
    assert done["event"] == "digest"
    body = json.loads(receiver.wait_for(1)[0].body)
    assert [r["run_id"] for r in body["runs"]] == [run["id"]] and body["counts"] == {run["state"]: 1}
    assert body["day"] == datetime.now(UTC).date().isoformat()


def test_a_message_left_sending_by_a_dead_process_is_delivered_after_its_lease(backend, org, receiver):
    channel = add_webhook(backend, org, receiver.url)
    svc = backend.app.extensions["keepstone"]
    with svc.db.session() as s:
        row = s.scalar(select(NotificationChannel).where(NotificationChannel.public_id == channel["id"]))
        doc = {"subject": "left over", "text": "t", "event": "test", "url": ""}
        m = outbox._add(s, row, "test", "test:orphan", doc)
        m.state, m.claim = "sending", "deadbeefdeadbeef"  # claimed by a process that died mid-try
        m.lease_until = datetime.now(UTC) + timedelta(seconds=1)
        s.commit()
    time.sleep(0.6)
    assert receiver.hits == []  # its lease still holds: nobody else takes it
    backend.app.extensions["keepstone_notify"].wake()
    last = wait_state(backend, org, channel["id"], "delivered")
    assert last["attempts"] == 1 and len(receiver.wait_for(1)) == 1


def test_a_webhook_url_is_never_answered_whole(backend, org):
    """A Slack or Teams URL's path is its credential: answers show its start only (nothing is sent here)."""
    url = "https://hooks.slack.com/services/T0AAAA/B0BBBB/s3cr3tT0k3n"
    made = add_webhook(backend, org, url, format="slack", events=[])
    assert made["url"] == "https://hooks.slack.com/services/…"
    path = f"{org.base}/channels/{made['id']}"
    for answer in (backend.call("GET", org.base, org.cloud_id), backend.call("GET", path, org.cloud_id)):
        assert "s3cr3t" not in answer.text
    r = backend.call("PATCH", path, org.cloud_id, json={"url": made["url"], "name": "Slack"})
    assert r.status_code == 200 and r.json()["name"] == "Slack"
    with backend.app.extensions["keepstone"].db.session() as s:
        stored = s.scalar(
            select(NotificationChannel.address).where(NotificationChannel.public_id == made["id"])
        )
    assert stored == url  # the shortened URL sent back kept the whole one
