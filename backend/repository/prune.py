"""Prune: delete the packs no snapshot needs and repack the packs that are mostly garbage.

Forgetting a snapshot only removes its snapshot file; its data stays in packs until a prune. Prune runs
under the repository's exclusive lock (no backup writes meanwhile) and goes in this order, so that a
process killed at any point leaves a repository that checks clean (docs/storage-format.md, "Prune"):

1. read every index file and every snapshot, and walk the snapshots' trees: the blobs still used;
2. copy the used blobs of packs whose unused share passes `max_unused` into new packs (sealed bytes are
   copied as they are, after authenticating them: blob sealing is bound to the blob id, not to a pack);
3. write the new index files: the kept packs and the new packs;
4. remove the old index files;
5. delete the packs that are no longer listed: unused ones, repacked ones, and packs in no index.
When the only thing to delete is packs in no index, steps 2 to 4 are skipped: the index stays as it is.

Every stored object stays write-once. A crash before 3 leaves new packs in no index (garbage for the next
prune); between 3 and 4 both old and new index files list existing packs; after 4 the packs still to
delete are in no index. The next prune finishes the job.

On an immutable storage (S3 Object Lock, Azure immutability) objects under retention cannot be removed
yet. Prune asks the storage first and skips them, saying so in `retained`: such a pack stays listed as
it was, and an index file under retention stays with every pack it lists (an index must never name a
missing pack). A removal the storage still refuses is recorded in `refused` (object and retention end)
and, for an index file, keeps the packs it lists too. A later prune, once the retention has ended,
removes them: nothing is lost or left unlisted meanwhile, so `check --read-data` passes throughout.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Container
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import zstandard

from backend.repository.crypto import IntegrityError, MasterKeys
from backend.repository.model import RepositoryCorrupt, RepositoryError
from backend.repository.packs import Index, open_blob, read_blob
from backend.storage import NotFound, RetentionLocked, Storage
from backend.storage.meter import MeteredStorage

if TYPE_CHECKING:
    from backend.repository.repository import Repository

# For tests only: a prune kills itself (SIGKILL) before its N+1-th storage write or removal, so a test can
# stop a real process at exact points of the write order. Unset in normal use.
KILL_ENV = "KEEPSTONE_TEST_PRUNE_KILL_AFTER"
INDEX_BLOBS_PER_FILE = 50_000  # blobs listed per new index file (restic uses the same bound)


@dataclass
class PruneResult:
    """What a prune did (or, in a dry run, would do)."""

    dry_run: bool
    max_unused: float
    snapshots: int = 0
    blobs_used: int = 0  # distinct blobs the snapshots reference
    blobs_kept: int = 0  # blob copies listed in the index after the prune
    blobs_removed: int = 0  # blob copies no longer listed (unused, or a duplicate of a kept copy)
    packs_before: int = 0  # packs in storage
    packs_deleted: int = 0  # listed packs that held nothing a snapshot needs
    packs_repacked: int = 0  # packs whose used blobs were copied into new packs, then deleted
    packs_unindexed: int = 0  # packs in no index (left by interrupted backups or prunes), deleted
    packs_missing: int = 0  # listed packs absent from storage holding nothing needed: dropped from the index
    packs_written: int = 0  # new packs holding the repacked blobs
    index_files_removed: int = 0
    index_files_written: int = 0
    bytes_deleted: int = 0  # stored bytes of the packs and index files removed
    bytes_repacked: int = 0  # stored bytes of the packs repacked (a part of bytes_deleted)
    bytes_written: int = 0  # new packs and index files
    bytes_new_packs: int = 0  # the new packs alone (a part of bytes_written)
    bytes_read: int = 0  # everything read: index files, snapshots, trees, repacked packs
    # objects skipped because they are under retention: {"kind", "name", "until"} (an immutable storage)
    retained: list[dict[str, str]] = field(default_factory=list)
    # removals the storage refused: {"kind", "name", "until", "error"}; tried again by the next prune
    refused: list[dict[str, str]] = field(default_factory=list)

    @property
    def bytes_reclaimed(self) -> int:
        return self.bytes_deleted - self.bytes_written

    @property
    def changed(self) -> bool:
        return bool(self.packs_deleted or self.packs_repacked or self.packs_unindexed or self.packs_missing)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bytes_reclaimed"] = self.bytes_reclaimed
        out["retry_after"] = self.retry_after
        return out

    @property
    def retry_after(self) -> str | None:
        """When the first skipped or refused object's retention ends (a later prune can remove it)."""
        ends = [o["until"] for o in self.retained + self.refused if o.get("until")]
        return min(ends) if ends else None

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        text = self._figures(verb)
        if self.retained:
            packs = sum(1 for o in self.retained if o["kind"] == "data")
            text += (
                f"; skipped {packs} packs and {len(self.retained) - packs} index files under retention "
                f"(e.g. {_object(self.retained[0])}): a prune after {self.retry_after} removes them"
            )
        if self.refused:
            text += f"; the storage refused {len(self.refused)} deletions: " + "; ".join(
                o["error"] for o in self.refused[:3]
            )
        return text

    def _figures(self, verb: str) -> str:
        return (
            f"{'dry run: ' if self.dry_run else ''}{self.snapshots} snapshots use {self.blobs_used} blobs; "
            f"{verb} {self.packs_deleted} unused packs and {self.packs_unindexed} packs in no index, "
            f"{'would repack' if self.dry_run else 'repacked'} {self.packs_repacked} packs into "
            f"{self.packs_written}; {self.blobs_kept} blobs kept, {self.blobs_removed} removed; "
            f"{'would reclaim about' if self.dry_run else 'reclaimed'} {_size(self.bytes_reclaimed)} "
            f"(read {_size(self.bytes_read)}, {'would write about' if self.dry_run else 'wrote'} "
            f"{_size(self.bytes_written)})"
        )


