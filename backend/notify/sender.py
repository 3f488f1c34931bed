"""The background sender: claim due outbox rows, try each once, then mark it delivered, retry later or give up.

Several processes may run a sender against one database. A row is claimed by one conditional UPDATE
(`... SET state='sending', claim=<token> WHERE id=:id AND <still due>`): on PostgreSQL a second claimer
waits for the first's row lock and then finds the row no longer due; SQLite takes one writer at a time.
A claim is a lease: a process that dies mid-try leaves a 'sending' row that is due again once its lease
ends (so delivery is at least once). Results are written only under the claim that made the try, so a
row is marked delivered once. Retries back off exponentially (base * 2^(n-1), at most the cap, with a
little jitter; a Retry-After is honoured up to the cap) for at most `notify_max_attempts` tries.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import and_, func, or_, select, update

from backend.config import Config
from backend.db import Database
from backend.db.models import NotificationChannel, NotificationMessage, Organisation
from backend.notify import outbox
from backend.notify.channels import unseal_secret
from backend.notify.messages import webhook_body
from backend.notify.transports import Outcome, post_webhook, send_email
from keepstone.backoff import spread

log = logging.getLogger(__name__)
BATCH = 20
DIGEST_EVERY_SECONDS = 60.0


def _due(now: datetime):
    pending = and_(NotificationMessage.state == "pending", NotificationMessage.next_attempt_at <= now)
    stale = and_(NotificationMessage.state == "sending", NotificationMessage.lease_until < now)
    return or_(pending, stale)


def backoff(config: Config, attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next try after `attempts` failed ones."""
    delay = min(config.notify_backoff_max_seconds, config.notify_backoff_seconds * 2 ** max(0, attempts - 1))
    delay = spread(delay)  # spread the retries of many rows a little
    if retry_after is not None:
        delay = max(delay, min(retry_after, config.notify_backoff_max_seconds))
    return delay


