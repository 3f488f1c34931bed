"""The Celery tasks of a run (names `keepstone.run.*`); the work is in backend/workers/steps.py.

Each worker process builds its own services on first use (configuration from the environment, the
database pool, the run service): nothing is shared across processes but the database and the broker.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy.exc import OperationalError

from backend.workers import steps
from backend.workers.celery_app import make_celery, queue_name

log = logging.getLogger(__name__)
app = make_celery()
_SERVICES: dict[int, Any] = {}
DB_AWAY_RETRY_SECONDS = 10


def service():
    """This process's RunService (made after a fork, never inherited)."""
    pid = os.getpid()
    if pid not in _SERVICES:
        from backend.config import Config
        from backend.db import Database
        from backend.runs import RunService
        from backend.workers.executor import CeleryRunExecutor

        config = Config()
        _SERVICES.clear()
        _SERVICES[pid] = RunService(config, Database(config.database_url), CeleryRunExecutor(app=app))
    return _SERVICES[pid]


def send(name: str, *args: Any) -> None:
    app.send_task(name, args=list(args), queue=queue_name())


def _step(task, fn, *args: Any, run_ends_on_crash: bool = True) -> None:
    try:
        fn(service(), send, *args)
    except steps.Retry as e:
        raise task.retry(countdown=max(1.0, e.wait), max_retries=None) from None
    except OperationalError:  # the database is away: the same task later, nothing recorded half
        log.warning("database unavailable: task retried", extra={"task": task.name, "args": list(args)})
        raise task.retry(countdown=DB_AWAY_RETRY_SECONDS, max_retries=None) from None
    except Exception as e:  # a bug: the run ends failed, as with the thread executor, never stuck
        if not run_ends_on_crash:
            raise
        run_id = args[0]
        log.exception("run step crashed", extra={"task": task.name, "run_id": run_id})
        svc = service()
        svc._log(run_id, f"the run stopped on an unexpected error: {e.__class__.__name__}", level="error")
        svc._finish(run_id, "failed", f"internal error: {e.__class__.__name__}")


@app.task(name="keepstone.run.start", bind=True)
def start_run(self, run_id: int) -> None:
    """Select the run's projects and send a project task each."""
    _step(self, steps.start, run_id)


@app.task(name="keepstone.run.project", bind=True)
def backup_project(self, run_id: int, project: str) -> None:
    """Back one project of a run up (once, however often delivered)."""
    _step(self, steps.project, run_id, project, run_ends_on_crash=False)  # it fails the project alone


@app.task(name="keepstone.run.finish", bind=True)
def finish_run(self, run_id: int) -> None:
    """Rotation, replication and the run's final state, after its last project."""
    _step(self, steps.finish, run_id)


_RESTORES: dict[int, Any] = {}


def restore_service():
    """This process's RestoreService (made after a fork, never inherited)."""
    pid = os.getpid()
    if pid not in _RESTORES:
        from backend.restores import RestoreService

        run_service = service()
        _RESTORES.clear()
        _RESTORES[pid] = RestoreService(run_service.config, run_service.db, send=send)
    return _RESTORES[pid]


@app.task(name="keepstone.restore.execute", bind=True)
def execute_restore(self, job_id: int) -> None:
    """One restore from the UI, resumed from its journal in the database however often delivered."""
    try:
        restore_service().execute(job_id)
    except OperationalError:  # the database is away: the same task later
        raise self.retry(countdown=DB_AWAY_RETRY_SECONDS, max_retries=None) from None
