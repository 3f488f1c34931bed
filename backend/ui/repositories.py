"""Read-only looks into repositories for the pages: what a storage holds, what a plan has written.

Nothing here creates a repository or takes a lock: a storage without a repository is "empty", an
unreachable one says why (messages pass through `storages.redact`). Storages are opened without retries
(`quick`), so a page answers at once when one is down.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from backend import storages, vault
from backend.repository import Repository
from backend.repository.copy import stored_bytes
from backend.repository.crypto import WrongPassword
from backend.repository.model import RepositoryError, SnapshotInfo
from backend.repository.retention import ForgetResult, Policy, forget
from backend.storage import NotFound, Storage, StorageError, open_storage

LOOK_TIMEOUT = 10.0  # seconds for all the storages of one page together


@dataclass
class Contents:
    """What one storage holds: snapshots and bytes, or why that is not known."""

    snapshots: int | None = None
    bytes: int | None = None
    problem: str = ""
    infos: list[SnapshotInfo] = field(default_factory=list, repr=False)

    @property
    def empty(self) -> bool:
        return self.snapshots == 0 and not self.problem


def open_repository(storage: Storage, secret_key: str, cloud_id: str) -> Repository | None:
    """The organisation's repository on this storage, or None when there is none yet (never made here)."""
    try:
        storage.stat("config", "config")
    except NotFound:
        return None
    return Repository.open(storage, vault.repository_password(secret_key, cloud_id))


def contents(storage: Storage, secret_key: str, cloud_id: str, hidden: list[str] | None = None) -> Contents:
    """Count a storage's snapshots and the bytes its index lists; closes the storage."""
    try:
        repo = open_repository(storage, secret_key, cloud_id)
        if repo is None:
            return Contents(0, 0)
        infos = list(repo.snapshots())
        return Contents(len(infos), stored_bytes(repo), infos=infos)
    except WrongPassword:
        return Contents(problem="a repository of another organisation or service key")
    except (StorageError, RepositoryError, OSError, ValueError) as e:
        return Contents(problem=storages.redact(str(e), hidden or [])[:300] or type(e).__name__)
    finally:
        storage.close()


def record_contents(record: Any, config: Any, cloud_id: str) -> Contents:
    """What a storage record's storage holds (opened with its own credentials, no retries)."""
    try:
        target = storages.target_of(record, config, cloud_id)
    except ValueError:
        return Contents(problem="its credentials cannot be decrypted with this secret key: set them again")
    try:
        storage = storages.open_target(target, config, quick=True)
    except storages.LocationRefused as e:
        return Contents(problem=f"{e.field}: {e.message}")
    except StorageError as e:
        return Contents(problem=storages.redact(str(e), target.secrets())[:300])
    return contents(storage, config.secret_key, cloud_id, target.secrets())


def many(records: list[Any], config: Any, cloud_id: str) -> dict[int, Contents]:
    """`record_contents` of several records at once (each storage in its own thread, one time limit)."""
    if not records:
        return {}
    out: dict[int, Contents] = {}
    pool = ThreadPoolExecutor(max_workers=min(4, len(records)))
    futures = {r.id: pool.submit(record_contents, r, config, cloud_id) for r in records}
    try:
        for rid, future in futures.items():
            try:
                out[rid] = future.result(timeout=LOOK_TIMEOUT)
            except FutureTimeout:
                out[rid] = Contents(problem=f"no answer within {LOOK_TIMEOUT:.0f} s")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return out


def _plan_storage(plan: Any, config: Any, cloud_id: str) -> tuple[Storage | None, list[str], str]:
    """A plan's primary storage opened without retries: (storage, secrets to hide, '') or (None, [], why)."""
    if plan.storage is None:
        try:
            return open_storage(plan.storage_url), [], ""
        except (StorageError, ValueError, OSError) as e:
            return None, [], str(e)[:300]
    try:
        target = storages.target_of(plan.storage, config, cloud_id)
    except ValueError:
        return None, [], "the storage's credentials cannot be decrypted with this secret key: set them again"
    try:
        return storages.open_target(target, config, quick=True), target.secrets(), ""
    except storages.LocationRefused as e:
        return None, [], f"{e.field}: {e.message}"
    except StorageError as e:
        return None, [], storages.redact(str(e), target.secrets())[:300]


def rotation_preview(
    plan: Any, policy: Policy, tz: tzinfo, projects: set[str], config: Any, cloud_id: str
) -> tuple[ForgetResult | None, str]:
    """What `policy` would keep of the plan's snapshots now: retention's `forget` as a dry run (no lock,
    nothing removed) over the snapshots a run of this plan rotates (its own, and unowned ones of
    `projects`). (result, '') or (None, why there is nothing to show)."""
    storage, hidden, why = _plan_storage(plan, config, cloud_id)
    if storage is None:
        return None, f"the plan's storage cannot be opened: {why}"
    try:
        repo = open_repository(storage, config.secret_key, cloud_id)
        if repo is None:
            return None, "the plan's storage holds no repository yet: nothing to rotate"

        def mine(info: SnapshotInfo) -> bool:
            owner = info.meta.get("plan")
            return owner == plan.public_id or (owner is None and info.project in projects)

        result = forget(repo, policy, tz, include=mine, dry_run=True)
        if not result.verdicts:
            return None, "the plan has no snapshots yet: nothing to rotate"
        return result, ""
    except WrongPassword:
        return None, "the storage holds a repository of another organisation or service key"
    except (StorageError, RepositoryError, OSError, ValueError) as e:
        return None, storages.redact(str(e), hidden)[:300] or type(e).__name__
    finally:
        storage.close()
