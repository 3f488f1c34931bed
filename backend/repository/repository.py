"""The repository: open or create one in a storage, write and read snapshots, lock, check, forget."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import zstandard

from backend.repository.crypto import IntegrityError, MasterKeys
from backend.repository.keys import find_key, password_key_file, save_key_file
from backend.repository.locks import Lock, remove_stale_locks
from backend.repository.model import (
    FORMAT_VERSION,
    Entry,
    RepositoryCorrupt,
    RepositoryError,
    SnapshotInfo,
    canonical_json,
)
from backend.repository.packs import Index, Packer, open_blob, read_blob, read_pack_header
from backend.repository.prune import PruneResult, prune
from backend.repository.snapshots import Snapshot, SnapshotWriter
from backend.storage import AlreadyExists, NotFound, Storage
from keepstone.jsonio import loads

DEFAULT_PACK_SIZE = 8 * 1024 * 1024


@dataclass
class CheckResult:
    """What `check` found: errors mean damage; warnings are harmless leftovers."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    snapshots: int = 0
    packs: int = 0
    blobs_read: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


class Repository:
    """A restic-like repository in one storage; thread-safe for concurrent snapshot writers."""

    def __init__(self, storage: Storage, keys: MasterKeys, config: dict[str, Any]) -> None:
        self.storage = storage
        self.keys = keys
        self.config = config
        self.index = Index()
        self.packer = Packer(storage, keys, self.index, int(config.get("pack_size", DEFAULT_PACK_SIZE)))
        self.snapshot_cache: dict[str, tuple[SnapshotInfo, list[str]]] = {}
        self._cache_lock = threading.Lock()
        self.key_name: str | None = None  # the key file it was opened with (backend.repository.keys)

    # --- creating and opening ---------------------------------------------------------------------

    @classmethod
    def init(
        cls, storage: Storage, password: str, pack_size: int = DEFAULT_PACK_SIZE, label: str = ""
    ) -> Repository:
        """Create a new repository; refuse if the storage already holds one. `label` names its first key."""
        if not password:
            raise RepositoryError("a repository needs a password (or key)")
        keys = MasterKeys.generate()
        config = {
            "version": FORMAT_VERSION,
            "id": secrets.token_hex(16),
            "pack_size": pack_size,
            "chunk_size": 1 << 20,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        key_file = password_key_file(keys, password, label)
        sealed_config = keys.seal(canonical_json(config), b"config")
        outer = {"version": FORMAT_VERSION, "id": config["id"], "sealed": sealed_config.hex()}
        try:
            storage.save("config", "config", json.dumps(outer).encode(), exclusive=True)
        except AlreadyExists:
            raise RepositoryError(f"{storage.location} already holds a repository") from None
        repo = cls(storage, keys, config)
        repo.key_name = save_key_file(storage, key_file)
        return repo

    @classmethod
    def open(cls, storage: Storage, password: str) -> Repository:
        """Open an existing repository with its password; clear errors for missing/wrong/unknown."""
        try:
            outer = json.loads(storage.load("config", "config"))
        except NotFound:
            raise RepositoryError(
                f"there is no repository at {storage.location} (create one with `keepstone init`)"
            ) from None
        except ValueError:
            raise RepositoryCorrupt("the repository config is not valid JSON") from None
        if outer.get("version") != FORMAT_VERSION:
            raise RepositoryError(
                f"repository format version {outer.get('version')} is not supported by this "
                f"Keepstone (it reads version {FORMAT_VERSION})"
            )
        key_name, keys = find_key(storage, password)
        try:
            config = json.loads(keys.open(bytes.fromhex(outer["sealed"]), b"config"))
        except (IntegrityError, ValueError, KeyError):
            raise RepositoryCorrupt("the repository config fails authentication") from None
        if config.get("id") != outer.get("id"):
            raise RepositoryCorrupt("the repository config was altered (ids differ)")
        repo = cls(storage, keys, config)
        repo.key_name = key_name
        damaged = repo.index.load(storage, keys)
        if damaged:
            raise RepositoryCorrupt(
                f"index files are damaged: {', '.join(d[:12] for d in damaged)} "
                "(run `keepstone check` for details)"
            )
        return repo

    # --- locks ------------------------------------------------------------------------------------

    def lock(self, exclusive: bool = False) -> Lock:
        """Take a lock (context manager); RepositoryLocked if another process holds a conflicting one.

        Once it is held the in-memory index is brought up to date: a prune may have replaced the index
        files since this repository was opened, and a writer must not dedup against blobs it deleted.
        """
        held = Lock(self.storage, exclusive).acquire()
        try:
            self.refresh_index()
        except BaseException:
            held.release()
            raise
        return held

    def refresh_index(self) -> None:
        """Load index files written since opening; rebuild the index if any loaded one was removed."""
        names = set(self.storage.list("index"))
        if self.index.files - names:
            self.reload_index()
            return
        damaged = self.index.load(self.storage, self.keys, sorted(names - self.index.files))
        if damaged:
            raise RepositoryCorrupt(f"index files are damaged: {', '.join(d[:12] for d in damaged)}")

    def reload_index(self) -> None:
        """Read the index again from storage (after a prune replaced its files)."""
        index = Index()
        damaged = index.load(self.storage, self.keys)
        if damaged:
            raise RepositoryCorrupt(f"index files are damaged: {', '.join(d[:12] for d in damaged)}")
        self.index = index
        self.packer.index = index

    def unlock_stale(self, everything: bool = False) -> list[str]:
        return remove_stale_locks(self.storage, everything)

    # --- writing ----------------------------------------------------------------------------------

    def start_snapshot(
        self,
        project: str,
        site: str,
        parent: str | None = None,
        meta: dict[str, Any] | None = None,
        time: datetime | None = None,
    ) -> SnapshotWriter:
        """Start a snapshot; `time` (aware) records it at a given moment instead of its commit time."""
        return SnapshotWriter(self, project, site, parent, meta or {}, time)

    # --- reading ----------------------------------------------------------------------------------

    def read_blob(self, blob_id: str) -> bytes:
        return read_blob(self.storage, self.keys, self.index, blob_id)

    def _load_snapshot(self, snapshot_id: str) -> tuple[SnapshotInfo, list[str]]:
        with self._cache_lock:
            cached = self.snapshot_cache.get(snapshot_id)
        if cached:
            return cached
        try:
            sealed = self.storage.load("snapshots", snapshot_id)
        except NotFound:
            raise RepositoryError(f"no snapshot {snapshot_id[:12]}") from None
        try:
            doc = json.loads(self.keys.open(sealed, b"snapshot"))
        except (IntegrityError, ValueError):
            raise RepositoryCorrupt(f"snapshot {snapshot_id[:12]} fails authentication") from None
        info = SnapshotInfo(
            snapshot_id,
            doc["time"],
            doc["project"],
            doc["site"],
            doc.get("parent"),
            doc.get("meta") or {},
            int(doc.get("entry_count", 0)),
            int(doc.get("size", 0)),
        )
        with self._cache_lock:
            self.snapshot_cache[snapshot_id] = (info, list(doc["trees"]))
        return info, list(doc["trees"])

    def resolve(self, prefix: str) -> str:
        """Expand a snapshot id prefix (at least 4 characters) to the full id."""
        matches = [n for n in self.storage.list("snapshots") if n.startswith(prefix)]
        if len(prefix) < 4 or not matches:
            raise RepositoryError(f"no snapshot matches {prefix!r}")
        if len(matches) > 1:
            raise RepositoryError(f"{prefix!r} matches {len(matches)} snapshots; give more characters")
        return matches[0]

    def snapshots(self, project: str | None = None) -> list[SnapshotInfo]:
        """Every snapshot (of one project), oldest first."""
        out = []
        for name in list(self.storage.list("snapshots")):
            info, _ = self._load_snapshot(name)
            if project is None or info.project == project:
                out.append(info)
        return sorted(out, key=lambda i: (i.time, i.id))

    def latest(self, project: str, site: str | None = None) -> SnapshotInfo | None:
        found = [s for s in self.snapshots(project) if site is None or s.site == site]
        return found[-1] if found else None

    def snapshot(self, snapshot_id: str) -> Snapshot:
        info, trees = self._load_snapshot(
            snapshot_id if len(snapshot_id) == 64 else self.resolve(snapshot_id)
        )
        return Snapshot(self, info, trees)

    def read_bytes(self, entry: Entry) -> bytes:
        return b"".join(self.open_stream(entry))

    def read_json(self, entry: Entry) -> Any:
        return loads(self.read_bytes(entry))

    def open_stream(self, entry: Entry) -> Iterator[bytes]:
        for blob_id in entry.blobs:
            yield self.read_blob(blob_id)

    def prune(self, max_unused: float = 0.05, dry_run: bool = False) -> PruneResult:
        """Delete packs no snapshot needs and repack mostly unused ones (backend.repository.prune)."""
        return prune(self, max_unused, dry_run)

    def forget(self, snapshot_id: str) -> None:
        """Remove a snapshot file (its data stays until prune removes what no snapshot needs).

        One atomic removal; the caller holds the exclusive lock (see backend.repository.retention).
        """
        self.storage.remove("snapshots", snapshot_id)
        with self._cache_lock:
            self.snapshot_cache.pop(snapshot_id, None)

    # --- keep marks: snapshots an admin asked never to forget -------------------------------------

    def mark_keep(self, snapshot_id: str, note: str = "") -> None:
        """Mark a snapshot kept: `keep/<snapshot id>` holds a sealed record naming it."""
        snapshot_id = self.snapshot(snapshot_id).id
        doc = {
            "version": 1,
            "snapshot": snapshot_id,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "note": note,
        }
        self.storage.save("keep", snapshot_id, self.keys.seal(canonical_json(doc), b"keep"))

    def unmark_keep(self, snapshot_id: str) -> bool:
        """Remove a keep mark; False if there was none."""
        try:
            self.storage.remove("keep", snapshot_id)
            return True
        except NotFound:
            return False

    def keep_marks(self) -> dict[str, dict[str, Any]]:
        """Snapshot id -> its keep record, for every mark that authenticates and names its own file."""
        out = {}
        for name in list(self.storage.list("keep")):
            try:
                doc = json.loads(self.keys.open(self.storage.load("keep", name), b"keep"))
            except (NotFound, IntegrityError, ValueError):
                continue  # removed meanwhile, or not written by a holder of the key: no mark
            if doc.get("snapshot") == name:
                out[name] = doc
        return out

    # --- verification -----------------------------------------------------------------------------

    def check(self, read_data: bool = False) -> CheckResult:
        """Verify structure (indexes, packs exist, snapshots reference known blobs); optionally all data."""
        result = CheckResult()
        index = Index()
        damaged = index.load(self.storage, self.keys)
        result.errors += [f"index {d[:12]}: cannot be read or fails authentication" for d in damaged]
        stored_packs = set(self.storage.list("data"))
        indexed_packs: dict[str, list] = {}
        for blob_id, where in index.items():
            indexed_packs.setdefault(where.pack, []).append((blob_id, where))
        result.packs = len(indexed_packs)
        for pack, blobs in indexed_packs.items():
            if pack not in stored_packs:
                result.errors.append(f"pack {pack[:12]}: listed in the index but missing from storage")
                continue
            size = self.storage.stat("data", pack)
            if any(w.offset + w.length > size for _, w in blobs):
                result.errors.append(f"pack {pack[:12]}: shorter than its index says ({size} bytes)")
        for pack in sorted(stored_packs - set(indexed_packs)):
            result.warnings.append(f"pack {pack[:12]}: in no index (left by an interrupted backup; harmless)")
        for name in list(self.storage.list("snapshots")):
            result.snapshots += 1
            try:
                sealed = self.storage.load("snapshots", name)
                if hashlib.sha256(sealed).hexdigest() != name:
                    raise IntegrityError("name does not match content")
                doc = json.loads(self.keys.open(sealed, b"snapshot"))
            except (IntegrityError, ValueError) as e:
                result.errors.append(f"snapshot {name[:12]}: damaged ({e})")
                continue
            for tree in doc["trees"]:
                if tree not in index:
                    result.errors.append(f"snapshot {name[:12]}: tree {tree[:12]} is in no index")
                    continue
                try:
                    lines = read_blob(self.storage, self.keys, index, tree).splitlines()
                except RepositoryCorrupt as e:
                    result.errors.append(f"snapshot {name[:12]}: {e}")
                    continue
                for line in lines:
                    entry = Entry.from_json(json.loads(line))
                    missing = [b for b in entry.blobs if b not in index]
                    if missing:
                        result.errors.append(
                            f"snapshot {name[:12]}: {entry.name} needs blob {missing[0][:12]}, "
                            "which is in no index"
                        )
        if read_data:
            for pack, blobs in indexed_packs.items():
                if pack not in stored_packs:
                    continue
                data = self.storage.load("data", pack)
                if hashlib.sha256(data).hexdigest() != pack:
                    result.errors.append(f"pack {pack[:12]}: content does not match its name (altered)")
                try:
                    header = {h[0]: h for h in read_pack_header(self.keys, data)}
                except (IntegrityError, ValueError) as e:
                    result.errors.append(f"pack {pack[:12]}: header damaged ({e})")
                    header = {}
                for blob_id, where in blobs:
                    if header and blob_id not in header:
                        result.errors.append(f"pack {pack[:12]}: header does not list blob {blob_id[:12]}")
                    try:
                        open_blob(self.keys, blob_id, data[where.offset : where.offset + where.length])
                        result.blobs_read += 1
                    except (IntegrityError, zstandard.ZstdError) as e:
                        result.errors.append(f"pack {pack[:12]}: blob {blob_id[:12]} damaged ({e})")
        return result
