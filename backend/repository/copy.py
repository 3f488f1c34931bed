"""Copy: put the snapshots a destination repository lacks into it, writing only the blobs it lacks.

Like restic's `copy`, but repositories here have their own keys, and a blob's id is a keyed hash
(HMAC with the repository's mac key): the same item has another id in another repository. So a copy
decrypts each blob with the source's keys, and the destination's Packer computes its id there, dedups it
against the destination's index and seals it with the destination's keys. Tree blobs list blob ids, so
each tree is rewritten with the destination's ids (same entries, same order, one destination tree per
source tree: an unchanged tree still dedups).

Which snapshots are missing: a snapshot's *origin* is the id it had in the repository that first wrote
it (`meta.origin` on a copy, its own id otherwise). A source snapshot is missing when no destination
snapshot has its origin; copies of copies keep the first origin, so A -> B -> C never copies twice.

Which blobs need reading: a snapshot already copied pairs with its copy entry by entry (the copy writes
the same entries in the same order), which maps source ids to destination ids without reading data. A
snapshot is copied after its project's newest pair is loaded that way, so after a small incremental backup
only the new blobs are read and written.

The write order (docs/storage-format.md, "Copy"): under a shared lock on both repositories (a prune on
either waits), for each missing snapshot, oldest first: packs, then index files (the Packer writes one
every 8 packs and at the end), then the read-back check of what was written, then the snapshot file, last.
A copy killed anywhere leaves packs in no index or index entries no snapshot uses (prune's garbage, never
damage), and the next copy finds the blobs that are indexed and writes only the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import zstandard

from backend.repository.crypto import IntegrityError
from backend.repository.model import RepositoryError, SnapshotInfo, canonical_json
from backend.repository.packs import Index, open_blob, read_pack_header
from backend.storage import NotFound
from backend.storage.meter import MeteredStorage

if TYPE_CHECKING:
    from backend.repository.repository import Repository

# For tests only: a copy kills itself (SIGKILL) before its N+1-th write or removal in the destination.
KILL_ENV = "KEEPSTONE_TEST_COPY_KILL_AFTER"
READ_SPAN = 16 << 20  # at most this many bytes of a source pack in one ranged read
READ_GAP = 256 << 10  # neighbouring blobs further apart than this are read separately


class CopyError(RepositoryError):
    """A copy could not be completed; what was written so far is valid (see the module docstring)."""


@dataclass
class CopyResult:
    """What a copy did: snapshots copied (source id -> destination id) and skipped, blobs and bytes."""

    source: str
    destination: str
    copied: list[dict[str, str]] = field(default_factory=list)  # {source, destination, project, time}
    snapshots_skipped: int = 0  # already on the destination (same origin)
    blobs_copied: int = 0  # distinct blobs written to the destination (data and trees)
    blobs_skipped: int = 0  # distinct blobs the destination had already
    bytes_copied: int = 0  # plaintext bytes of the blobs written
    bytes_written: int = 0  # stored bytes written to the destination: packs, index files, snapshots
    bytes_read: int = 0  # plaintext bytes read from the source
    blobs_verified: int = 0  # blobs read back from the destination's new packs and authenticated
    storage_writes: int = 0  # saves and removals in the destination (lock files included)

    @property
    def snapshots_copied(self) -> int:
        return len(self.copied)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["snapshots_copied"] = self.snapshots_copied
        return out

    def summary(self) -> str:
        return (
            f"copied {self.snapshots_copied} snapshots ({self.snapshots_skipped} already there) from "
            f"{self.source} to {self.destination}: {self.blobs_copied} blobs written, {self.blobs_skipped} "
            f"already there; {_size(self.bytes_written)} written, {_size(self.bytes_read)} read; "
            f"{self.blobs_verified} blobs read back"
        )


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def origin(info: SnapshotInfo) -> str:
    """The id a snapshot had in the repository that first wrote it."""
    found = info.meta.get("origin")
    return found if isinstance(found, str) and len(found) == 64 else info.id


def missing(
    src: Repository, dst: Repository, include: Callable[[SnapshotInfo], bool] | None = None
) -> list[SnapshotInfo]:
    """The source's snapshots (those `include` accepts) that the destination has no copy of, oldest first."""
    there = {origin(s) for s in dst.snapshots()}
    return [s for s in src.snapshots() if (include is None or include(s)) and origin(s) not in there]


def _lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def _line(doc: dict[str, Any]) -> bytes:
    # exactly as SnapshotWriter writes an entry
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode() + b"\n"


