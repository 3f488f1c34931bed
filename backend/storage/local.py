"""A storage in a local folder: one file per object, written to a temporary name and renamed (atomic)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from backend.storage.base import KINDS, AlreadyExists, NotFound, PermanentError, Storage, check_address


class LocalStorage(Storage):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.location = f"file://{self.root.resolve()}"
        try:
            for kind in KINDS:
                (self.root / kind).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PermanentError(f"cannot create the storage folder {self.root}: {e}") from e

    def _path(self, kind: str, name: str) -> Path:
        check_address(kind, name)
        # Data files fan out into 256 folders so that no folder holds millions of files.
        if kind == "data":
            return self.root / kind / name[:2] / name
        return self.root / kind / name

    def save(self, kind: str, name: str, data: bytes, exclusive: bool = False) -> None:
        path = self._path(kind, name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                if exclusive:
                    try:
                        os.link(tmp, path)  # fails if the name exists: an atomic create-if-absent
                    except FileExistsError:
                        raise AlreadyExists(f"{kind}/{name} already exists") from None
                    finally:
                        os.unlink(tmp)
                else:
                    os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except AlreadyExists:
            raise
        except OSError as e:
            raise PermanentError(f"cannot write {kind}/{name} to {self.root}: {e}") from e

    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(kind, name)
        try:
            with path.open("rb") as f:
                f.seek(offset)
                return f.read() if length is None else f.read(length)
        except FileNotFoundError:
            raise NotFound(f"{kind}/{name} not found") from None
        except OSError as e:
            raise PermanentError(f"cannot read {kind}/{name}: {e}") from e

    def stat(self, kind: str, name: str) -> int:
        try:
            return self._path(kind, name).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"{kind}/{name} not found") from None

    def list(self, kind: str) -> Iterator[str]:
        check_address(kind, "x")
        base = self.root / kind
        if kind == "data":
            for sub in sorted(base.iterdir()) if base.exists() else []:
                if sub.is_dir():
                    yield from sorted(p.name for p in sub.iterdir() if not p.name.startswith("."))
            return
        yield from (
            sorted(p.name for p in base.iterdir() if not p.name.startswith(".")) if base.exists() else []
        )

    def remove(self, kind: str, name: str) -> None:
        try:
            self._path(kind, name).unlink()
        except FileNotFoundError:
            raise NotFound(f"{kind}/{name} not found") from None
