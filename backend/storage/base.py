"""The storage interface: a flat store of immutable objects addressed by (kind, name).

StorageError            anything a storage failed to do
├── NotFound            the object does not exist (permanent)
├── AlreadyExists       an exclusive save met an existing object (permanent)
├── PermanentError      retrying cannot help: bad credentials, missing container, refused
│   └── RetentionLocked the object is under retention (immutable storage): no deletion or overwrite yet
└── RetryableError      a timeout, throttling or a 5xx; the retry wrapper tries again
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime

KINDS = ("config", "keys", "data", "index", "snapshots", "locks", "keep")


class StorageError(Exception):
    """The storage failed: {detail}.

    `reason` says why, where a backend can tell: "credentials" (refused), "missing" (no such container or
    bucket), "unreachable" (no answer); "" when it cannot.
    """

    def __init__(self, message: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class NotFound(StorageError):
    """The object does not exist."""


class AlreadyExists(StorageError):
    """An exclusive save found the object already there."""


class PermanentError(StorageError):
    """The storage refused in a way retrying cannot fix."""


class RetentionLocked(PermanentError):
    """{kind}/{name} is under retention until {until}: the storage refuses to delete or overwrite it.

    `until` is when the retention ends (None when the storage did not say); after it, the same removal
    succeeds, so forget and prune skip such objects and try them again on their next run.
    """

    def __init__(self, message: str, until: datetime | None = None) -> None:
        super().__init__(message, reason="retention")
        self.until = until


class RetryableError(StorageError):
    """A transient failure (timeout, throttling, 5xx)."""


def check_address(kind: str, name: str) -> None:
    """Refuse kinds outside the format and names that could escape a folder or prefix."""
    if kind not in KINDS:
        raise PermanentError(f"unknown object kind {kind!r}")
    if not name or "/" in name or "\\" in name or name.startswith(".") or len(name) > 200:
        raise PermanentError(f"invalid object name {name!r}")


class Storage(ABC):
    """A flat store of write-once objects; every backend implements exactly these five operations."""

    location: str = ""

    @abstractmethod
    def save(self, kind: str, name: str, data: bytes, exclusive: bool = False) -> None:
        """Store an object atomically; with `exclusive`, fail with AlreadyExists if it is there."""

    @abstractmethod
    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """Return an object's bytes (or `length` bytes from `offset`); NotFound if absent."""

    @abstractmethod
    def stat(self, kind: str, name: str) -> int:
        """Return an object's size in bytes; NotFound if absent."""

    @abstractmethod
    def list(self, kind: str) -> Iterator[str]:
        """Yield the names of every object of one kind."""

    @abstractmethod
    def remove(self, kind: str, name: str) -> None:
        """Delete an object; NotFound if absent."""

    def retained_until(self, kind: str, name: str) -> datetime | None:
        """When an object's retention ends, if it is under retention now (None: it may be deleted).

        Only an immutable storage (S3 Object Lock, Azure immutability) has retention and asks the
        storage (NotFound if the object is absent); the others keep this default, which costs nothing.
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold no connections
        """Release connections (most backends hold none)."""
