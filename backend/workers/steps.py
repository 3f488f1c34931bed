"""The three steps of a run on workers (start, project, finish), each safe to deliver more than once.

Exactly one snapshot per (run, project), however often a project task is delivered or killed:

- an attempt backs a project up only while it holds the item's lease (backend/workers/lease.py);
- every snapshot it writes carries the run's public id in its meta (`run`), and the commit marker
  (`work_items.snapshot_id`) names the one that counts, set once, only by the lease holder;
- an attempt that starts on an item first looks for that marker, then for a snapshot of this run in the
  repository (an attempt killed between the repository's commit and the marker): it records that one and
  writes nothing;
- an attempt that lost its lease (stalled longer than the lease) removes the snapshot it committed;
- the finish step removes any snapshot of the run the markers do not name (an abandoned attempt killed
  after its commit, the one case the others cannot see) before rotation and replication.

Removing such a snapshot needs only the shared lock: nothing records or reads it, and prune and forget,
the only removers of data, take the exclusive lock and so never run meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from backend import storages
from backend.backup import ProjectResult, RunResult, backup_project
from backend.backup.project import fetch_site_objects
from backend.backup.run import overall_status, select_projects
from backend.db.models import ProjectRun, Run, WorkItem, WorkRun
from backend.jira import JiraError
from backend.repository import Repository, RepositoryError, RepositoryLocked, WrongPassword
from backend.runs import ACTIVE_STATES, RunContext, RunService
from backend.storage import StorageError
from backend.workers import lease

log = logging.getLogger(__name__)
Send = Callable[..., Any]  # send(task name, *args)
PROJECT, FINISH = "keepstone.run.project", "keepstone.run.finish"


class Retry(Exception):
    """Another live attempt holds the work: deliver this task again in `wait` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"held by another attempt; again in {wait:.0f} s")
        self.wait = wait


# --- start ----------------------------------------------------------------------------------------


def start(service: RunService, send: Send, run_id: int) -> None:
    """Select the run's projects once, then send one project task per item not done yet."""
    ctx = service.prepare(run_id)
    if ctx is None:
        return
    with service.db.session() as s:
        selected = s.get(WorkRun, run_id) is not None
    if not selected and lease.cancel_requested(service.db, run_id):
        service._log(run_id, "run cancelled before it started: nothing was backed up")
        service._finish(run_id, "cancelled", "cancelled before it started")
        return
    if not selected:
        repo = service.open_or_fail(ctx)  # made here once if new: project tasks never race to create it
        if repo is None:
            return
        client = service.client_of(ctx)
        try:
            keys, missing = select_projects(client, ctx.spec)
            site_objects = fetch_site_objects(client, ctx.spec)
        except JiraError as e:
            failed = RunResult("failed", [], requests=client.stats.requests, errors=[f"Jira: {e}"])
            service.conclude(ctx, repo, client, failed)
            return
        rows: list[Any] = [
            WorkRun(run_id=run_id, site_objects=site_objects, requests=client.stats.requests),
            *(WorkItem(run_id=run_id, project=key) for key in keys),
            *(WorkItem(run_id=run_id, project=r.project, done=True) for r in missing),
        ]
        try:
            service.record_selected(run_id, keys, missing, also=rows)
        except Exception:
            with service.db.session() as s:
                if s.get(WorkRun, run_id) is None:
                    raise
            # another delivery of this task recorded the selection first: go on with its items
    with service.db.session() as s:
        pending = list(
            s.scalars(select(WorkItem.project).where(WorkItem.run_id == run_id, WorkItem.done.is_(False)))
        )
    for key in pending:
        send(PROJECT, run_id, key)
    if not pending:
        send(FINISH, run_id)


# --- one project ----------------------------------------------------------------------------------


def project(service: RunService, send: Send, run_id: int, key: str) -> None:
    """Back one project of the run up under the item's lease; the last one done sends the finish."""
    db = service.db
    holder = lease.new_holder()
    got = lease.claim(db, run_id, key, holder)
    if got.state == "missing":
        log.warning("no work item: the run's selection is gone", extra={"run_id": run_id, "project": key})
        return
    if got.state == "held":
        raise Retry(got.wait + 1)
    if got.state == "ours":
        try:
            result = _attempt(service, run_id, key, holder, got)
        except Retry:
            raise
        except Exception as e:  # a bug: the project fails alone, as in the thread executor
            log.exception("project task crashed", extra={"run_id": run_id, "project": key})
            result = ProjectResult(key, status="failed", errors=[f"internal error: {e.__class__.__name__}"])
        if result is None:  # the lease went to another attempt: that one records
            return
        service._record(run_id, result)
        if not lease.mark_done(db, run_id, key, holder):
            return
    if lease.items_left(db, run_id) == 0:
        send(FINISH, run_id)


