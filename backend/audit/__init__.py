"""The audit log: who changed what, when and from where; append-only, hash-chained.

- `log.py` appends events (the only writer of `audit_events`; it offers no update or delete),
  `chain.py` the hash chain and its verification, `changes.py` field-level diffs of tracked rows
  (collected from the ORM as a request flushes and kept once it commits; secrets become "(changed)"),
  `hook.py` the one central after-request hook that turns a write request into one event,
  `query.py` filters, paging and streamed CSV/JSON exports, `cli.py` the command line's events.
- Not here: pages (backend/ui/audit.py) and the API route (backend/api/audit.py).
"""

from __future__ import annotations

from typing import Any


def init_app(app: Any) -> None:
    """Record one audit event per write request of `app` (backend/audit/hook.py)."""
    from backend.audit.hook import init_app as hook_init

    hook_init(app)


def record(action: str, **fields: Any) -> Any:
    """Record an event for the current request explicitly (backend/audit/log.py)."""
    from backend.audit.log import record as log_record

    return log_record(action, **fields)
