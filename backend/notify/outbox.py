"""Enqueueing: the outbox rows a finished run, a test or the daily digest asks for, in the caller's session.

`enqueue_run` runs inside the transaction that writes the run's final state (backend/runs.py), so the
messages exist if and only if that state was committed. A (channel, dedupe) pair is unique: a run or a
day's digest is enqueued once per channel, even with several processes.
"""

from __future__ import annotations

import logging
import secrets
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.config import Config
from backend.db import Database
from backend.db.models import NotificationChannel, NotificationMessage, Organisation, Plan, ProjectRun, Run
from backend.notify import messages, rules

log = logging.getLogger(__name__)
_wakers: weakref.WeakSet = weakref.WeakSet()  # the senders of this process (woken after a commit)


def new_key() -> str:
    """A message's idempotency key: random, the same on every try of that message."""
    return "msg_" + secrets.token_hex(16)


def register(sender: Any) -> None:
    _wakers.add(sender)


def wake_all() -> None:
    """Wake this process's senders: something became due sooner than they planned to look."""
    for sender in list(_wakers):
        sender.wake()


def _wake_after_commit(s: Session) -> None:
    event.listen(s, "after_commit", lambda _session: wake_all(), once=True)


def _add(s: Session, channel: NotificationChannel, event_name: str, dedupe: str, doc: dict, **kw: Any):
    message = NotificationMessage(
        key=new_key(),
        organisation_id=channel.organisation_id,
        channel_id=channel.id,
        event=event_name,
        dedupe=dedupe,
        payload=doc,
        state="pending",
        attempts=0,
        next_attempt_at=datetime.now(UTC),
        **kw,
    )
    s.add(message)
    return message


def enqueue_run(s: Session, config: Config, run_id: int) -> int:
    """Add the messages the rules ask for about this finished run (not committed: the caller commits).

    Never raises: a problem here is logged and the run's final state is still written. On PostgreSQL the
    work runs in a SAVEPOINT, so a failed statement here cannot abort the caller's transaction (SQLite
    keeps a transaction usable after a failed statement).
    """
    nested = s.begin_nested() if s.get_bind().dialect.name != "sqlite" else None
    try:
        added = _enqueue_run(s, config, run_id)
    except Exception:
        log.exception("notifications for run %s not enqueued", run_id)
        if nested is not None:
            nested.rollback()
        return 0
    if nested is not None:
        nested.commit()
    return added


def _enqueue_run(s: Session, config: Config, run_id: int) -> int:
    run = s.get(Run, run_id)
    event_name = rules.event_of(run.state) if run is not None else None
    if event_name is None:
        return 0
    channels = list(
        s.scalars(
            select(NotificationChannel).where(
                NotificationChannel.organisation_id == run.organisation_id,
                NotificationChannel.enabled.is_(True),
            )
        )
    )
    plan = s.get(Plan, run.plan_id)
    chosen = [c for c in channels if rules.wants(c, event_name, plan.public_id)]
    if not chosen:
        return 0
    dedupe = f"run:{run.public_id}"
    already = set(
        s.scalars(
            select(NotificationMessage.channel_id).where(
                NotificationMessage.dedupe == dedupe,
                NotificationMessage.channel_id.in_([c.id for c in chosen]),
            )
        )
    )
    org = s.get(Organisation, run.organisation_id)
    projects = list(s.scalars(select(ProjectRun).where(ProjectRun.run_id == run.id)))
    doc = messages.run_document(org, plan, run, projects, event_name, config.public_url)
    added = 0
    for channel in chosen:
        if channel.id not in already:
            _add(s, channel, event_name, dedupe, doc, run_id=run.id)
            added += 1
    if added:
        _wake_after_commit(s)
    return added


def enqueue_test(s: Session, config: Config, channel: NotificationChannel) -> NotificationMessage:
    """A test message for one channel (committed by the caller)."""
    org = s.get(Organisation, channel.organisation_id)
    doc = messages.test_message(org, channel, config.public_url)
    return _add(s, channel, "test", f"test:{secrets.token_hex(8)}", doc)  # tried at once by the caller


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def enqueue_digests(db: Database, config: Config, now: datetime | None = None) -> int:
    """Once the digest hour has passed in an organisation's zone, add yesterday's digest for each channel
    that wants one (once: the unique (channel, dedupe) pair settles a race between processes)."""
    now = now or datetime.now(UTC)
    added = 0
    with db.session() as s:
        channels = list(s.scalars(select(NotificationChannel).where(NotificationChannel.enabled.is_(True))))
        wanted = [c for c in channels if "digest" in (c.events or [])]
        for channel in wanted:
            org = s.get(Organisation, channel.organisation_id)
            tz = _zone(org.time_zone)
            local = now.astimezone(tz)
            if local.hour < config.digest_hour:
                continue
            day = (local - timedelta(days=1)).date()
            dedupe = f"digest:{day.isoformat()}"
            exists = s.scalar(
                select(NotificationMessage.id).where(
                    NotificationMessage.channel_id == channel.id, NotificationMessage.dedupe == dedupe
                )
            )
            if exists is not None:
                continue
            start = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
            end = start + timedelta(days=1)
            runs = []
            query = (
                select(Run, Plan)
                .join(Plan, Plan.id == Run.plan_id)
                .where(Run.organisation_id == org.id, Run.finished.is_not(None))
                .where(Run.finished >= start, Run.finished < end)
                .order_by(Run.id)
            )
            for run, plan in s.execute(query):
                if channel.plans and plan.public_id not in channel.plans:
                    continue
                runs.append(
                    {
                        "plan": plan.name,
                        "plan_id": plan.public_id,
                        "run_id": run.public_id,
                        "state": run.state,
                        "finished": messages.iso(_aware(run.finished)),
                        "reason": (run.error or "")[:300],
                    }
                )
            doc = messages.digest_document(org, day.isoformat(), runs, config.public_url)
            _add(s, channel, "digest", dedupe, doc)
            try:
                s.commit()
                added += 1
            except IntegrityError:
                s.rollback()  # another process added it first
    return added
