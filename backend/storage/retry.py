"""A wrapper that retries RetryableError with jittered backoff around any storage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

from backend.storage.base import RetryableError, Storage
from keepstone.backoff import full_jitter


class RetryingStorage(Storage):
    def __init__(
        self, inner: Storage, attempts: int = 5, base: float = 0.2, cap: float = 10.0, sleep=time.sleep
    ) -> None:
        self.inner = inner
        self.attempts = attempts
        self.base = base
        self.cap = cap
        self.sleep = sleep
        self.location = inner.location

    def _call(self, fn, *args, **kwargs):
        for attempt in range(1, self.attempts + 1):
            try:
                return fn(*args, **kwargs)
            except RetryableError:
                if attempt == self.attempts:
                    raise
                self.sleep(full_jitter(attempt, self.base, self.cap))
        raise AssertionError("unreachable")

    def save(self, kind: str, name: str, data: bytes, exclusive: bool = False) -> None:
        self._call(self.inner.save, kind, name, data, exclusive)

    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._call(self.inner.load, kind, name, offset, length)

    def stat(self, kind: str, name: str) -> int:
        return self._call(self.inner.stat, kind, name)

    def list(self, kind: str) -> Iterator[str]:
        yield from self._call(lambda: list(self.inner.list(kind)))

    def remove(self, kind: str, name: str) -> None:
        self._call(self.inner.remove, kind, name)

    def retained_until(self, kind: str, name: str) -> datetime | None:
        return self._call(self.inner.retained_until, kind, name)

    def close(self) -> None:
        self.inner.close()
