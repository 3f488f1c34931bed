"""Restores started from the management UI, each a background task with its progress in the database.

A restore is planned from a catalogued snapshot (backend/catalog) the same way `keepstone restore` plans
one (backend/restore/plan.py), then run by the same `Restorer`, with its journal in the database
(backend/restore/db_journal.py): the second attempt of an interrupted restore skips what the first one did
(no issue is created twice), in whichever process or worker it runs. Progress goes to the job row every
half second; cancelling sets a flag the run checks between steps. The result keeps the counts, errors, the
old -> new key map and the fidelity report.

Where it runs: a small thread pool of the service (the embedded default; `resume_unfinished` at start
picks up what a stopped service left), or, with KEEPSTONE_EXECUTOR=celery, the task
`keepstone.restore.execute` on a worker (late acks: a worker that dies mid-restore has its task
delivered again to another one, which resumes from the journal).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from backend import vault
from backend.catalog.locate import repository_of
from backend.config import Config
from backend.db import Database
from backend.db.models import CatalogSnapshot, JiraAccount, Organisation, RestoreJob
from backend.jira import JiraClient, JiraCredentials, JiraError
from backend.repository import RepositoryError
from backend.restore.plan import RestoreError, RestoreRequest, build_plan

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")
STATE_OF = {"ok": "succeeded", "partial": "partial", "failed": "failed", "stopped": "cancelled"}


def request_from(data: dict[str, Any]) -> RestoreRequest:
    return RestoreRequest(
        data["snapshot_id"],
        data.get("issues"),
        bool(data.get("whole_project")),
        dict(data.get("filter") or {}),
        data.get("target", "original"),
        data.get("target_key"),
        data.get("target_name"),
        set(data.get("parts") or []),
        bool(data.get("overwrite")),
    )


def request_json(r: RestoreRequest) -> dict[str, Any]:
    return {
        "snapshot_id": r.snapshot_id,
        "issues": r.issues,
        "whole_project": r.whole_project,
        "filter": r.filter,
        "target": r.target,
        "target_key": r.target_key,
        "target_name": r.target_name,
        "parts": sorted(r.parts),
        "overwrite": r.overwrite,
    }


class RestoreService:
    def __init__(self, config: Config, db: Database, workers: int = 1, send: Any = None) -> None:
        self.config = config
        self.db = db
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restore")
        self.send = send  # (task name, *args) -> None: the workers' queue, with KEEPSTONE_EXECUTOR=celery

    def _submit(self, job_id: int) -> None:
        if self.send is not None:
            self.send("keepstone.restore.execute", job_id)
        else:
            self.pool.submit(self.execute, job_id)

    def dry_run(self, org_id: int, snap: CatalogSnapshot, request: RestoreRequest) -> list[str]:
        """The plan in words (what would be restored, in which steps, what Jira cannot set); changes nothing."""
        request.validate()
        with self.db.session() as s:
            repo = repository_of(s, self.config, s.get(Organisation, org_id), snap)
        if repo is None:
            raise RestoreError("the storage that holds this snapshot cannot be opened now")
        return build_plan(repo, request).describe()

    def start(self, org_id: int, snap: CatalogSnapshot, request: RestoreRequest, created_by: str) -> str:
        request.validate()
        with self.db.session() as s:
            job = RestoreJob(
                organisation_id=org_id,
                snapshot_id=snap.snapshot_id,
                project=snap.project,
                request=request_json(request),
                created_by=created_by,
            )
            s.add(job)
            s.commit()
            job_id, public_id = job.id, job.public_id
        self._submit(job_id)
        return public_id

    def cancel(self, job_id: int) -> None:
        with self.db.session() as s:
            job = s.get(RestoreJob, job_id)
            if job is not None and job.state in ACTIVE:
                job.cancel_requested = True
                s.commit()

    def resume_unfinished(self) -> list[str]:
        """Submit again every restore a stopped service left queued or running (its journal resumes it).
        With workers there is nothing to do: the broker delivers an unfinished task again by itself."""
        if self.send is not None:
            return []
        with self.db.session() as s:
            jobs = list(s.scalars(select(RestoreJob).where(RestoreJob.state.in_(ACTIVE))))
            ids = [(j.id, j.public_id) for j in jobs]
        for job_id, public_id in ids:
            log.info("resuming restore", extra={"restore": public_id})
            self._submit(job_id)
        return [p for _, p in ids]

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # --- running one -------------------------------------------------------------------------------

    def _finish(self, job_id: int, state: str, error: str = "", result: dict[str, Any] | None = None) -> None:
        with self.db.session() as s:
            job = s.get(RestoreJob, job_id)
            job.state, job.error, job.finished = state, error, datetime.now(UTC)
            if result is not None:
                job.result = result
            s.commit()

    def execute(self, job_id: int) -> None:
        try:
            self._execute(job_id)
        except Exception as e:  # never leave a job running forever: say what broke
            log.exception("restore failed", extra={"restore_job": job_id})
            self._finish(job_id, "failed", f"internal error: {type(e).__name__}")

    def _execute(self, job_id: int) -> None:
        from backend.restore.db_journal import DatabaseJournal
        from backend.restore.execute import Restorer
        from backend.restore.fidelity import fidelity_report

        with self.db.session() as s:
            job = s.get(RestoreJob, job_id)
            if job is None or job.state not in ACTIVE:
                return
            org = s.get(Organisation, job.organisation_id)
            snap = s.scalar(
                select(CatalogSnapshot).where(
                    CatalogSnapshot.organisation_id == org.id, CatalogSnapshot.snapshot_id == job.snapshot_id
                )
            )
            account = s.scalar(select(JiraAccount).where(JiraAccount.organisation_id == org.id))
            job.state, job.started = "running", job.started or datetime.now(UTC)
            s.commit()
            request = request_from(job.request)
            cloud_id = org.cloud_id
            repo = repository_of(s, self.config, org, snap) if snap is not None else None
            creds = (
                JiraCredentials(
                    account.site_url,
                    account.email,
                    vault.jira_token(self.config.secret_key, account.token_sealed, cloud_id),
                )
                if account is not None
                else None
            )
        if creds is None:
            return self._finish(job_id, "failed", "no Jira credentials: set the API token in Settings")
        if repo is None:
            return self._finish(job_id, "failed", "the storage that holds this snapshot cannot be opened now")
        try:
            plan = build_plan(repo, request)
        except (RestoreError, RepositoryError) as e:
            return self._finish(job_id, "failed", str(e))
        client = JiraClient(creds)
        stop = threading.Event()
        journal = DatabaseJournal(self.db, job_id)
        last = [0.0]

        def progress(event: dict[str, Any]) -> None:
            now = time.monotonic()
            if now - last[0] < 0.5 and event.get("phase") != "done":
                return
            last[0] = now
            with self.db.session() as s:
                job = s.get(RestoreJob, job_id)
                job.progress = {**job.progress, **_plain(event), "requests": client.stats.requests}
                if job.cancel_requested:
                    stop.set()
                s.commit()

        try:
            result = Restorer(client, repo, plan, journal, workers=4, progress=progress, stop=stop).run()
            out = result.to_dict()
            if result.status != "stopped":
                out["fidelity"] = fidelity_report(client, repo, plan, result)
        except (RestoreError, JiraError) as e:
            return self._finish(job_id, "failed", str(e))
        finally:
            journal.close()
        state = STATE_OF.get(result.status, "failed")
        error = "; ".join(result.errors[:3]) if state in ("partial", "failed") else ""
        self._finish(job_id, state, error, _plain(out))


def _plain(value: Any) -> Any:
    """JSON-able: sets become sorted lists, everything else unknown its text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
