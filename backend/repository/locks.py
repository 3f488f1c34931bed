"""Repository locks as small records in the storage (time, host, pid, exclusive), with stale-lock rules.

Backups take shared locks (many may write at once); prune and break-lock need an exclusive one. A lock is
stale when it was not refreshed for STALE_AFTER seconds, or when it belongs to a dead process on this host.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass

from backend.repository.model import RepositoryLocked
from backend.storage import NotFound, Storage

STALE_AFTER = 30 * 60
REFRESH_EVERY = 5 * 60


@dataclass
class LockRecord:
    name: str
    time: float
    host: str
    pid: int
    exclusive: bool

    def stale(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if now - self.time > STALE_AFTER:
            return True
        if self.host == socket.gethostname():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False

    def describe(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        return f"{kind} lock by pid {self.pid} on {self.host} since {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(self.time))} UTC"


def read_locks(storage: Storage) -> list[LockRecord]:
    out = []
    for name in list(storage.list("locks")):
        try:
            doc = json.loads(storage.load("locks", name))
            out.append(
                LockRecord(name, float(doc["time"]), doc["host"], int(doc["pid"]), bool(doc["exclusive"]))
            )
        except (NotFound, ValueError, KeyError):
            continue  # removed meanwhile, or not a lock we understand
    return out


class Lock:
    """A held lock; refreshed in the background until released."""

    def __init__(self, storage: Storage, exclusive: bool) -> None:
        self.storage = storage
        self.exclusive = exclusive
        self.name = f"{int(time.time())}-{secrets.token_hex(8)}"
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _write(self) -> None:
        record = {
            "time": time.time(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "exclusive": self.exclusive,
        }
        self.storage.save("locks", self.name, json.dumps(record).encode())

    def acquire(self) -> Lock:
        self._write()
        conflicts = [
            r
            for r in read_locks(self.storage)
            if r.name != self.name and not r.stale() and (self.exclusive or r.exclusive)
        ]
        if conflicts:
            self.storage.remove("locks", self.name)
            raise RepositoryLocked(
                "the repository is locked: "
                + "; ".join(r.describe() for r in conflicts)
                + " (if that process is gone, `keepstone unlock` removes stale locks)"
            )
        self.thread = threading.Thread(target=self._refresh, name="repo-lock-refresh", daemon=True)
        self.thread.start()
        return self

    def _refresh(self) -> None:
        while not self.stop.wait(REFRESH_EVERY):
            try:
                self._write()
            except Exception:
                continue

    def release(self) -> None:
        self.stop.set()
        try:
            self.storage.remove("locks", self.name)
        except NotFound:
            pass

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def remove_stale_locks(storage: Storage, everything: bool = False) -> list[str]:
    """Remove stale locks (or every lock with `everything`); return what was removed."""
    removed = []
    for record in read_locks(storage):
        if everything or record.stale():
            try:
                storage.remove("locks", record.name)
                removed.append(record.describe())
            except NotFound:
                pass
    return removed
