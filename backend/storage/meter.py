"""A storage seen through a meter: what prune and copy read and write, and a test hook to kill them.

`kill_env` names an environment variable for tests only: when set to N, the process kills itself
(SIGKILL) before its N+1-th write or removal, so a test can stop a real process at exact points of a
write order. Unset in normal use.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import datetime

from backend.storage.base import Storage


class MeteredStorage(Storage):
    """Counts bytes read and written (locks aside), writes and removals, and the packs saved."""

    def __init__(self, inner: Storage, kill_env: str) -> None:
        self.inner = inner
        self.location = inner.location
        self.bytes_read = 0
        self.bytes_written = 0
        self.writes = 0
        self.packs: list[str] = []
        hook = os.environ.get(kill_env)
        self.kill_after = int(hook) if hook else None

    def _write_point(self) -> None:
        if self.kill_after is not None and self.writes >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        self.writes += 1

    def save(self, kind: str, name: str, data: bytes, exclusive: bool = False) -> None:
        self._write_point()
        self.inner.save(kind, name, data, exclusive)
        if kind != "locks":
            self.bytes_written += len(data)
        if kind == "data":
            self.packs.append(name)

    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        data = self.inner.load(kind, name, offset, length)
        self.bytes_read += len(data)
        return data

    def stat(self, kind: str, name: str) -> int:
        return self.inner.stat(kind, name)

    def list(self, kind: str) -> Iterator[str]:
        return self.inner.list(kind)

    def remove(self, kind: str, name: str) -> None:
        self._write_point()
        self.inner.remove(kind, name)

    def retained_until(self, kind: str, name: str) -> datetime | None:
        return self.inner.retained_until(kind, name)