class _Copier:
    def __init__(self, src: Repository, dst: Repository, result: CopyResult) -> None:
        from backend.repository.repository import Repository

        self.src = src
        self.meter = MeteredStorage(dst.storage, KILL_ENV)
        # The destination through the meter; it shares the caller's index (kept up to date under the lock).
        self.dst = Repository(self.meter, dst.keys, dst.config)
        self.dst.index = dst.index
        self.dst.packer.index = dst.index
        self.result = result
        self.ids: dict[str, str] = {}  # source blob id -> destination blob id
        self.seen: set[str] = set()  # source blob ids counted in this copy
        self.paired: set[str] = set()  # destination snapshots whose pairing was loaded
        self.fresh = Index()  # the destination's index files as read back during this copy

    def pair(self, src_id: str, dst_id: str) -> None:
        """Learn source -> destination blob ids from a snapshot and its copy (trees only, no data)."""
        if dst_id in self.paired:
            return
        self.paired.add(dst_id)
        try:
            a, b = self.src.snapshot(src_id), self.dst.snapshot(dst_id)
            if len(a.trees) != len(b.trees):
                return
            for ta, tb in zip(a.trees, b.trees, strict=True):
                la, lb = _lines(self.src.read_blob(ta)), _lines(self.dst.read_blob(tb))
                if len(la) != len(lb):
                    continue
                self.ids.setdefault(ta, tb)
                for ea, eb in zip(la, lb, strict=True):
                    if ea["name"] == eb["name"] and len(ea["blobs"]) == len(eb["blobs"]):
                        for x, y in zip(ea["blobs"], eb["blobs"], strict=True):
                            self.ids.setdefault(x, y)
        except (RepositoryError, ValueError, KeyError):
            return  # no pairing: the blobs are read and their ids computed instead

    def known(self, src_id: str) -> str | None:
        """The destination id of a source blob when the destination has it (no data read)."""
        found = self.ids.get(src_id)
        if found is not None and (found in self.dst.index or found in self.dst.packer.pending):
            if src_id not in self.seen:
                self.seen.add(src_id)
                self.result.blobs_skipped += 1
            return found
        return None

    def fetch(self, wanted: list[str], written: set[str]) -> None:
        """Read the wanted source blobs pack by pack (one ranged read for neighbours) and add them."""
        by_pack: dict[str, list[tuple[int, int, str, str]]] = {}
        for blob_id in dict.fromkeys(wanted):
            where = self.src.index.get(blob_id)
            if where is None:
                raise CopyError(f"blob {blob_id[:12]} of the source is in no index (run `keepstone check`)")
            by_pack.setdefault(where.pack, []).append((where.offset, where.length, blob_id, where.type))
        for pack, items in by_pack.items():
            items.sort()
            i = 0
            while i < len(items):
                start, j = items[i][0], i
                while (
                    j + 1 < len(items)
                    and items[j + 1][0] + items[j + 1][1] - start <= READ_SPAN
                    and items[j + 1][0] - (items[j][0] + items[j][1]) <= READ_GAP
                ):
                    j += 1
                end = items[j][0] + items[j][1]
                try:
                    data = self.src.storage.load("data", pack, start, end - start)
                except NotFound:
                    raise CopyError(
                        f"pack {pack[:12]} of the source is missing (run `keepstone check`)"
                    ) from None
                for offset, length, blob_id, blob_type in items[i : j + 1]:
                    try:
                        plain = open_blob(
                            self.src.keys, blob_id, data[offset - start : offset - start + length]
                        )
                    except (IntegrityError, zstandard.ZstdError) as e:
                        raise CopyError(f"blob {blob_id[:12]} of the source is damaged: {e}") from e
                    self.add(blob_id, blob_type, plain, written)
                i = j + 1

    def add(self, src_id: str, blob_type: str, plaintext: bytes, written: set[str]) -> str:
        self.result.bytes_read += len(plaintext)
        dst_id, new = self.dst.packer.add(blob_type, plaintext)
        self.ids[src_id] = dst_id
        if src_id not in self.seen:
            self.seen.add(src_id)
            if new:
                self.result.blobs_copied += 1
                self.result.bytes_copied += len(plaintext)
            else:
                self.result.blobs_skipped += 1
        if new:
            written.add(dst_id)
        return dst_id

    def snapshot(self, info: SnapshotInfo, counterpart: dict[str, str]) -> str:
        """Copy one snapshot: its blobs, its rewritten trees, the read-back check, then its file."""
        src_snapshot = self.src.snapshot(info.id)
        first_pack = len(self.meter.packs)
        written: set[str] = set()
        needed: set[str] = set()
        trees: list[str] = []
        tree_plain: dict[str, bytes] = {}
        listed = [(tree, _lines(self.src.read_blob(tree))) for tree in src_snapshot.trees]
        self.fetch(
            [b for _, docs in listed for doc in docs for b in doc["blobs"] if self.known(b) is None], written
        )
        for tree, docs in listed:
            out = bytearray()
            for doc in docs:
                doc["blobs"] = [self.ids[b] for b in doc["blobs"]]
                needed.update(doc["blobs"])
                out += _line(doc)
            plain = bytes(out)
            dst_tree = self.add(tree, "tree", plain, written)
            trees.append(dst_tree)
            tree_plain[dst_tree] = plain
        self.dst.packer.flush()  # data, then index ...
        self.verify(needed | set(trees), tree_plain, self.meter.packs[first_pack:], written)
        meta = dict(info.meta)
        meta["origin"] = origin(info)
        parent = None
        if info.parent:
            try:
                parent = counterpart.get(origin(self.src.snapshot(info.parent).info))
            except RepositoryError:
                parent = None  # the parent was forgotten on the source
        doc = {
            "version": 1,
            "time": info.time,
            "project": info.project,
            "site": info.site,
            "parent": parent,
            "meta": meta,
            "trees": trees,
            "entry_count": info.entry_count,
            "size": info.size,
        }
        data = self.dst.keys.seal(canonical_json(doc), b"snapshot")
        dst_id = hashlib.sha256(data).hexdigest()
        self.meter.save("snapshots", dst_id, data)  # ... then the snapshot, last
        try:
            back = json.loads(self.dst.keys.open(self.meter.inner.load("snapshots", dst_id), b"snapshot"))
        except (NotFound, IntegrityError, ValueError) as e:
            raise CopyError(f"snapshot {dst_id[:12]} does not read back from the destination: {e}") from e
        if back != json.loads(canonical_json(doc)):
            raise CopyError(f"snapshot {dst_id[:12]} reads back differently from the destination")
        return dst_id

    def verify(self, needed: set[str], trees: dict[str, bytes], packs: list[str], written: set[str]) -> None:
        """Before the snapshot file is written: every blob it needs is in an index file read back from the
        destination and in a stored pack; the new packs hash to their names and each of their blobs
        authenticates; the trees read back as written. CopyError (no snapshot written) if not."""
        storage = self.meter.inner
        fresh = self.fresh
        damaged = fresh.load(storage, self.dst.keys)  # the files not read back yet
        if damaged:
            raise CopyError(f"index files of the destination do not read back: {damaged[0][:12]}")
        stored = set(storage.list("data"))
        for blob_id in needed:
            where = fresh.get(blob_id)
            if where is None or where.pack not in stored:
                raise CopyError(f"blob {blob_id[:12]} is not in the destination after the copy")
        for pack in packs:
            data = storage.load("data", pack)
            if hashlib.sha256(data).hexdigest() != pack:
                raise CopyError(f"pack {pack[:12]} reads back altered from the destination")
            try:
                for entry in read_pack_header(self.dst.keys, data):
                    plain = open_blob(self.dst.keys, entry[0], data[entry[2] : entry[2] + entry[3]])
                    if entry[0] in trees and plain != trees[entry[0]]:
                        raise IntegrityError(f"tree {entry[0][:12]} differs")
                    self.result.blobs_verified += 1
            except (IntegrityError, zstandard.ZstdError, ValueError) as e:
                raise CopyError(f"pack {pack[:12]} does not read back from the destination: {e}") from e
        for tree, plain in trees.items():
            if tree not in written and self.dst.read_blob(tree) != plain:
                raise CopyError(f"tree {tree[:12]} reads back differently from the destination")


