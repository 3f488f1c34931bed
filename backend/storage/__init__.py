"""A tiny object-store interface (save/load/stat/list/remove) and its backends; no format knowledge.

`open_storage(url)` picks the backend from a URL:
    file:///abs/path                      a local folder
    memory://                             in memory (tests)
    azure://container/prefix              Azure Blob; connection string from ?connection_string= or
                                          KEEPSTONE_AZURE_CONNECTION_STRING
    s3://bucket/prefix?endpoint_url=...   S3 or an S3-compatible server; keys from the usual AWS variables
Every storage but memory is wrapped in RetryingStorage. Azure and S3 take immutability in the query:
`immutability=governance|compliance&retain=30d` (d, h or s), and `bypass_governance=1` when the admin
explicitly wants governance-retained objects removed early (never possible for compliance).
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlparse

from backend.storage.base import (
    AlreadyExists,
    NotFound,
    PermanentError,
    RetentionLocked,
    RetryableError,
    Storage,
    StorageError,
)
from backend.storage.memory import MemoryStorage
from backend.storage.retry import RetryingStorage


def open_storage(url: str) -> Storage:
    """Open the storage a URL names; raise PermanentError with a clear message for a bad URL."""
    parsed = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    if parsed.scheme == "memory":
        return MemoryStorage()
    if parsed.scheme == "file" or (parsed.scheme == "" and url.startswith("/")):
        from backend.storage.local import LocalStorage

        path = unquote(parsed.path) if parsed.scheme == "file" else url
        if parsed.netloc or not path.startswith("/"):
            raise PermanentError(f"a file storage needs an absolute path, not {url!r}")
        return RetryingStorage(LocalStorage(path))
    if parsed.scheme == "azure":
        from backend.storage.azure import AzureBlobStorage

        conn = query.get("connection_string") or os.environ.get("KEEPSTONE_AZURE_CONNECTION_STRING")
        if not conn:
            raise PermanentError(
                "an azure:// storage needs a connection string (?connection_string= or "
                "KEEPSTONE_AZURE_CONNECTION_STRING)"
            )
        if not parsed.netloc:
            raise PermanentError(f"an azure:// storage needs a container name: {url!r}")
        return RetryingStorage(
            AzureBlobStorage(conn, parsed.netloc, parsed.path, retention=_retention(query))
        )
    if parsed.scheme == "s3":
        from backend.storage.s3 import S3Storage

        if not parsed.netloc:
            raise PermanentError(f"an s3:// storage needs a bucket name: {url!r}")
        return RetryingStorage(
            S3Storage(
                parsed.netloc,
                parsed.path,
                endpoint_url=query.get("endpoint_url"),
                region=query.get("region", "us-east-1"),
                retention=_retention(query),
            )
        )
    raise PermanentError(f"unknown storage URL {url!r}: use file://, azure://, s3:// or memory://")


def _retention(query: dict[str, str]):
    """The URL's immutability (None without one); PermanentError saying what is wrong."""
    from datetime import timedelta

    from backend.storage.immutability import Retention

    mode = query.get("immutability", "none")
    if mode == "none":
        if "retain" in query or "bypass_governance" in query:
            raise PermanentError("retain= and bypass_governance= need immutability=governance|compliance")
        return None
    text = query.get("retain", "")
    units = {"d": 86400, "h": 3600, "s": 1}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise PermanentError(
            f"immutability={mode} needs retain=N followed by d, h or s (e.g. 30d), not {text!r}"
        )
    try:
        return Retention(
            mode, timedelta(seconds=int(text[:-1]) * units[text[-1]]), query.get("bypass_governance") == "1"
        )
    except ValueError as e:
        raise PermanentError(str(e)) from None


__all__ = [
    "AlreadyExists",
    "MemoryStorage",
    "NotFound",
    "PermanentError",
    "RetentionLocked",
    "RetryableError",
    "Storage",
    "StorageError",
    "open_storage",
]
