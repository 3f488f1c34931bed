"""Leases on a run's work items: at most one live attempt per (run, project), and one commit marker.

An attempt takes the item's lease (holder = host:pid:nonce, `lease_until` = now + KEEPSTONE_WORK_LEASE
seconds) in a row-locked transaction; a heartbeat renews it while the attempt lives. A second delivery of
the same task (a visibility timeout, a redelivery after a lost connection) finds a live lease and waits
for it; a killed attempt stops renewing and the next delivery takes the item over once the lease ran out.
An attempt that finds its lease taken (it stalled longer than the lease) stops without recording.

The commit marker is `work_items.snapshot_id`, set by a conditional update only the holder can make and
only once, right after the repository committed the snapshot. It is what makes the snapshot count once:
see backend/workers/steps.py for how an abandoned attempt's snapshot is recognised and removed.

Times are the workers' clocks (UTC): keep them in sync (NTP); a lease of a minute tolerates seconds.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from backend.db import Database
from backend.db.models import Run, WorkItem, WorkRun


def lease_seconds() -> float:
    return float(os.environ.get("KEEPSTONE_WORK_LEASE_SECONDS", "60"))


def new_holder() -> str:
    """A name for one attempt: unique even for two deliveries of one message in one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def aware(t: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes: they are UTC."""
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


@dataclass
class Claim:
    """What a claim found: `ours` (attempt number), `done`, `held` (retry after `wait`), `missing`."""

    state: str
    attempt: int = 0
    wait: float = 0.0
    snapshot_id: str | None = None


def claim(db: Database, run_id: int, project: str, holder: str) -> Claim:
    """Take the item's lease unless it is done or another live attempt holds it."""
    now = datetime.now(UTC)
    with db.session() as s:
        item = s.get(WorkItem, (run_id, project), with_for_update=True)
        if item is None:
            return Claim("missing")
        if item.done:
            return Claim("done", item.attempts, snapshot_id=item.snapshot_id)
        until = aware(item.lease_until)
        if item.holder and item.holder != holder and until is not None and until > now:
            return Claim("held", item.attempts, (until - now).total_seconds(), item.snapshot_id)
        item.attempts += 1
        item.holder, item.lease_until, item.updated = holder, now + timedelta(seconds=lease_seconds()), now
        s.commit()
        return Claim("ours", item.attempts, snapshot_id=item.snapshot_id)


def renew(db: Database, run_id: int, project: str, holder: str) -> bool:
    """Extend the lease; False if another attempt holds it now."""
    now = datetime.now(UTC)
    with db.session() as s:
        done = s.execute(
            update(WorkItem)
            .where(WorkItem.run_id == run_id, WorkItem.project == project, WorkItem.holder == holder)
            .values(lease_until=now + timedelta(seconds=lease_seconds()), updated=now)
        )
        s.commit()
        return done.rowcount == 1


def mark_committed(db: Database, run_id: int, project: str, holder: str, snapshot_id: str) -> str | None:
    """Set the commit marker if this attempt still holds the item; return the marker that counts."""
    with db.session() as s:
        s.execute(
            update(WorkItem)
            .where(
                WorkItem.run_id == run_id,
                WorkItem.project == project,
                WorkItem.holder == holder,
                WorkItem.snapshot_id.is_(None),
            )
            .values(snapshot_id=snapshot_id, updated=datetime.now(UTC))
        )
        s.commit()
        return s.scalar(
            select(WorkItem.snapshot_id).where(WorkItem.run_id == run_id, WorkItem.project == project)
        )


def mark_done(db: Database, run_id: int, project: str, holder: str | None = None) -> bool:
    """The item is recorded: no attempt starts it again. With `holder`, only if that attempt holds it."""
    with db.session() as s:
        q = update(WorkItem).where(WorkItem.run_id == run_id, WorkItem.project == project)
        if holder is not None:
            q = q.where(WorkItem.holder == holder)
        done = s.execute(q.values(done=True, lease_until=None, updated=datetime.now(UTC)))
        s.commit()
        return done.rowcount == 1


class Heartbeat:
    """Call `renew` every few seconds in a thread; when it fails (the lease went to another attempt) or
    `cancelled` answers true (a cancel in the database), call `stop` and say which in `lost`/`cancelled`."""

    def __init__(
        self,
        renew: Callable[[], bool],
        stop: Callable[[], None],
        cancelled: Callable[[], bool] | None = None,
        name: str = "lease",
    ) -> None:
        self.renew, self.stop, self.check = renew, stop, cancelled
        self.every = min(lease_seconds() / 4, 5.0)
        self.lost = False
        self.cancelled = False
        self._quit = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._quit.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._quit.wait(self.every):
            try:
                if not self.renew():
                    self.lost = True
                    self.stop()
                    return
                if self.check is not None and not self.cancelled and self.check():
                    self.cancelled = True
                    self.stop()
            except Exception:  # the database is away for a moment: the lease runs a little longer
                continue


def cancel_requested(db: Database, run_id: int) -> bool:
    with db.session() as s:
        return bool(s.scalar(select(Run.cancel_requested).where(Run.id == run_id)))


def claim_conclusion(db: Database, run_id: int, holder: str) -> Claim:
    """Take the lease of the run's conclusion: `done` (concluded, or items left: not ours to end), `held`."""
    now = datetime.now(UTC)
    with db.session() as s:
        work = s.get(WorkRun, run_id, with_for_update=True)
        if work is None or work.concluded is not None:
            return Claim("done")
        left = s.scalar(
            select(func.count())
            .select_from(WorkItem)
            .where(WorkItem.run_id == run_id, WorkItem.done.is_(False))
        )
        if left:
            return Claim("done")  # the task that finishes the last item sends another finish
        until = aware(work.conclude_until)
        if work.concluder and work.concluder != holder and until is not None and until > now:
            return Claim("held", wait=(until - now).total_seconds())
        work.concluder, work.conclude_until = holder, now + timedelta(seconds=lease_seconds())
        s.commit()
        return Claim("ours")


def renew_conclusion(db: Database, run_id: int, holder: str) -> bool:
    with db.session() as s:
        done = s.execute(
            update(WorkRun)
            .where(WorkRun.run_id == run_id, WorkRun.concluder == holder, WorkRun.concluded.is_(None))
            .values(conclude_until=datetime.now(UTC) + timedelta(seconds=lease_seconds()))
        )
        s.commit()
        return done.rowcount == 1


def mark_concluded(db: Database, run_id: int) -> None:
    with db.session() as s:
        s.execute(update(WorkRun).where(WorkRun.run_id == run_id).values(concluded=datetime.now(UTC)))
        s.commit()


def items_left(db: Database, run_id: int) -> int:
    with db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(WorkItem)
                .where(WorkItem.run_id == run_id, WorkItem.done.is_(False))
            )
            or 0
        )


def release(db: Database, run_id: int, project: str, holder: str) -> None:
    """Give the item up at once (this attempt stops without doing it): the next delivery may take it."""
    with db.session() as s:
        s.execute(
            update(WorkItem)
            .where(WorkItem.run_id == run_id, WorkItem.project == project, WorkItem.holder == holder)
            .values(holder="", lease_until=None)
        )
        s.commit()
