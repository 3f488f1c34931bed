"""The restore journal: which steps are done and what they created, so a killed restore resumes.

A SQLite file per restore. The journal is a record and a shortcut; the target site stays the source of
truth: a step that was started but not recorded as done is looked up in Jira (by the restored-from label
or the origin note) before anything is created again, so a lost response never makes a duplicate.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS steps (key TEXT PRIMARY KEY, state TEXT NOT NULL, "
            "result TEXT, updated REAL DEFAULT (julianday('now')))"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT)")
        self.lock = threading.Lock()

    def get(self, key: str) -> tuple[str, Any] | None:
        with self.lock:
            row = self.db.execute("SELECT state, result FROM steps WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return row[0], json.loads(row[1]) if row[1] else None

    def done(self, key: str) -> Any | None:
        """The result of a finished step, or None."""
        found = self.get(key)
        return found[1] if found and found[0] == "done" else None

    def start(self, key: str) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO steps (key, state) VALUES (?, 'started') ON CONFLICT(key) DO UPDATE SET "
                "state = CASE WHEN state = 'done' THEN 'done' ELSE 'started' END",
                (key,),
            )

    def finish(self, key: str, result: Any = None) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO steps (key, state, result) VALUES (?, 'done', ?) ON CONFLICT(key) DO UPDATE "
                "SET state = 'done', result = excluded.result",
                (key, json.dumps(result)),
            )

    def set_info(self, key: str, value: Any) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO info (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    def info(self, key: str) -> Any:
        with self.lock:
            row = self.db.execute("SELECT value FROM info WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def counts(self) -> dict[str, int]:
        with self.lock:
            rows = self.db.execute("SELECT state, count(*) FROM steps GROUP BY state").fetchall()
        return dict(rows)

    def close(self) -> None:
        self.db.close()
