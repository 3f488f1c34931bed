"""The repository format: content-addressed, compressed, encrypted items in packs, snapshots last.

It knows nothing about which storage it sits in (see backend.storage) nor about Jira. The format is
described in docs/storage-format.md.
"""

from backend.repository.crypto import IntegrityError, WrongPassword
from backend.repository.model import (
    Entry,
    RepositoryCorrupt,
    RepositoryError,
    RepositoryLocked,
    SnapshotInfo,
    canonical_json,
)
from backend.repository.repository import CheckResult, Repository
from backend.repository.snapshots import Snapshot, SnapshotWriter

__all__ = [
    "CheckResult",
    "Entry",
    "IntegrityError",
    "Repository",
    "RepositoryCorrupt",
    "RepositoryError",
    "RepositoryLocked",
    "Snapshot",
    "SnapshotInfo",
    "SnapshotWriter",
    "WrongPassword",
    "canonical_json",
]
