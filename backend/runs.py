"""Runs: start one (Backup now or a schedule), execute it with the real engine, record everything in the DB.

Execution sits behind `RunExecutor` (submit a callable): a bounded thread pool here; a Celery task queue can
take its place without touching the rest. Progress, results and logs go through the database, never
process memory, so any process can show or cancel any run.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from backend import catalog, storages, vault
from backend.backup import BackupSpec, ProjectResult, RunResult, run_backup
from backend.config import Config
from backend.db import Database
from backend.db.models import (
    ActiveRun,
    JiraAccount,
    Organisation,
    Plan,
    PlanReplica,
    ProjectRun,
    Run,
    RunLog,
    ScheduledFire,
)
from backend.jira import JiraClient, JiraCredentials, JiraError
from backend.notify.outbox import enqueue_run as enqueue_notifications
from backend.repository import Repository, RepositoryError, RepositoryLocked, SnapshotInfo, WrongPassword
from backend.repository.copy import copy as copy_snapshots
from backend.repository.copy import missing as missing_snapshots
from backend.repository.copy import stored_bytes
from backend.repository.retention import Policy, PolicyError, forget
from backend.run_meter import WINDOW as METER_WINDOW
from backend.run_meter import MeteredBudget
from backend.storage import Storage, StorageError, open_storage

log = logging.getLogger(__name__)
STATE_OF = {
    "ok": "succeeded",
    "warning": "warning",
    "partial": "partial",
    "failed": "failed",
    "cancelled": "cancelled",
}
ACTIVE_STATES = ("queued", "running")


class RunExecutor(Protocol):
    def submit(self, fn, *args: Any) -> Any:
        """Run fn(*args) somewhere, soon."""

    def shutdown(self) -> None:
        """Stop taking work (what is running elsewhere goes on)."""


class ThreadRunExecutor:
    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")

    def submit(self, fn, *args: Any) -> Any:
        return self.pool.submit(fn, *args)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def make_executor(config: Config) -> RunExecutor:
    """The executor KEEPSTONE_EXECUTOR names: `threads` (the embedded default) or `celery` (the workers)."""
    if config.executor == "celery":
        from backend.workers.executor import CeleryRunExecutor

        return CeleryRunExecutor(config.broker_url)
    if config.executor != "threads":
        raise ValueError(f"KEEPSTONE_EXECUTOR must be threads or celery, not {config.executor!r}")
    return ThreadRunExecutor(config.run_workers)


@dataclass
class RunContext:
    """What executing a run needs, read from the database (so any process can build it)."""

    run_id: int
    spec: BackupSpec
    creds: JiraCredentials
    cloud_id: str
    storage_url: str
    primary: storages.Target | None
    owner: dict[str, str]  # {"plan": public id, "run": public id}: the meta of every snapshot it writes
    rotation: dict[str, Any]
    time_zone: str
    replicas: list[tuple[int, str, storages.Target | None]]
    plan_row_id: int

    @property
    def hidden(self) -> list[str]:
        """The primary storage's secrets, kept out of every message."""
        return self.primary.secrets() if self.primary else []


class AlreadyRunning(Exception):
    """A run of this plan is already queued or running."""


