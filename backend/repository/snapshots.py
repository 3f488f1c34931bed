"""Snapshots: a writer that stores one project's items and commits its manifest last, and a reader.

Entries are spooled to a temporary file while a snapshot is written (memory stays flat however large the
project), then stored as "tree" blobs of JSON lines; the snapshot file names those trees. Unchanged
trees of a similar snapshot dedup like any other blob.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from backend.repository.model import Entry, RepositoryError, SnapshotInfo, canonical_json
from keepstone.jsonio import loads

if TYPE_CHECKING:
    from backend.repository.repository import Repository

TREE_TARGET = 512 * 1024
CHUNK = 1 << 20  # attachment chunk size; Jira attachments never change in place, so fixed chunks dedup them


class SnapshotWriter:
    """Write one snapshot; add items from many threads; `commit` makes it exist, atomically."""

    def __init__(
        self,
        repo: Repository,
        project: str,
        site: str,
        parent: str | None,
        meta: dict[str, Any],
        time: datetime | None = None,
    ) -> None:
        if time is not None and time.tzinfo is None:
            raise RepositoryError("a snapshot time needs its UTC offset")
        self.time = time  # None: the moment of commit
        self.repo = repo
        self.project = project
        self.site = site
        self.parent = parent
        self.meta = dict(meta)
        self.spool: IO[bytes] = tempfile.TemporaryFile(prefix="keepstone-entries-")  # noqa: SIM115 - closed by commit/abort
        self.lock = threading.Lock()
        self.count = 0
        self.size = 0
        self.new_bytes = 0  # plaintext bytes that were not in the repository before
        self.closed = False

    def _append(self, entry: Entry) -> Entry:
        line = json.dumps(entry.to_json(), separators=(",", ":"), sort_keys=True).encode() + b"\n"
        with self.lock:
            if self.closed:
                raise RepositoryError("the snapshot is already committed or aborted")
            self.spool.write(line)
            self.count += 1
            self.size += entry.size
        return entry

    def add_bytes(self, name: str, data: bytes, kind: str, attrs: dict[str, Any] | None = None) -> Entry:
        blob_id, new = self.repo.packer.add("data", data)
        if new:
            with self.lock:
                self.new_bytes += len(data)
        return self._append(Entry(name, kind, [blob_id], len(data), dict(attrs or {})))

    def add_json(self, name: str, doc: Any, kind: str, attrs: dict[str, Any] | None = None) -> Entry:
        """Store a JSON document under `name`."""
        return self.add_bytes(name, canonical_json(doc), kind, attrs)

    def add_stream(
        self, name: str, source: IO[bytes] | Iterable[bytes], kind: str, attrs: dict[str, Any] | None = None
    ) -> Entry:
        """Store a byte stream in fixed chunks (bounded memory); the source may be a file or an iterator."""
        blobs: list[str] = []
        size = 0
        new = 0
        buffer = bytearray()
        parts = iter(lambda: source.read(CHUNK), b"") if hasattr(source, "read") else iter(source)
        for part in parts:
            buffer += part
            while len(buffer) >= CHUNK:
                chunk = bytes(buffer[:CHUNK])
                del buffer[:CHUNK]
                blob_id, is_new = self.repo.packer.add("data", chunk)
                blobs.append(blob_id)
                size += len(chunk)
                new += len(chunk) if is_new else 0
        if buffer or not blobs:
            blob_id, is_new = self.repo.packer.add("data", bytes(buffer))
            blobs.append(blob_id)
            size += len(buffer)
            new += len(buffer) if is_new else 0
        with self.lock:
            self.new_bytes += new
        return self._append(Entry(name, kind, blobs, size, dict(attrs or {})))

    def carry(self, name: str, entry: Entry) -> Entry:
        """Keep an unchanged item from the parent snapshot: a reference, no data read or written."""
        return self._append(Entry(name, entry.kind, list(entry.blobs), entry.size, dict(entry.attrs)))

    def commit(self) -> str:
        """Store trees, flush packs and index, then write the snapshot file; return the snapshot id."""
        with self.lock:
            if self.closed:
                raise RepositoryError("the snapshot is already committed or aborted")
            self.closed = True
        self.spool.seek(0)
        trees: list[str] = []
        chunk = bytearray()
        for line in self.spool:
            chunk += line
            if len(chunk) >= TREE_TARGET:
                trees.append(self.repo.packer.add("tree", bytes(chunk))[0])
                chunk.clear()
        if chunk:
            trees.append(self.repo.packer.add("tree", bytes(chunk))[0])
        self.spool.close()
        self.repo.packer.flush()  # data, then index ...
        doc = {
            "version": 1,
            "time": (self.time or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds"),
            "project": self.project,
            "site": self.site,
            "parent": self.parent,
            "meta": self.meta,
            "trees": trees,
            "entry_count": self.count,
            "size": self.size,
        }
        data = self.repo.keys.seal(canonical_json(doc), b"snapshot")
        snapshot_id = hashlib.sha256(data).hexdigest()
        self.repo.storage.save("snapshots", snapshot_id, data)  # ... then the snapshot, last
        return snapshot_id

    def abort(self) -> None:
        """Drop the snapshot; blobs already stored stay as garbage for prune."""
        with self.lock:
            self.closed = True
        self.spool.close()


class Snapshot:
    """A committed snapshot: its summary, and its entries read lazily from tree blobs."""

    def __init__(self, repo: Repository, info: SnapshotInfo, trees: list[str]) -> None:
        self.repo = repo
        self.info = info
        self.trees = trees
        self._by_name: dict[str, Entry] | None = None

    @property
    def id(self) -> str:
        return self.info.id

    def iter_entries(self) -> Iterator[Entry]:
        for tree in self.trees:
            for line in io.BytesIO(self.repo.read_blob(tree)):
                if line.strip():
                    yield Entry.from_json(loads(line))

    @property
    def entries(self) -> dict[str, Entry]:
        if self._by_name is None:
            self._by_name = {e.name: e for e in self.iter_entries()}
        return self._by_name

    def entry(self, name: str) -> Entry | None:
        return self.entries.get(name)