def copy(
    src: Repository,
    dst: Repository,
    include: Callable[[SnapshotInfo], bool] | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> CopyResult:
    """Copy every snapshot of `src` (that `include` accepts) missing on `dst`; see the module docstring.

    Takes a shared lock on both (RepositoryLocked if a prune or forget holds either); raises CopyError or
    a StorageError when the destination cannot take or give back what is written, having written no
    snapshot file that is not complete and read back.
    """
    if src.storage is dst.storage or (src.storage.location == dst.storage.location != "memory://"):
        raise CopyError("the source and the destination are the same repository")
    result = CopyResult(src.storage.location, dst.storage.location)
    with src.lock():
        copier = _Copier(src, dst, result)
        with copier.dst.lock():
            there: dict[str, str] = {}  # origin -> destination snapshot id
            for s in copier.dst.snapshots():
                there.setdefault(origin(s), s.id)
            chosen = [s for s in src.snapshots() if include is None or include(s)]
            todo = [s for s in chosen if origin(s) not in there]
            result.snapshots_skipped = len(chosen) - len(todo)
            done_pairs: dict[str, list[tuple[str, str]]] = {}  # project -> (source, destination) pairs
            for s in chosen:
                if origin(s) in there:
                    done_pairs.setdefault(s.project, []).append((s.id, there[origin(s)]))
            for number, info in enumerate(todo, 1):
                earlier = done_pairs.get(info.project)
                if earlier:
                    copier.pair(*earlier[-1])  # the project's newest copied snapshot before this one
                dst_id = copier.snapshot(info, there)
                there[origin(info)] = dst_id
                done_pairs.setdefault(info.project, []).append((info.id, dst_id))
                result.copied.append(
                    {"source": info.id, "destination": dst_id, "project": info.project, "time": info.time}
                )
                if progress:
                    progress({"phase": "copied", "done": number, "total": len(todo), "project": info.project})
    result.bytes_written, result.storage_writes = copier.meter.bytes_written, copier.meter.writes
    dst.snapshot_cache.clear()
    return result


def stored_bytes(repo: Repository) -> int:
    """About the bytes a repository stores: the sealed blobs its index lists (no request made)."""
    return sum(where.length for _, where in repo.index.items())