class Sender:
    def __init__(self, config: Config, db: Database, owner: Any = None) -> None:
        self.config = config
        self.db = db
        # The app this sender serves, weakly: once nothing else holds the app, the thread ends by itself.
        self._owner = weakref.ref(owner) if owner is not None else None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_digest = 0.0
        outbox.register(self)

    # --- the loop -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="notify-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.notify_timeout_seconds + 5)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if self._owner is not None and self._owner() is None:
                return
            self._wake.clear()  # before looking: a wake during the look is not lost
            try:
                self.run_once()
                wait = self._until_next_due()
                failures = 0
            except Exception:
                failures += 1
                log.exception("the notification sender failed; it tries again")
                wait = min(60.0, 2.0**failures)
            self._wake.wait(wait)

    def _until_next_due(self) -> float:
        with self.db.session() as s:
            due = s.scalar(
                select(func.min(NotificationMessage.next_attempt_at)).where(
                    NotificationMessage.state == "pending"
                )
            )
        poll = self.config.notify_poll_seconds
        if due is None:
            return poll
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        return max(0.05, min(poll, (due - datetime.now(UTC)).total_seconds()))

    def run_once(self) -> int:
        """Enqueue due digests (at most once a minute), then try every due message; the number delivered."""
        now_mono = time.monotonic()
        if now_mono - self._last_digest >= DIGEST_EVERY_SECONDS:
            self._last_digest = now_mono
            outbox.enqueue_digests(self.db, self.config)
        delivered = 0
        while not self._stop.is_set():
            claimed = self._claim()
            if not claimed:
                break
            for message_id, token in claimed:
                delivered += self._try(message_id, token) == "delivered"
        return delivered

    # --- claiming and trying ------------------------------------------------------------------------

    def _lease(self) -> timedelta:
        return timedelta(seconds=self.config.notify_timeout_seconds * 3 + 30)

    def _claim(self, only: int | None = None) -> list[tuple[int, str]]:
        """Claim up to BATCH due rows (or just `only`, if due); each with its claim token."""
        now = datetime.now(UTC)
        token = secrets.token_hex(8)
        claimed = []
        with self.db.session() as s:
            if only is not None:
                ids = [only]
            else:
                ids = list(
                    s.scalars(
                        select(NotificationMessage.id)
                        .where(_due(now))
                        .order_by(NotificationMessage.next_attempt_at, NotificationMessage.id)
                        .limit(BATCH)
                    )
                )
            for message_id in ids:
                done = s.execute(
                    update(NotificationMessage)
                    .where(NotificationMessage.id == message_id, _due(now))
                    .values(state="sending", claim=token, lease_until=now + self._lease())
                    .execution_options(synchronize_session=False)
                )
                if done.rowcount == 1:
                    claimed.append((message_id, token))
            s.commit()
        return claimed

    def deliver_now(self, message_id: int) -> str:
        """Try one message at once (Send test): its state afterwards ('sending' if another process has it)."""
        claimed = self._claim(only=message_id)
        if claimed:
            return self._try(*claimed[0])
        deadline = time.monotonic() + self.config.notify_timeout_seconds + 2
        while True:  # another sender took it first: wait (a little) for its result
            with self.db.session() as s:
                state = s.scalar(
                    select(NotificationMessage.state).where(NotificationMessage.id == message_id)
                )
            if state != "sending" or time.monotonic() > deadline:
                return state
            time.sleep(0.1)

    def _try(self, message_id: int, token: str) -> str:
        with self.db.session() as s:
            m = s.get(NotificationMessage, message_id)
            if m is None:  # its channel was deleted meanwhile
                return "deleted"
            channel = s.get(NotificationChannel, m.channel_id)
            org = s.get(Organisation, m.organisation_id)
            doc, key, attempts, event_name = dict(m.payload), m.key, m.attempts, m.event
            kind = channel.kind if channel else None
            enabled = bool(channel and channel.enabled)
            address, fmt = (channel.address, channel.format) if channel else ("", "json")
            secret = None
            problem = ""
            if channel is not None and channel.secret_sealed:
                try:
                    secret = unseal_secret(
                        self.config, org.cloud_id, channel.public_id, channel.secret_sealed
                    )
                except ValueError as e:
                    problem = f"the channel's signing secret: {e}"
        try:
            if channel is None or (not enabled and event_name != "test"):
                outcome = Outcome(False, "dropped", "the channel was disabled or removed before delivery")
            elif problem:
                outcome = Outcome(False, "secret", problem)
            elif kind == "email":
                recipients = [a for a in address.split(",") if a]
                outcome = send_email(self.config, recipients, doc["subject"], doc["text"], key)
            else:
                body = webhook_body(doc, fmt, key)
                outcome = post_webhook(self.config, address, body, secret, key, event_name)
        except Exception as e:  # a bug, not the receiver: give up on this message rather than loop on it
            log.exception("notification %s could not be sent", message_id)
            outcome = Outcome(False, "error", f"Keepstone could not send it: {type(e).__name__}")
        return self._record(message_id, token, attempts + 1, outcome)

    def _record(self, message_id: int, token: str, attempts: int, outcome: Outcome) -> str:
        now = datetime.now(UTC)
        values: dict = {
            "attempts": attempts,
            "last_status": outcome.status[:255],
            "last_error": outcome.error,
        }
        if outcome.delivered:
            values.update(state="delivered", delivered_at=now, claim=None, lease_until=None)
        elif outcome.retry and attempts < self.config.notify_max_attempts:
            delay = backoff(self.config, attempts, outcome.retry_after)
            values.update(
                state="pending", next_attempt_at=now + timedelta(seconds=delay), claim=None, lease_until=None
            )
        else:
            if outcome.retry:
                values["last_error"] = f"{outcome.error} (gave up after {attempts} tries)"
            values.update(state="failed", claim=None, lease_until=None)
        with self.db.session() as s:
            done = s.execute(
                update(NotificationMessage)
                .where(NotificationMessage.id == message_id, NotificationMessage.claim == token)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            s.commit()
        if values["state"] == "pending":
            outbox.wake_all()  # the loop's wait may be longer than this retry's delay
        if done.rowcount != 1:  # our lease ran out and another process took the row: its result counts
            log.warning("notification %s: lease lost before the result was written", message_id)
        level = logging.INFO if outcome.delivered else logging.WARNING
        log.log(level, "notification %s: %s %s", message_id, values["state"], outcome.status)
        return values["state"]


def init_app(app: Flask, config: Config, db: Database) -> Sender:
    """Make this process's sender (app.extensions['keepstone_notify']); start it unless turned off."""
    sender = Sender(config, db, owner=app)
    app.extensions["keepstone_notify"] = sender
    if config.notify_sender:
        sender.start()
    return sender
