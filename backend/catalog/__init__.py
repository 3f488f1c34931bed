"""The snapshot catalog: what each snapshot holds (project, time, sizes, and per issue key, summary and
version) in the database, written after each run and rebuildable from the repositories alone, so that
browsing and full-text search never read packs. `store` keeps it in line; `search` answers from it."""

from backend.catalog.search import QueryError, issue_at, issue_history, search
from backend.catalog.store import SyncResult, sync

__all__ = ["QueryError", "SyncResult", "issue_at", "issue_history", "search", "sync"]
