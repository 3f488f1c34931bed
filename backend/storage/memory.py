"""An in-memory storage for fast tests (and nothing else: it forgets everything at exit)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from backend.storage.base import AlreadyExists, NotFound, Storage, check_address


class MemoryStorage(Storage):
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.lock = threading.Lock()
        self.location = "memory://"

    def save(self, kind: str, name: str, data: bytes, exclusive: bool = False) -> None:
        check_address(kind, name)
        with self.lock:
            if exclusive and (kind, name) in self.objects:
                raise AlreadyExists(f"{kind}/{name} already exists")
            self.objects[(kind, name)] = bytes(data)

    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        check_address(kind, name)
        try:
            data = self.objects[(kind, name)]
        except KeyError:
            raise NotFound(f"{kind}/{name} not found") from None
        return data[offset : None if length is None else offset + length]

    def stat(self, kind: str, name: str) -> int:
        return len(self.load(kind, name))

    def list(self, kind: str) -> Iterator[str]:
        with self.lock:
            names = [n for k, n in self.objects if k == kind]
        yield from sorted(names)

    def remove(self, kind: str, name: str) -> None:
        check_address(kind, name)
        with self.lock:
            if self.objects.pop((kind, name), None) is None:
                raise NotFound(f"{kind}/{name} not found")
