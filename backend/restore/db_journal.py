"""The restore journal in the service's database: the same calls as `Journal` (a SQLite file for the
command line), one row per step of one restore job, so the job resumes in any process or on any worker.

Each call is its own short transaction (the Restorer's threads call it side by side); writes are upserts,
and "done" is never turned back into "started".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from backend.db import Database
from backend.db.models import RestoreInfo, RestoreStep


class DatabaseJournal:
    def __init__(self, db: Database, job_id: int) -> None:
        self.db = db
        self.job_id = job_id

    def _insert(self, s, model):
        return (pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert)(model)

    def get(self, key: str) -> tuple[str, Any] | None:
        with self.db.session() as s:
            row = s.get(RestoreStep, (self.job_id, key))
            return (row.state, row.result) if row is not None else None

    def done(self, key: str) -> Any | None:
        """The result of a finished step, or None."""
        found = self.get(key)
        return found[1] if found and found[0] == "done" else None

    def start(self, key: str) -> None:
        with self.db.session() as s:
            s.execute(
                self._insert(s, RestoreStep)
                .values(job_id=self.job_id, key=key, state="started")
                .on_conflict_do_nothing()  # started again, or done already: both stay as they are
            )
            s.commit()

    def finish(self, key: str, result: Any = None) -> None:
        with self.db.session() as s:
            stmt = self._insert(s, RestoreStep).values(
                job_id=self.job_id, key=key, state="done", result=result
            )
            done = {"state": "done", "result": result}
            s.execute(stmt.on_conflict_do_update(index_elements=["job_id", "key"], set_=done))
            s.commit()

    def set_info(self, key: str, value: Any) -> None:
        with self.db.session() as s:
            stmt = self._insert(s, RestoreInfo).values(job_id=self.job_id, key=key, value=value)
            s.execute(stmt.on_conflict_do_update(index_elements=["job_id", "key"], set_={"value": value}))
            s.commit()

    def info(self, key: str) -> Any:
        with self.db.session() as s:
            row = s.get(RestoreInfo, (self.job_id, key))
            return row.value if row is not None else None

    def counts(self) -> dict[str, int]:
        with self.db.session() as s:
            rows = s.execute(
                select(RestoreStep.state, func.count())
                .where(RestoreStep.job_id == self.job_id)
                .group_by(RestoreStep.state)
            ).all()
            return {state: n for state, n in rows}

    def close(self) -> None:
        """Nothing to close: each call had its own session."""
