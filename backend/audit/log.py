"""Append events to the audit log: the one writer of `audit_events`. There is no update and no delete.

Each append takes the chain's end (numbered `seq`, unique) and writes the next event in one transaction;
on PostgreSQL an advisory lock orders writers of every process, elsewhere a process lock does, and the
unique `seq` makes a lost race a retry rather than a fork of the chain.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from backend.audit.chain import GENESIS, digest
from backend.db import Database
from backend.db.models import AuditEvent

log = logging.getLogger("keepstone.audit")
_LOCK = threading.Lock()
ADVISORY_KEY = 0x6B61756469  # "kaudi": the PostgreSQL advisory lock of the chain's end
ATTEMPTS = 20
LIMITS = {"actor": 255, "actor_name": 255, "address": 64, "action": 64, "target_id": 255, "target_name": 255}


def _plain(value: Any) -> Any:
    """JSON-safe (what the JSON column stores is what was hashed)."""
    return json.loads(json.dumps(value, default=str))


def append(db: Database, **fields: Any) -> AuditEvent:
    """Write one event (the fields of AuditEvent but seq, time and hashes) at the end of the chain."""
    event: dict[str, Any] = {
        "cloud_id": None,
        "actor_kind": "anonymous",
        "actor": "",
        "actor_name": "",
        "address": "",
        "target_id": "",
        "target_name": "",
        "changes": {},
        "details": {},
        **fields,
    }
    for key, limit in LIMITS.items():
        event[key] = str(event[key] or "")[:limit]
    event["changes"], event["details"] = _plain(event["changes"]), _plain(event["details"])
    postgres = db.engine.dialect.name == "postgresql"
    for attempt in range(ATTEMPTS):
        with _LOCK, db.session() as s:
            try:
                if postgres:
                    s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_KEY})
                last = s.execute(
                    select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
                ).first()
                seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
                row = {**event, "seq": seq, "time": datetime.now(UTC)}
                record = AuditEvent(**row, prev_hash=prev, hash=digest(prev, row))
                s.add(record)
                s.commit()
                return record
            except (IntegrityError, OperationalError):  # another writer took this seq, or SQLite was busy
                s.rollback()
        time.sleep(0.01 * (attempt + 1))
    raise RuntimeError("the audit log could not be appended to (the chain's end kept moving)")


def record(action: str, **fields: Any) -> AuditEvent | None:
    """Record an event for the current request (actor and address from it) unless given explicitly.

    Use it where the central hook (backend/audit/hook.py) cannot know what happened. The request then
    records nothing else. A failure to record is logged, never raised into the view.
    """
    from flask import g

    from backend.audit.hook import actor_of_request, address_of_request
    from backend.services import services

    try:
        who = actor_of_request()
        event = {**who, "address": address_of_request(), **fields}
        written = append(services().db, action=action, **event)
        g.audit_recorded = True
        return written
    except Exception:
        log.exception("audit: could not record %s", action)
        return None