def _object(o: dict[str, str]) -> str:
    return f"{o['kind']}/{o['name'][:12]} until {o['until']}"


def _until(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else ""


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


@dataclass
class _Pack:
    name: str
    entries: list[list]  # [blob id, type, offset, sealed length, plaintext length]
    needed: list[list] = field(default_factory=list)  # the used blobs whose kept copy is this one
    duplicates: int = 0  # used blobs whose kept copy is in another pack

    @property
    def total(self) -> int:
        return sum(e[3] for e in self.entries)

    @property
    def unused_share(self) -> float:
        total = self.total
        return (total - sum(e[3] for e in self.needed)) / total if total else 1.0


class _PackWriter:
    """Writes already sealed blobs into new packs of the repository's pack size."""

    def __init__(self, storage: Storage, keys: MasterKeys, pack_size: int) -> None:
        self.storage, self.keys, self.pack_size = storage, keys, pack_size
        self.parts: list[bytes] = []
        self.header: list[list] = []
        self.size = 0
        self.packs: list[dict[str, Any]] = []
        self.bytes = 0

    def add(self, entry: list, sealed: bytes) -> None:
        self.header.append([entry[0], entry[1], self.size, len(sealed), entry[4]])
        self.parts.append(sealed)
        self.size += len(sealed)
        if self.size >= self.pack_size:
            self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        sealed_header = self.keys.seal(json.dumps(self.header).encode(), b"pack-header")
        data = b"".join(self.parts) + sealed_header + struct.pack("<I", len(sealed_header))
        name = hashlib.sha256(data).hexdigest()
        self.storage.save("data", name, data)
        self.packs.append({"id": name, "blobs": self.header})
        self.bytes += len(data)
        self.parts, self.header, self.size = [], [], 0


def prune(
    repo: Repository,
    max_unused: float = 0.05,
    dry_run: bool = False,
    ignore_snapshots: Container[str] = (),
) -> PruneResult:
    """Remove what no snapshot needs; see the module docstring for the order.

    `max_unused` (0..1): a pack is repacked when more than this share of its listed bytes is unused
    (0 repacks every pack with any garbage, 1 only deletes packs that are wholly unused). A dry run takes
    no lock and changes nothing; `ignore_snapshots` lets it count as if those were forgotten already.
    Raises RepositoryCorrupt, having deleted nothing, if an index file, a snapshot or a needed blob cannot
    be read: prune never deletes on a guess.
    """
    if not 0.0 <= max_unused <= 1.0:
        raise ValueError("max_unused must be between 0 and 1")
    if dry_run:
        return _prune(repo, max_unused, True, ignore_snapshots)
    with repo.lock(exclusive=True):
        result = _prune(repo, max_unused, False, ignore_snapshots)
        if result.changed:  # (after a failure part way, the next lock() finds the index files changed)
            repo.reload_index()
        return result


def _prune(repo: Repository, max_unused: float, dry_run: bool, ignore: Container[str]) -> PruneResult:
    storage = MeteredStorage(repo.storage, KILL_ENV)
    keys = repo.keys
    result = PruneResult(dry_run, max_unused)

    # 1. Every index file, and the blobs the remaining snapshots use.
    index_files = sorted(storage.list("index"))
    index_bytes = 0
    index_sizes: dict[str, int] = {}
    packs: dict[str, _Pack] = {}
    listed_by: dict[str, list[str]] = {}  # index file -> the packs it lists
    index = Index()
    for name in index_files:
        try:
            sealed = storage.load("index", name)
            doc = json.loads(keys.open(sealed, b"index"))
            listed_by[name] = [listed["id"] for listed in doc["packs"]]
            for listed in doc["packs"]:
                index.add_pack(listed["id"], listed["blobs"])
                pack = packs.setdefault(listed["id"], _Pack(listed["id"], []))
                # A pack listed twice (a prune stopped after writing its index) has the same entries.
                known = {(e[0], e[2]) for e in pack.entries}
                pack.entries += [e for e in listed["blobs"] if (e[0], e[2]) not in known]
        except (NotFound, IntegrityError, ValueError, KeyError, TypeError) as e:
            raise RepositoryCorrupt(
                f"index {name[:12]} cannot be read ({e}); prune changed nothing (run `keepstone check`)"
            ) from None
        index_bytes += len(sealed)
        index_sizes[name] = len(sealed)

    used: set[str] = set()
    trees_seen: set[str] = set()
    for name in sorted(storage.list("snapshots")):
        if name in ignore:
            continue
        try:
            doc = json.loads(keys.open(storage.load("snapshots", name), b"snapshot"))
            trees = list(doc["trees"])
        except (NotFound, IntegrityError, ValueError, KeyError, TypeError) as e:
            raise RepositoryCorrupt(
                f"snapshot {name[:12]} cannot be read ({e}); prune changed nothing"
            ) from None
        result.snapshots += 1
        for tree in trees:
            used.add(tree)
            if tree in trees_seen:
                continue
            trees_seen.add(tree)
            try:
                lines = read_blob(storage, keys, index, tree).splitlines()
            except RepositoryCorrupt as e:
                raise RepositoryCorrupt(f"snapshot {name[:12]}: {e}; prune changed nothing") from None
            for line in lines:
                if line.strip():
                    used.update(json.loads(line)["blobs"])
    del trees_seen
    result.blobs_used = len(used)

    # 2. Where each used blob's kept copy is, and what becomes of each pack.
    stored = set(storage.list("data"))
    result.packs_before = len(stored)
    missing = sorted(set(packs) - stored)

    def used_share(pack: _Pack) -> float:
        return sum(1 for e in pack.entries if e[0] in used) / max(1, len(pack.entries))

    home: set[str] = set()
    for pack in sorted((packs[p] for p in packs if p in stored), key=lambda p: (-used_share(p), p.name)):
        for entry in pack.entries:
            if entry[0] in used:
                if entry[0] in home:
                    pack.duplicates += 1
                else:
                    home.add(entry[0])
                    pack.needed.append(entry)
    lost = used - home
    if lost:
        example = sorted(lost)[0]
        where = "a missing pack" if example in index else "no index"
        raise RepositoryCorrupt(
            f"{len(lost)} blobs the snapshots need are in {where} (e.g. {example[:12]}); prune changed "
            "nothing (run `keepstone check`)"
        )
    for name in missing:
        del packs[name]
    result.packs_missing = len(missing)
    delete = sorted(p for p in packs if not packs[p].needed)
    repack = sorted(p for p in packs if packs[p].needed and packs[p].unused_share > max_unused)
    keep = sorted(set(packs) - set(delete) - set(repack))
    unindexed = sorted(stored - set(packs))
    removable_index = list(index_files)
    if delete or repack or unindexed:
        # What retention protects stays as it is (see the module docstring): first the packs themselves;
        # then, if the index is still to be rewritten, the index files under retention and what they list.
        for name in delete + repack + unindexed:
            try:
                until = storage.retained_until("data", name)
            except NotFound:
                until = None
            if until is not None:
                result.retained.append({"kind": "data", "name": name, "until": _until(until)})
        protected = {o["name"] for o in result.retained}
        if (set(delete) | set(repack)) - protected or missing:
            for name in index_files:
                until = storage.retained_until("index", name)
                if until is not None:
                    result.retained.append({"kind": "index", "name": name, "until": _until(until)})
                    protected.update(listed_by.get(name, ()))
                    removable_index.remove(name)
        delete = [p for p in delete if p not in protected]
        repack = [p for p in repack if p not in protected]
        unindexed = [p for p in unindexed if p not in protected]
        keep = sorted(set(packs) - set(delete) - set(repack))
    result.packs_deleted, result.packs_repacked, result.packs_unindexed = (
        len(delete),
        len(repack),
        len(unindexed),
    )

    # A kept pack stays listed with its needed blobs and its unused ones (a later backup may dedup against
    # those); a copy of a used blob kept elsewhere is dropped from the index, so each used blob has one home.
    kept_entries: dict[str, list[list]] = {}
    for name in keep:
        needed = {(e[0], e[2]) for e in packs[name].needed}
        kept_entries[name] = [e for e in packs[name].entries if (e[0], e[2]) in needed or e[0] not in used]
    result.blobs_kept = sum(len(v) for v in kept_entries.values()) + sum(len(packs[p].needed) for p in repack)
    result.blobs_removed = sum(len(packs[p].entries) for p in packs) - result.blobs_kept
    if not result.changed:
        result.bytes_read = storage.bytes_read
        return result

    to_delete = delete + repack + unindexed
    sizes = {}
    for name in to_delete:
        try:
            sizes[name] = storage.stat("data", name)
        except NotFound:
            sizes[name] = 0
    result.bytes_repacked = sum(sizes[p] for p in repack)
    index_bytes = sum(index_sizes[n] for n in removable_index)
    if not (delete or repack or missing):
        # Only packs in no index to delete: the index stays as it is. (A rewrite would change nothing it
        # lists; on an immutable storage it would make a new index file under retention, holding every
        # pack it lists for another period, and meet the old ones' retention.)
        removable_index, index_bytes, rewrite_index = [], 0, False
    else:
        rewrite_index = True
    if dry_run:
        result.bytes_deleted = sum(sizes.values()) + index_bytes
        result.bytes_written = sum(e[3] for p in repack for e in packs[p].needed)  # an estimate: blob bytes
        result.bytes_new_packs = result.bytes_written
        result.bytes_read = storage.bytes_read + result.bytes_repacked
        result.index_files_removed = len(removable_index)
        return result

    # 3. Repack: copy the needed blobs of the repacked packs, authenticated, into new packs.
    writer = _PackWriter(storage, keys, int(repo.config.get("pack_size", 8 << 20)))
    for name in repack:
        data = storage.load("data", name)
        if hashlib.sha256(data).hexdigest() != name:
            raise RepositoryCorrupt(
                f"pack {name[:12]} does not match its name (altered); prune deleted nothing"
            )
        for entry in packs[name].needed:
            sealed = data[entry[2] : entry[2] + entry[3]]
            try:
                open_blob(keys, entry[0], sealed)
            except (IntegrityError, zstandard.ZstdError) as e:
                raise RepositoryCorrupt(
                    f"blob {entry[0][:12]} in pack {name[:12]} is damaged ({e}); prune deleted nothing"
                ) from None
            writer.add(entry, sealed)
    writer.flush()
    result.packs_written, result.bytes_new_packs = len(writer.packs), writer.bytes

    # 4. The new index, complete, before anything is removed.
    listed = [{"id": p, "blobs": kept_entries[p]} for p in keep] + writer.packs if rewrite_index else []
    chunk: list[dict[str, Any]] = []
    count = 0
    for pack in listed:
        chunk.append(pack)
        count += len(pack["blobs"])
        if count >= INDEX_BLOBS_PER_FILE:
            _write_index(storage, keys, chunk)
            result.index_files_written += 1
            chunk, count = [], 0
    if chunk:
        _write_index(storage, keys, chunk)
        result.index_files_written += 1

    # 5. Then the old index files, then the packs nothing lists any more. An index file the storage
    # refuses to remove keeps every pack it lists.
    for name in removable_index:
        try:
            storage.remove("index", name)
        except NotFound:
            pass
        except RetentionLocked as e:
            _refused(result, "index", name, e)
            index_bytes -= index_sizes[name]
            for pack in listed_by.get(name, ()):
                if pack in sizes:
                    to_delete.remove(pack)
                    sizes.pop(pack)
            continue
        result.index_files_removed += 1
    for name in to_delete:
        try:
            storage.remove("data", name)
        except NotFound:
            pass
        except RetentionLocked as e:  # left in no index: the next prune tries again
            _refused(result, "data", name, e)
            sizes.pop(name)
    result.bytes_deleted = sum(sizes.values()) + index_bytes
    result.bytes_written = storage.bytes_written
    result.bytes_read = storage.bytes_read
    return result


def _refused(result: PruneResult, kind: str, name: str, e: RetentionLocked) -> None:
    result.refused.append({"kind": kind, "name": name, "until": _until(e.until), "error": str(e)})


def _write_index(storage: Storage, keys: MasterKeys, packs: list[dict[str, Any]]) -> None:
    data = keys.seal(json.dumps({"version": 1, "packs": packs}).encode(), b"index")
    storage.save("index", hashlib.sha256(data).hexdigest(), data)


def parse_max_unused(text: str) -> float:
    """'5%' or '5' (a percentage of a pack's bytes, 0 to 100) -> 0.05; RepositoryError saying why not."""
    raw = text.strip()
    number = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = float(number)
    except ValueError:
        raise RepositoryError(f"{text!r} is not a percentage (e.g. 5%)") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise RepositoryError(f"{text!r} is not a percentage (e.g. 5%)")
    if value < 0:
        raise RepositoryError(f"{text!r} is negative: give 0% to 100%")
    if value > 100:
        raise RepositoryError(f"{text!r} is above 100%")
    return value / 100
