"""A tiny object-store interface (save/load/stat/list/remove) and its backends; no format knowledge.

`open_storage(url)` picks the backend from a URL:
    file:///abs/path                      a local folder
    memory://                             in memory (tests)
    azure://container/prefix              Azure Blob; connection string from ?connection_string= or
                                          KEEPSTONE_AZURE_CONNECTION_STRING
    s3://bucket/prefix?endpoint_url=...   S3 or an S3-compatible server; keys from the usual AWS variables
Every storage but memory is wrapped in RetryingStorage.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlparse

from backend.storage.base import (
    AlreadyExists,
    NotFound,
    PermanentError,
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
        return RetryingStorage(AzureBlobStorage(conn, parsed.netloc, parsed.path))
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
            )
        )
    raise PermanentError(f"unknown storage URL {url!r}: use file://, azure://, s3:// or memory://")


__all__ = [
    "AlreadyExists",
    "MemoryStorage",
    "NotFound",
    "PermanentError",
    "RetryableError",
    "Storage",
    "StorageError",
    "open_storage",
]
