"""Audit events of the engine's command line (forget, prune, restore), when it runs beside a service DB.

Light to import: the command line loads the database code only when it really records something.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

log = logging.getLogger("keepstone.audit")


def record_cli(
    action: str, repo: str | None, details: dict[str, Any] | None = None, *, skip: bool = False
) -> Any:
    """Record a command-line change (forget, prune, restore) when the CLI runs beside a service database.

    Only with KEEPSTONE_DATABASE_URL set: the engine's CLI otherwise has no database, and records
    nothing (nor with `skip`: a dry run). The organisation is the one whose plan writes to `repo`, if any.
    """
    url = os.environ.get("KEEPSTONE_DATABASE_URL")
    if not url or skip or not repo:
        return None
    if "://" not in repo:
        repo = "file://" + os.path.abspath(repo)
    import socket

    from backend.audit.changes import redact_url
    from backend.audit.log import append
    from backend.db import Database

    try:  # the service migrates its database; the command line only appends to it
        db = Database(url)
        try:
            return append(
                db,
                action=action,
                cloud_id=_organisation_of_repo(db, repo),
                actor_kind="cli",
                actor="cli",
                actor_name=os.environ.get("USER", ""),
                address=f"cli@{socket.gethostname()}",
                target_id=redact_url(repo),
                target_name="repository",
                details=details or {},
            )
        finally:
            db.engine.dispose()
    except Exception:
        log.exception("audit: could not record %s from the command line", action)
        return None


def _organisation_of_repo(db: Any, repo: str) -> str | None:
    from sqlalchemy import select

    from backend.db.models import Organisation, Plan

    with db.session() as s:
        return s.scalar(
            select(Organisation.cloud_id)
            .join(Plan, Plan.organisation_id == Organisation.id)
            .where(Plan.storage_url == repo)
            .limit(1)
        )


def add_commands(sub_backend: Any) -> None:
    """Add `keepstone backend audit verify` under `keepstone backend`."""
    audit = sub_backend.add_parser("audit", help="the audit log")
    verbs = audit.add_subparsers(dest="audit_command", required=True)
    v = verbs.add_parser(
        "verify",
        help="check the audit log's hash chain (exit 1 if an event was changed, removed or inserted)",
        epilog="examples:\n  KEEPSTONE_DATABASE_URL=postgresql+psycopg://... keepstone backend audit verify\n"
        "  keepstone backend audit verify --head 3f1c...  (a hash an earlier verify printed)\n"
        "Keep the printed last hash elsewhere: a later --head HASH proves nothing was cut from the end.",
    )
    v.add_argument(
        "--head", default="", help="a hash printed by an earlier verify, which must still be in the chain"
    )
    v.set_defaults(func=verify)


def verify(args: Any) -> int:
    """Walk the whole chain in seq order (a batch at a time) and say where it breaks, if it does."""
    from sqlalchemy import select

    from backend.audit import chain
    from backend.config import Config
    from backend.db import Database
    from backend.db.models import AuditEvent

    db = Database(Config().database_url)
    seen_head = not args.head
    last: dict[str, Any] | None = None

    def rows():
        nonlocal seen_head, last
        after = 0
        while True:
            with db.session() as s:
                batch = list(
                    s.scalars(
                        select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(1000)
                    )
                )
            if not batch:
                return
            for e in batch:
                last = {c: getattr(e, c) for c in (*chain.HASHED, "prev_hash", "hash")}
                seen_head = seen_head or e.hash == args.head
                yield last
            after = batch[-1].seq

    try:
        verdict = chain.verify(rows())
    finally:
        db.engine.dispose()
    if not verdict.ok:
        print(f"audit log BROKEN at event {verdict.broken_seq}: {verdict.reason}", file=sys.stderr)
        return 1
    if not seen_head:
        print(
            f"audit log BROKEN: the head {args.head} is no longer in the chain (events were cut)",
            file=sys.stderr,
        )
        return 1
    if last is None:
        print("audit log empty: nothing to check")
        return 0
    print(f"audit log intact: {verdict.checked} events; last event {last['seq']}, hash {last['hash']}")
    return 0
