"""The organisation's recovery passphrase: a second wrap of each repository's master keys that the open
CLI alone opens (`keepstone snapshots --password-file F`) if the service is gone.

The service never keeps the passphrase. Setting it derives a recovery key (crypto.RecoveryKey: an X25519
key pair whose private half scrypt derives from the passphrase) and keeps only the public half and its
fingerprint (table recovery_keys). Wrapping to the public half needs no passphrase, so every repository
the service opens later (a new plan's, a new replica's) gets the wrap too (`bring_up_to_date`, called
where backend/runs.py opens a repository). The service's own wrap stays the password derived from the
secret key and the tenant (backend/vault.py); a key file from before key files had fields is given them
then (keys.upgrade_legacy: same wrap, no data rewritten).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend import storages, vault
from backend.config import Config
from backend.db import Database
from backend.db.models import Organisation, Plan, RecoveryKeyRecord, StorageRecord
from backend.repository import Repository, RepositoryError, RepositoryLocked, WrongPassword
from backend.repository.crypto import RecoveryKey
from backend.repository.keys import set_recovery, upgrade_legacy
from backend.storage import Storage, StorageError, open_storage

log = logging.getLogger(__name__)
SERVICE_LABEL = "service"
MIN_PASSPHRASE = 12
PARALLEL = 4  # repositories brought up to date at once by apply_everywhere


@dataclass(frozen=True)
class Where:
    """One repository of an organisation: what to call it in answers, and how to open its storage."""

    name: str
    kind: str  # storage | default
    target: storages.Target | None
    url: str | None

    def open(self, config: Config) -> Storage:
        if self.target is not None:
            return storages.open_target(self.target, config, quick=True)
        assert self.url is not None
        return open_storage(self.url)


def current(s: Session, org_id: int) -> tuple[RecoveryKey, str] | None:
    """The organisation's recovery key and label, or None when no passphrase is set."""
    row = s.get(RecoveryKeyRecord, org_id)
    return (RecoveryKey.from_dict(row.public), row.label) if row is not None else None


def repositories(s: Session, org: Organisation, config: Config) -> list[Where]:
    """Every place the organisation's repositories may be: each storage record (primaries and replicas),
    and the default repository of each plan that has no storage."""
    out: list[Where] = []
    records = s.scalars(select(StorageRecord).where(StorageRecord.organisation_id == org.id)).all()
    for record in sorted(records, key=lambda r: r.id):
        label = f"storage {record.name!r} ({record.public_id}, {record.kind})"
        try:
            out.append(Where(label, "storage", storages.target_of(record, config, org.cloud_id), None))
        except ValueError:
            out.append(Where(label, "storage", None, None))  # credentials unreadable: reported below
    urls = {
        p.storage_url
        for p in s.scalars(select(Plan).where(Plan.organisation_id == org.id))
        if p.storage_id is None
    }
    for url in sorted(u for u in urls if u):
        out.append(Where("the default repository", "default", None, url))
    return out


def bring_up_to_date(repo: Repository, recovery: tuple[RecoveryKey, str] | None) -> dict[str, list[str]]:
    """Give a repository the service's key layout: its legacy service key upgraded, and exactly the
    organisation's recovery wrap (or none). Key files only; a held exclusive lock postpones it."""
    with repo.lock(exclusive=False):
        upgrade_legacy(repo, SERVICE_LABEL)
        key, label = recovery if recovery else (None, "")
        return set_recovery(repo, key, label)


def _apply(where: Where, config: Config, password: str, wanted, cloud_id: str) -> dict[str, Any]:
    """Bring one repository up to date; its line of the answer."""
    line: dict[str, Any] = {
        "repository": where.name,
        "state": "updated",
        "added": 0,
        "removed": 0,
        "message": "",
    }
    secrets = where.target.secrets() if where.target else []
    try:
        if where.kind == "storage" and where.target is None:
            raise ValueError("its credentials cannot be decrypted with this secret key: set them again")
        storage = where.open(config)
        try:
            repo = Repository.open(storage, password)
        except RepositoryError as e:
            if "no repository" not in str(e):
                raise
            return {
                **line,
                "state": "empty",
                "message": "no repository yet: it gets the wrap when a run creates it",
            }
        changed = bring_up_to_date(repo, wanted)
        line.update(added=len(changed["added"]), removed=len(changed["removed"]))
        if not changed["added"] and not changed["removed"]:
            line["state"] = "unchanged"
    except RepositoryLocked as e:
        line.update(state="postponed", message=f"{e}; the next run that opens it updates it")
    except (StorageError, RepositoryError, WrongPassword, storages.LocationRefused, ValueError) as e:
        text = e.message if isinstance(e, storages.LocationRefused) else str(e)
        message = f"{text}; the next run that opens it updates it"
        line.update(state="failed", message=storages.redact(message, secrets))
        log.warning("recovery key not applied", extra={"cloud_id": cloud_id, "repository": where.name})
    return line


def apply_everywhere(db: Database, config: Config, cloud_id: str) -> list[dict[str, Any]]:
    """Bring every repository of the organisation up to date with its recovery key; one line each, in
    the order of `repositories`. A few at a time: a slow or unreachable storage does not hold up the rest."""
    with db.session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == cloud_id))
        assert org is not None
        wanted = current(s, org.id)
        places = repositories(s, org, config)
    password = vault.repository_password(config.secret_key, cloud_id)
    if not places:
        return []
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(places))) as pool:
        return list(pool.map(lambda where: _apply(where, config, password, wanted, cloud_id), places))


def keep_up_to_date(db: Database, repo: Repository, cloud_id: str) -> None:
    """What a run does with each repository it opens: `bring_up_to_date`, never failing the run for it
    (a storage that refuses the key file write fails the backup's own writes anyway)."""
    with db.session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == cloud_id))
        wanted = current(s, org.id) if org is not None else None
    try:
        changed = bring_up_to_date(repo, wanted)
    except (RepositoryLocked, RepositoryError, StorageError) as e:
        log.warning("recovery key not brought up to date", extra={"cloud_id": cloud_id, "reason": str(e)})
        return
    if changed["added"] or changed["removed"]:
        log.info("recovery key brought up to date", extra={"cloud_id": cloud_id, **changed})