class RunService:
    def __init__(self, config: Config, db: Database, executor: RunExecutor) -> None:
        self.config = config
        self.db = db
        self.executor = executor

    # --- starting ---------------------------------------------------------------------------------

    def start(self, plan_id: int, trigger: str, projects: list[str] | None = None) -> int:
        """Create a queued run and hand it to the executor; AlreadyRunning if the plan has an active run.

        `projects` limits the run to those keys of the plan (Retry failed projects); None: the plan's own."""
        with self.db.session() as s:
            plan = s.get(Plan, plan_id)
            run = Run(organisation_id=plan.organisation_id, plan_id=plan_id, trigger=trigger)
            if projects:
                run.progress = {"only": list(projects)}
            s.add(run)
            s.flush()
            try:
                s.add(ActiveRun(plan_id=plan_id, run_id=run.id))
                s.commit()
            except IntegrityError:
                s.rollback()
                raise AlreadyRunning(f"plan {plan_id} already has a run in progress") from None
            run_id = run.id
        try:
            self.executor.submit(self.execute, run_id)
        except Exception as e:  # the broker is away: the run ends failed, never queued for ever
            log.warning("run not queued", extra={"run_id": run_id, "error": type(e).__name__})
            message = (
                f"the run could not be queued for the workers: the broker did not answer ({type(e).__name__})"
            )
            self._log(run_id, message, level="error")
            self._finish(run_id, "failed", message)
        return run_id

    def start_scheduled(self, plan_id: int) -> int | None:
        """A schedule fired: claim the slot (once across processes), then start unless a run is active."""
        from backend.scheduler import current_slot

        with self.db.session() as s:
            plan = s.get(Plan, plan_id)
            if plan is None or not plan.enabled or plan.organisation.state != "active" or not plan.schedule:
                return None
            slot = current_slot(
                plan.schedule,
                plan.organisation.time_zone,
                datetime.now(UTC),
                self.config.misfire_grace_seconds,
            ).isoformat()
            try:
                s.add(ScheduledFire(plan_id=plan_id, slot=slot))
                s.commit()
            except IntegrityError:
                return None  # another scheduler already fired this slot
        try:
            return self.start(plan_id, "schedule")
        except AlreadyRunning:
            log.info("scheduled run skipped: previous run still active", extra={"plan_id": plan_id})
            return None

    def cancel(self, run_id: int) -> None:
        with self.db.session() as s:
            s.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))
            s.commit()

    # --- executing --------------------------------------------------------------------------------

    def _log(self, run_id: int, message: str, project: str | None = None, level: str = "info") -> None:
        with self.db.session() as s:
            s.add(RunLog(run_id=run_id, project=project, level=level, message=message))
            s.commit()

    def _finish(self, run_id: int, state: str, error: str = "", requests: int = 0) -> None:
        with self.db.session() as s:
            s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(state=state, error=error, requests=requests, finished=datetime.now(UTC))
            )
            s.execute(delete(ActiveRun).where(ActiveRun.run_id == run_id))
            enqueue_notifications(s, self.config, run_id)  # the rules' messages, in this same transaction
            s.commit()

    def execute(self, run_id: int) -> None:
        """Run a backup from start to end; every outcome ends in the database, never in an exception."""
        try:
            self._execute(run_id)
        except Exception as e:
            log.exception("run crashed", extra={"run_id": run_id})
            self._log(
                run_id, f"the run stopped on an unexpected error: {e.__class__.__name__}", level="error"
            )
            self._finish(run_id, "failed", f"internal error: {e.__class__.__name__}")

    def prepare(self, run_id: int) -> RunContext | None:
        """Read what the run needs (plan, credentials, storages) and mark it running; None if it cannot run.

        A run that cannot start (no credentials, undecryptable storage credentials) is finished here as
        failed with the reason; a run already finished (cancelled meanwhile, or redelivered to a worker
        after it ended) is left alone. Any process may call this: the database holds everything.
        """
        with self.db.session() as s:
            run = s.get(Run, run_id)
            if run is None or run.state not in ACTIVE_STATES:
                return None
            plan = s.get(Plan, run.plan_id)
            org = s.get(Organisation, run.organisation_id)
            account = s.scalar(select(JiraAccount).where(JiraAccount.organisation_id == org.id))
            if run.state == "queued":
                run.state, run.started = "running", datetime.now(UTC)
                s.commit()
            cloud_id = org.cloud_id
            replicas: list[tuple[int, str, storages.Target | None]] = []
            for link in plan.replica_links:
                label = f"storage {link.storage.name!r} ({link.storage.public_id}, {link.storage.kind})"
                try:
                    replicas.append(
                        (link.storage_id, label, storages.target_of(link.storage, self.config, cloud_id))
                    )
                except ValueError:
                    replicas.append((link.storage_id, label, None))
            primary: storages.Target | None = None
            unreadable = ""
            if plan.storage is not None:
                try:
                    primary = storages.target_of(plan.storage, self.config, cloud_id)
                except ValueError:
                    unreadable = f"storage {plan.storage.name!r} ({plan.storage.public_id})"
            creds = None
            if account is not None:
                token = vault.jira_token(self.config.secret_key, account.token_sealed, cloud_id)
                creds = JiraCredentials(account.site_url, account.email, token)
            spec_raw, storage_url = dict(plan.spec), plan.storage_url
            if run.progress.get("only"):  # a retry: these projects only, the plan's other settings kept
                spec_raw["projects"] = {"mode": "selected", "keys": list(run.progress["only"])}
            rotation, time_zone = dict(plan.rotation or {}), org.time_zone or "UTC"
            owner = {"plan": plan.public_id, "run": run.public_id}
            plan_row_id = plan.id
        if creds is None:
            self._log(run_id, "no Jira credentials yet: set an API token in Settings", level="error")
            self._finish(run_id, "failed", "no Jira credentials: set the API token in Settings")
            return None
        if unreadable:
            message = (
                f"the credentials of {unreadable} cannot be decrypted with this secret key: set them again"
            )
            self._log(run_id, f"the run could not start: {message}", level="error")
            self._finish(run_id, "failed", message)
            return None
        return RunContext(
            run_id,
            BackupSpec.from_dict(spec_raw),
            creds,
            cloud_id,
            storage_url,
            primary,
            owner,
            rotation,
            time_zone,
            replicas,
            plan_row_id,
        )

    def open_repository(self, ctx: RunContext, *, announce: bool = True) -> Repository:
        """The run's repository (the plan's storage, else its default URL); raises what opening raises."""
        if ctx.primary is not None:
            if announce:
                self._log(ctx.run_id, f"writing to {ctx.primary.label}")
            return self._open_repository(storages.open_target(ctx.primary, self.config), ctx.cloud_id)
        return self._repository(ctx.storage_url, ctx.cloud_id)

    def open_or_fail(self, ctx: RunContext) -> Repository | None:
        """The run's repository, or None after failing the run with the reason (redacted)."""
        try:
            return self.open_repository(ctx)
        except storages.LocationRefused as e:
            message = f"{ctx.primary.label if ctx.primary else 'the storage'}: {e.field}: {e.message}"
        except (StorageError, RepositoryError, WrongPassword) as e:
            where = f"{ctx.primary.label}: " if ctx.primary else ""
            message = storages.redact(f"{where}{e}", ctx.hidden)
        self._log(ctx.run_id, f"the run could not start: {message}", level="error")
        self._finish(ctx.run_id, "failed", message)
        return None

    def client_of(self, ctx: RunContext) -> JiraClient:
        client = JiraClient(ctx.creds, pool_size=max(4, ctx.spec.max_workers * 2))
        client.budget = MeteredBudget(client.budget)  # the run's requests and 429s, for its progress
        return client

    def record_selected(
        self, run_id: int, keys: list[str], missing: list[ProjectResult], also: list[Any] | None = None
    ) -> None:
        """One row per selected project (one already failed per selected key Jira does not show), the
        run's total and a log line, with `also` (rows of the caller's) in the same transaction."""
        with self.db.session() as s:
            for key in keys:
                s.add(ProjectRun(run_id=run_id, project=key))
            for r in missing:
                s.add(ProjectRun(run_id=run_id, project=r.project, status=r.status, errors=r.errors))
            s.add_all(also or [])
            total = len(keys) + len(missing)
            only = (s.scalar(select(Run.progress).where(Run.id == run_id)) or {}).get("only")
            s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    progress={"projects_total": total, "projects_done": 0, **({"only": only} if only else {})}
                )
            )
            s.add(
                RunLog(
                    run_id=run_id,
                    level="info",
                    message=f"backing up {len(keys)} projects: {', '.join(keys)}",
                )
            )
            s.commit()

    def _execute(self, run_id: int) -> None:
        ctx = self.prepare(run_id)
        if ctx is None:
            return
        repo = self.open_or_fail(ctx)
        if repo is None:
            return
        client = self.client_of(ctx)
        cancel = threading.Event()
        try:
            result = run_backup(
                client,
                repo,
                ctx.spec,
                progress=self._progress(run_id, cancel, client.budget),
                cancel=cancel,
                on_selected=lambda keys, missing: self.record_selected(run_id, keys, missing),
                on_result=lambda r: self._record(run_id, r),
                snapshot_meta=ctx.owner,
            )
        except (StorageError, RepositoryError) as e:
            message = storages.redact(str(e), ctx.hidden)
            self._log(run_id, f"the repository failed: {message}", level="error")
            self._finish(run_id, "failed", message, client.stats.requests)
            return
        self.conclude(ctx, repo, client, result)

    def conclude(self, ctx: RunContext, repo: Repository, client: JiraClient, result: RunResult) -> None:
        """End a run whose projects are all done: rotation, replication, the final state (run once per run,
        by the thread that ran it or by the worker that finished its last project)."""
        run_id = ctx.run_id
        rotation, time_zone, owner, replicas = ctx.rotation, ctx.time_zone, ctx.owner, ctx.replicas
        plan_row_id, cloud_id = ctx.plan_row_id, ctx.cloud_id
        if result.errors:
            for line in result.errors:
                self._log(run_id, f"the run could not start: {line}", level="error")
        state = STATE_OF[result.status]
        if state in ("failed", "cancelled"):
            self._log(run_id, f"rotation not applied: the run {state}; nothing was forgotten")
        else:
            self._rotate(run_id, repo, client, rotation, time_zone, owner["plan"], result)
        errors = list(result.errors)
        if replicas and state in ("failed", "cancelled"):
            self._log(run_id, f"replicas not copied: the run {state}")
        elif replicas:
            failures = self._replicate(run_id, plan_row_id, repo, cloud_id, replicas, owner["plan"], result)
            if failures:
                errors += failures
                if state == "succeeded":
                    state = "warning"
            self._rotate_replicas(ctx, client, result)
        self._catalog(run_id, repo, cloud_id)
        self._log(run_id, f"run {state}: {result.requests} requests")
        self._finish(run_id, state, "; ".join(errors), result.requests)

    def _catalog(self, run_id: int, repo: Repository, cloud_id: str) -> None:
        """Index the run's new snapshots in the catalog (and drop forgotten ones); never fails the run."""
        try:
            with self.db.session() as s:
                org_id = s.scalar(select(Organisation.id).where(Organisation.cloud_id == cloud_id))
            done = catalog.sync(self.db, org_id, repo)
        except Exception as e:  # the backup is safe; the catalog is rebuildable from the repository
            log.exception("catalog sync failed", extra={"run_id": run_id})
            self._log(
                run_id,
                f"the snapshot catalog was not updated ({type(e).__name__}): "
                "run `keepstone backend catalog rebuild`",
                level="warning",
            )
            return
        self._log(
            run_id,
            f"catalog: {done.added} snapshots added, {done.removed} removed, "
            f"{done.texts_read} issue versions indexed",
        )

    def _replicate(
        self,
        run_id: int,
        plan_row_id: int,
        repo: Repository,
        cloud_id: str,
        replicas: list[tuple[int, str, storages.Target | None]],
        plan_id: str,
        result: RunResult,
    ) -> list[str]:
        """Copy the plan's snapshots each replica lacks (this run's and any an earlier failure left) and
        record each replica's status; return the failures (a failing replica never fails the backup)."""
        projects = {p.project for p in result.projects}
        new = {p.snapshot_id for p in result.projects if p.snapshot_id}

        def mine(info: SnapshotInfo) -> bool:
            owner = info.meta.get("plan")
            return owner == plan_id or (owner is None and info.project in projects)

        failures = []
        for storage_id, label, target in replicas:
            with self.db.session() as s:
                link = s.get(PlanReplica, (plan_row_id, storage_id))
                status = dict(link.replication or {}) if link is not None else {}
            now = datetime.now(UTC).isoformat(timespec="seconds")
            status["last_attempt"] = now
            hidden = target.secrets() if target else []
            dst: Repository | None = None
            try:
                if target is None:
                    raise ValueError(
                        "its credentials cannot be decrypted with this secret key: set them again"
                    )
                dst = self._open_repository(storages.open_target(target, self.config), cloud_id)
                done = copy_snapshots(repo, dst, include=mine)
            except (storages.LocationRefused, StorageError, RepositoryError, WrongPassword, ValueError) as e:
                reason = f"{e.field}: {e.message}" if isinstance(e, storages.LocationRefused) else str(e)
                reason = storages.redact(f"replica {label}: not copied: {reason}", hidden)
                self._log(run_id, reason, level="warning")
                failures.append(reason)
                lag = None
                if dst is not None:
                    try:
                        lag = len(missing_snapshots(repo, dst, include=mine))
                    except (StorageError, RepositoryError):
                        lag = None
                if lag is None:  # the replica cannot be read: at least what it lacked, and this run's
                    lag = int(status.get("lag") or 0) + len(new)
                status.update(state="failed", error=reason, lag=lag)
            else:
                fresh = sum(1 for c in done.copied if c["source"] in new)
                self._log(
                    run_id,
                    f"replica {label}: copied {done.snapshots_copied} snapshots ({fresh} of this run, "
                    f"{done.snapshots_skipped} already there), {done.blobs_copied} blobs written and "
                    f"{done.blobs_skipped} already there, {done.bytes_written} bytes; read back and verified",
                )
                status.update(
                    state="ok",
                    error="",
                    lag=0,
                    last_replicated=now,
                    bytes=stored_bytes(dst),
                    bytes_last_copy=done.bytes_written,
                    snapshots_last_copy=done.snapshots_copied,
                )
            with self.db.session() as s:
                link = s.get(PlanReplica, (plan_row_id, storage_id))
                if link is not None:  # (the plan may have dropped the replica meanwhile)
                    link.replication = status
                    s.commit()
        return failures

    def _rotate_replicas(self, ctx: RunContext, client: JiraClient, result: RunResult) -> None:
        """Apply the plan's rotation on each replica too, as on the primary (the plan's snapshots only, a
        gone project's newest kept). On an immutable replica forget skips the snapshots still under
        retention and says so; a later run removes them once the retention has ended."""
        try:
            policy = Policy.from_dict(ctx.rotation)
        except PolicyError:
            return  # the primary's rotation has said why
        if policy.scheme == "unlimited":
            return
        try:
            tz = ZoneInfo(ctx.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            tz = ZoneInfo("UTC")
        projects, plan_id = {p.project for p in result.projects}, ctx.owner["plan"]

        def mine(info: SnapshotInfo) -> bool:
            owner = info.meta.get("plan")
            return owner == plan_id or (owner is None and info.project in projects)

        try:
            gone: Any = _NotIn({p["key"] for p in client.projects()})
        except JiraError:
            gone = ()
        for _, label, target in ctx.replicas:
            if target is None:
                continue  # its copy has said the credentials cannot be read
            where = f"replica {label}: rotation"
            try:
                dst = self._open_repository(storages.open_target(target, self.config), ctx.cloud_id)
                outcome = forget(dst, policy, tz, include=mine, archived=gone)
            except RepositoryLocked:
                self._log(
                    ctx.run_id,
                    f"{where} postponed: the replica is locked; a later run applies it",
                    level="warning",
                )
                continue
            except (storages.LocationRefused, StorageError, RepositoryError, WrongPassword) as e:
                reason = f"{e.field}: {e.message}" if isinstance(e, storages.LocationRefused) else str(e)
                self._log(
                    ctx.run_id,
                    storages.redact(f"{where} not applied: {reason}", target.secrets()),
                    level="warning",
                )
                continue
            held = ""
            if outcome.retained:
                held = (
                    f"; {len(outcome.retained)} of them still under retention, skipped (a run after "
                    f"{min(r['until'] for r in outcome.retained)} removes them)"
                )
            self._log(
                ctx.run_id,
                f"{where} {policy.describe()}: kept {len(outcome.kept)}, forgot {len(outcome.forgotten)} "
                f"snapshots{held}; their data stays until a prune",
            )
            for project, line in outcome.by_project().items():
                self._log(ctx.run_id, f"{where} {line}", project=project)

    def _rotate(
        self,
        run_id: int,
        repo: Repository,
        client: JiraClient,
        rotation: dict[str, Any],
        time_zone: str,
        plan_id: str,
        result: RunResult,
    ) -> None:
        """Apply the plan's rotation to the plan's snapshots and log what was kept (and why) and forgotten.

        A plan rotates the snapshots it wrote (meta "plan"), and snapshots written before plans were
        recorded of the projects it backs up; never another plan's. The newest snapshot of a project
        gone from Jira is its archive and stays. While another run writes to the repository it holds a
        shared lock and forget cannot take the exclusive one: the rotation waits for a later run.
        """
        try:
            policy = Policy.from_dict(rotation)
        except PolicyError as e:
            self._log(run_id, f"rotation not applied: the plan's rotation is invalid ({e})", level="error")
            return
        if policy.scheme == "unlimited":
            self._log(run_id, "rotation unlimited: nothing is ever forgotten")
            return
        try:
            tz = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            tz = ZoneInfo("UTC")
        projects = {p.project for p in result.projects}

        def mine(info: SnapshotInfo) -> bool:
            owner = info.meta.get("plan")
            return owner == plan_id or (owner is None and info.project in projects)

        try:
            existing = {p["key"] for p in client.projects()}
            gone: Any = _NotIn(existing)
        except JiraError:
            gone = ()  # unknown: every project's newest snapshot stays anyway
        try:
            outcome = forget(repo, policy, tz, include=mine, archived=gone)
        except RepositoryLocked:
            self._log(
                run_id,
                "rotation postponed: another run is writing to this repository (nothing of a run in "
                "progress is ever forgotten); a later run applies it",
                level="warning",
            )
            return
        except (RepositoryError, StorageError) as e:
            self._log(
                run_id, f"rotation failed: {e}; the repository is unchanged or partly rotated", level="error"
            )
            return
        with self.db.session() as s:
            s.add(
                RunLog(
                    run_id=run_id,
                    level="info",
                    message=f"rotation {policy.describe()} (periods in {time_zone}): kept "
                    f"{len(outcome.kept)}, forgot {len(outcome.forgotten)} snapshots of "
                    f"{len({v.project for v in outcome.verdicts})} projects; their data stays until a prune",
                )
            )
            for project, line in outcome.by_project().items():
                s.add(RunLog(run_id=run_id, project=project, level="info", message=f"rotation {line}"))
            s.commit()

    def _repository(self, storage_url: str, cloud_id: str) -> Repository:
        return self._open_repository(open_storage(storage_url), cloud_id)

    def _open_repository(self, storage: Storage, cloud_id: str) -> Repository:
        """The organisation's repository on this storage, made on first use."""
        from backend import recovery  # the key layout: service key + the organisation's recovery wrap

        password = vault.repository_password(self.config.secret_key, cloud_id)
        try:
            repo = Repository.open(storage, password)
        except RepositoryError as e:
            if "no repository" not in str(e):
                raise
            repo = Repository.init(storage, password, label=recovery.SERVICE_LABEL)
        recovery.keep_up_to_date(self.db, repo, cloud_id)
        return repo

    def _cancel_requested(self, run_id: int) -> bool:
        with self.db.session() as s:
            return bool(s.scalar(select(Run.cancel_requested).where(Run.id == run_id)))

    def _progress(self, run_id: int, cancel: threading.Event, meter: Any = None, source: str = ""):
        """The engine's progress callback for one run. `meter` is the run's MeteredBudget here; a project
        task on a worker passes its own and its project as `source`, and the run's figures are then the sum
        of every source's last reading (a reading older than the rate window adds no rate)."""
        last = [0.0]
        lock = threading.Lock()
        seen: set[str] = set()  # projects whose first event is written (each project's shows at once)
        began = [[int(time.time()), 0, 0]]  # the traffic's first point: nothing sent yet

        def report(event: dict[str, Any]) -> None:
            if event.get("phase") != "fetching":
                return
            now = time.monotonic()
            with lock:  # held while writing too: SQLite has no row lock, so this run's writers take turns
                key = str(event.get("project"))
                if key in seen and now - last[0] < 0.5 and event.get("done") != event.get("total"):
                    return
                seen.add(key)
                last[0] = now
                write(event)

        def write(event: dict[str, Any]) -> None:
            with self.db.session() as s:
                # (read-modify-write across processes: the row locked first)
                s.execute(select(Run.id).where(Run.id == run_id).with_for_update())
                run = s.get(Run, run_id)
                key = str(event.get("project"))
                each = dict(run.progress.get("projects") or {})  # per project: done of total, since when
                mine = each.get(key) or {"started": time.time()}
                each[key] = {**mine, "done": event.get("done", 0), "total": event.get("total", 0),
                             "bytes": event.get("bytes", 0), "new_bytes": event.get("new_bytes", 0)}  # fmt: skip
                reading = meter.reading() if isinstance(meter, MeteredBudget) else {}
                meters = dict(run.progress.get("meters") or {})
                if reading and source:
                    meters[source] = {**reading, "at": time.time()}
                    reading = _combined(meters)
                run.progress = {
                    **run.progress,
                    **({"meters": meters} if meters else {}),
                    "project": event.get("project"),
                    "phase": "fetching",
                    "issues_done": event.get("done", 0),
                    "issues_total": event.get("total", 0),
                    "projects": each,
                    **reading,
                    "samples": _sampled(run.progress.get("samples") or began, reading),
                }
                s.commit()
                if run.cancel_requested:
                    cancel.set()

        return report

    def _record(self, run_id: int, result: ProjectResult) -> None:
        with self.db.session() as s:
            # The run's row first, locked (PostgreSQL): workers on other machines record at the same time,
            # and projects_done is counted from the rows, never incremented from a stale read.
            s.execute(select(Run.id).where(Run.id == run_id).with_for_update())
            run = s.get(Run, run_id)
            row = s.scalar(
                select(ProjectRun).where(ProjectRun.run_id == run_id, ProjectRun.project == result.project)
            )
            row.status, row.snapshot_id, row.counts = result.status, result.snapshot_id, result.counts
            row.warnings, row.errors, row.requests = result.warnings[:200], result.errors, result.requests
            s.flush()
            done = s.scalar(
                select(func.count())
                .select_from(ProjectRun)
                .where(ProjectRun.run_id == run_id, ProjectRun.status.not_in(("queued", "running")))
            )
            run.progress = {
                **run.progress,
                "projects_done": done,
                "phase": "project-done",
                "project": result.project,
            }
            for line in result.errors:
                s.add(RunLog(run_id=run_id, project=result.project, level="error", message=line))
            for line in result.warnings[:50]:
                s.add(RunLog(run_id=run_id, project=result.project, level="warning", message=line))
            s.add(
                RunLog(
                    run_id=run_id,
                    project=result.project,
                    level="info",
                    message=f"{result.project}: {result.status}, {result.counts.get('issues', 0)} issues, "
                    f"{result.requests} requests",
                )
            )
            s.commit()


def _combined(meters: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The run's traffic from several processes' meters (one a project task on a worker)."""
    now = time.time()
    fresh = [m for m in meters.values() if now - float(m.get("at", 0)) <= METER_WINDOW]
    return {
        "requests": sum(int(m.get("requests", 0)) for m in meters.values()),
        "throttled": sum(int(m.get("throttled", 0)) for m in meters.values()),
        "rate": round(sum(float(m.get("rate", 0)) for m in fresh), 1),
        "throttling": any(m.get("throttling") for m in fresh),
    }


def _sampled(samples: list[list[int]], reading: dict[str, Any]) -> list[list[int]]:
    """The run's requests and 429s over time ([unix time, requests, 429s]): one point every 2 s at most,
    halved in resolution past 300 points so that a long run's whole history fits in its progress."""
    if not reading:
        return samples
    now = int(time.time())
    if samples and now - samples[-1][0] < 2:
        return samples
    out = [*samples, [now, int(reading["requests"]), int(reading["throttled"])]]
    return out[::2] + ([out[-1]] if len(out) % 2 == 0 else []) if len(out) > 300 else out


class _NotIn:
    """The projects not in a set (those gone from Jira), as a container."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing

    def __contains__(self, key: object) -> bool:
        return key not in self.existing
