"""Which repository holds a catalogued snapshot: its plan's primary storage first, then any other primary
of the organisation, matched by the repository's own id. Opened read-only (never created here)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from backend import storages
from backend.config import Config
from backend.db.models import CatalogSnapshot, Organisation, Plan
from backend.repository import Repository, RepositoryError
from backend.storage import StorageError, open_storage


def repository_of(s: Session, config: Config, org: Organisation, snap: CatalogSnapshot) -> Repository | None:
    from backend.ui.repositories import open_repository  # the pages' read-only opener (no init, no lock)

    plans = [s.get(Plan, snap.plan_id)] if snap.plan_id else []
    plans += [p for p in org.plans if p.id != snap.plan_id]
    seen = set()
    for plan in plans:
        if plan is None:
            continue
        where = plan.storage.public_id if plan.storage is not None else plan.storage_url
        if where in seen:
            continue
        seen.add(where)
        try:
            if plan.storage is not None:
                target = storages.target_of(plan.storage, config, org.cloud_id)
                storage = storages.open_target(target, config)
            else:
                storage = open_storage(plan.storage_url)
            repo = open_repository(storage, config.secret_key, org.cloud_id)
        except (StorageError, RepositoryError, ValueError):
            continue
        if repo is not None and repo.config.get("id") == snap.repository:
            return repo
    return None