def _attempt(
    service: RunService, run_id: int, key: str, holder: str, got: lease.Claim
) -> ProjectResult | None:
    db = service.db
    with db.session() as s:
        run = s.get(Run, run_id)
        work = s.get(WorkRun, run_id)
        active, cancelled = run.state in ACTIVE_STATES, run.cancel_requested
        site_objects = dict(work.site_objects) if work is not None else None
    if not active:
        return ProjectResult(key, status="cancelled", errors=["the run had already ended"])
    if cancelled and not got.snapshot_id:
        return ProjectResult(key, status="cancelled", errors=["the run was cancelled first"])
    ctx = service.prepare(run_id)
    if ctx is None:
        return ProjectResult(key, status="failed", errors=["the run could not go on (see its log)"])
    try:
        repo = service.open_repository(ctx, announce=False)
    except storages.LocationRefused as e:
        return ProjectResult(key, status="failed", errors=[f"storage: {e.field}: {e.message}"])
    except (StorageError, RepositoryError, WrongPassword) as e:
        return ProjectResult(key, status="failed", errors=[storages.redact(f"storage: {e}", ctx.hidden)])
    try:
        held = repo.lock()
    except RepositoryLocked:  # a prune or a rotation holds it: try again soon, the item free meanwhile
        lease.release(db, run_id, key, holder)
        raise Retry(15) from None
    with held:
        earlier = _committed_before(repo, ctx, key, got.snapshot_id)
        if earlier is not None:
            counted = lease.mark_committed(db, run_id, key, holder, earlier)
            for info in repo.snapshots(project=key):
                if info.meta.get("run") == ctx.owner["run"] and info.id != counted:
                    repo.forget(info.id)
            service._log(
                run_id,
                f"{key}: attempt {got.attempt} found the snapshot {str(counted)[:12]} an earlier attempt "
                "committed: recorded, nothing written again",
                project=key,
            )
            return _result_of(repo, key, str(counted))
        cancel = threading.Event()
        client = service.client_of(ctx)
        beat = lease.Heartbeat(
            lambda: lease.renew(db, run_id, key, holder),
            cancel.set,
            lambda: lease.cancel_requested(db, run_id),
            name=f"lease-{key}",
        )
        with beat:
            result = backup_project(
                client,
                repo,
                ctx.spec,
                key,
                progress=service._progress(
                    run_id, cancel, client.budget, source=key
                ),  # the run's traffic too
                cancel=cancel,
                site_objects=site_objects,
                snapshot_meta={**ctx.owner, "attempt": got.attempt},
            )
        if result.snapshot_id is not None:
            counted = lease.mark_committed(db, run_id, key, holder, result.snapshot_id)
            if counted != result.snapshot_id:  # the lease went to another attempt meanwhile
                repo.forget(result.snapshot_id)
                log.warning("lease lost: own snapshot removed", extra={"run_id": run_id, "project": key})
                return None
        elif beat.lost:
            return None
    return result


def _committed_before(repo: Repository, ctx: RunContext, key: str, marker: str | None) -> str | None:
    """The snapshot an earlier attempt of this run committed for the project (the marker's first)."""
    if marker:
        return marker
    found = [i for i in repo.snapshots(project=key) if i.meta.get("run") == ctx.owner["run"]]
    return found[0].id if found else None


def _result_of(repo: Repository, key: str, snapshot_id: str) -> ProjectResult:
    info = repo.snapshot(snapshot_id).info
    skipped = info.meta.get("skipped_attachments") or []
    return ProjectResult(
        key,
        status="warning" if skipped else "ok",
        snapshot_id=snapshot_id,
        counts=dict(info.meta.get("counts") or {}),
        warnings=[f"attachment {a.get('id')} skipped: {a.get('reason')}" for a in skipped],
    )


# --- finish ---------------------------------------------------------------------------------------


def finish(service: RunService, send: Send, run_id: int) -> None:
    """Conclude the run once every item is done: stray snapshots out, rotation, replication, state."""
    db = service.db
    holder = lease.new_holder()
    got = lease.claim_conclusion(db, run_id, holder)
    if got.state == "held":
        raise Retry(got.wait + 1)
    if got.state != "ours":
        return
    ctx = service.prepare(run_id)
    if ctx is None:
        lease.mark_concluded(db, run_id)
        return
    repo = service.open_or_fail(ctx)
    if repo is None:
        lease.mark_concluded(db, run_id)
        return
    with db.session() as s:
        rows = list(s.scalars(select(ProjectRun).where(ProjectRun.run_id == run_id).order_by(ProjectRun.id)))
        selection = s.get(WorkRun, run_id).requests
        started = s.get(Run, run_id).started
    results = [
        ProjectResult(
            r.project,
            status=r.status,
            snapshot_id=r.snapshot_id,
            counts=dict(r.counts or {}),
            warnings=list(r.warnings or []),
            errors=list(r.errors or []),
            requests=r.requests,
        )
        for r in rows
    ]
    _remove_strays(service, repo, ctx, {r.snapshot_id for r in results if r.snapshot_id})
    result = RunResult(
        overall_status(results),
        results,
        (lease.aware(started) or datetime.now(UTC)).isoformat(timespec="seconds"),
        datetime.now(UTC).isoformat(timespec="seconds"),
        selection + sum(r.requests for r in results),
    )
    stop = threading.Event()
    with lease.Heartbeat(lambda: lease.renew_conclusion(db, run_id, holder), stop.set, name="conclude"):
        service.conclude(ctx, repo, service.client_of(ctx), result)
    lease.mark_concluded(db, run_id)


def _remove_strays(service: RunService, repo: Repository, ctx: RunContext, recorded: set[str]) -> None:
    """Remove the run's snapshots no result names (an attempt killed after its commit, before its marker
    was set, whose item another attempt then did again)."""
    try:
        with repo.lock():
            for info in repo.snapshots():
                if info.meta.get("run") == ctx.owner["run"] and info.id not in recorded:
                    repo.forget(info.id)
                    service._log(
                        ctx.run_id,
                        f"{info.project}: removed the snapshot {info.id[:12]} of an abandoned attempt "
                        f"(attempt {info.meta.get('attempt')}); the recorded one stays",
                        project=info.project,
                        level="warning",
                    )
    except (StorageError, RepositoryError) as e:
        service._log(ctx.run_id, f"stray snapshots not checked: {e}", level="warning")
