"""Audit events of the engine's command line (forget, prune, restore), when it runs beside a service DB.

Light to import: the command line loads the database code only when it really records something.
"""

from __future__ import annotations

import logging
import os
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
    from backend.audit.changes import redact_url
    from backend.audit.log import append
    from backend.db import Database, migrate

    try:
        migrate(url)
        db = Database(url)
        try:
            return append(
                db,
                action=action,
                cloud_id=_organisation_of_repo(db, repo),
                actor_kind="cli",
                actor="cli",
                actor_name=os.environ.get("USER", ""),
                address="local",
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
