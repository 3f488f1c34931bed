"""Pack files and the index: many small sealed blobs per storage object, and where each blob lives.

A pack is `blob blob ... blob sealed-header header-length(4 bytes, little endian)`; its name is the
SHA-256 of its bytes. An index file lists packs and their blobs; it is written after its packs, so a blob
is only ever found through an index once its pack is stored.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import zstandard

from backend.repository.crypto import IntegrityError, MasterKeys
from backend.repository.model import RepositoryCorrupt
from backend.storage import NotFound, Storage

ZSTD_LEVEL = 6
INDEX_EVERY = 8  # packs per index file written while a snapshot is still being written


@dataclass(frozen=True, slots=True)
class BlobLocation:
    pack: str
    offset: int
    length: int  # sealed length in the pack
    raw: int  # plaintext length
    type: str


class Index:
    """Every known blob and where it lives, in two flat buffers; thread-safe.

    A repository holds hundreds of thousands of blobs, and a dict of Python objects costs about 180 bytes
    for each (and scatters them over the allocator's arenas for the whole run). Here a blob is one fixed
    row of a bytearray (id, pack number, offset, lengths, type: 49 bytes) plus an open-addressing table of
    row numbers (`array('I')`, at most half full) keyed by the id's first eight bytes, which are uniformly
    random because ids are keyed hashes: about 60 bytes a blob, in two allocations that never fragment.
    The methods take and give hex ids.
    """

    ROW = struct.Struct("<32sIIIIB")  # id, pack number, offset, sealed length, plaintext length, type
    TYPES = ("data", "tree")  # a blob's type is stored as its position here

    def __init__(self) -> None:
        self.rows = bytearray()
        self.count = 0
        self.slots = array("I", bytes(4 * 1024))  # row number + 1 (0 = empty); the size is a power of 2
        self.packs: list[str] = []
        self.pack_numbers: dict[str, int] = {}
        self.files: set[str] = set()
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return self.count

    def _find(self, key: bytes) -> tuple[int, int]:
        """(slot, row) of a 32-byte id; row is -1 when it is absent and slot is where it would go."""
        slots, rows, size = self.slots, self.rows, self.ROW.size
        mask = len(slots) - 1
        slot = int.from_bytes(key[:8], "little") & mask
        while True:
            row = slots[slot] - 1
            if row < 0:
                return slot, -1
            if rows[row * size : row * size + 32] == key:
                return slot, row
            slot = (slot + 1) & mask

    def _location(self, row: int) -> BlobLocation:
        _, pack, offset, length, raw, kind = self.ROW.unpack_from(self.rows, row * self.ROW.size)
        return BlobLocation(self.packs[pack], offset, length, raw, self.TYPES[kind])

    def get(self, blob_id: str) -> BlobLocation | None:
        with self.lock:
            _, row = self._find(bytes.fromhex(blob_id))
            return self._location(row) if row >= 0 else None

    def __contains__(self, blob_id: str) -> bool:
        with self.lock:
            return self._find(bytes.fromhex(blob_id))[1] >= 0

    def items(self) -> Iterator[tuple[str, BlobLocation]]:
        """(hex blob id, location) for every known blob."""
        for row in range(self.count):
            with self.lock:
                location = self._location(row)
                key = self.rows[row * self.ROW.size : row * self.ROW.size + 32]
            yield key.hex(), location

    def add_pack(self, pack: str, entries: list[list]) -> None:
        """Add one pack's blobs ([id, type, offset, length, raw] each); ValueError, adding none, if malformed."""
        with self.lock:
            number = self.pack_numbers.get(pack, len(self.packs))
            rows = []
            try:
                for blob_id, blob_type, offset, length, raw in entries:
                    key = bytes.fromhex(blob_id)
                    if len(key) != 32:
                        raise ValueError(f"blob id {blob_id!r} is not 32 bytes")
                    rows.append(self.ROW.pack(key, number, offset, length, raw, TYPE_CODES[blob_type]))
            except (KeyError, TypeError, ValueError, struct.error) as e:
                raise ValueError(f"pack {pack[:12]}: malformed index entry: {e!r}") from None
            if number == len(self.packs):
                self.packs.append(pack)
                self.pack_numbers[pack] = number
            for row in rows:
                slot, found = self._find(row[:32])
                if found >= 0:
                    continue  # the first pack that holds a blob stays its home
                self.rows += row
                self.count += 1
                self.slots[slot] = self.count
                if 2 * self.count > len(self.slots):
                    self._grow()

    def _grow(self) -> None:
        """Double the table and put every row back (ids are unique: each only needs a free slot)."""
        slots = array("I", bytes(8 * len(self.slots)))
        mask, size = len(slots) - 1, self.ROW.size
        with memoryview(self.rows) as view:
            for row in range(self.count):
                slot = int.from_bytes(view[row * size : row * size + 8], "little") & mask
                while slots[slot]:
                    slot = (slot + 1) & mask
                slots[slot] = row + 1
        self.slots = slots

    def load(self, storage: Storage, keys: MasterKeys, names: list[str] | None = None) -> list[str]:
        """Read index files (all, or the named ones) into memory; return the names that were damaged."""
        damaged = []
        for name in names if names is not None else list(storage.list("index")):
            if name in self.files:
                continue
            try:
                doc = json.loads(keys.open(storage.load("index", name), b"index"))
            except (IntegrityError, ValueError, NotFound):
                damaged.append(name)
                continue
            try:
                for pack in doc["packs"]:
                    self.add_pack(pack["id"], pack["blobs"])
            except (KeyError, TypeError, ValueError):
                damaged.append(name)
                continue
            self.files.add(name)
        return damaged


TYPE_CODES = {name: code for code, name in enumerate(Index.TYPES)}


_local = threading.local()


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    """One compressor and decompressor per thread: their contexts are megabytes, made once, not per blob."""
    if not hasattr(_local, "pair"):
        _local.pair = (zstandard.ZstdCompressor(level=ZSTD_LEVEL), zstandard.ZstdDecompressor())
    return _local.pair


def seal_blob(keys: MasterKeys, blob_id: str, plaintext: bytes) -> bytes:
    return keys.seal(_zstd()[0].compress(plaintext), bytes.fromhex(blob_id))


def open_blob(keys: MasterKeys, blob_id: str, sealed: bytes) -> bytes:
    """Decrypt, decompress and verify one blob; IntegrityError if anything does not match."""
    plaintext = _zstd()[1].decompress(keys.open(sealed, bytes.fromhex(blob_id)))
    if keys.blob_id(plaintext) != blob_id:
        raise IntegrityError(f"blob {blob_id[:12]} does not hash to its id")
    return plaintext


class Packer:
    """Collects sealed blobs into packs, uploads full packs, and writes index files on flush.

    Shared by every snapshot writer of one repository object; safe to call from many threads.
    """

    def __init__(self, storage: Storage, keys: MasterKeys, index: Index, pack_size: int) -> None:
        self.storage = storage
        self.keys = keys
        self.index = index
        self.pack_size = pack_size
        self.lock = threading.Condition()
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.header: list[list] = []
        self.pending: set[str] = set()  # in a buffer or an upload, not yet in the index
        self.in_flight = 0
        self.unindexed: list[dict] = []  # uploaded packs that no index file lists yet
        self.bytes_stored = 0
        self.packs_written = 0

    def add(self, blob_type: str, plaintext: bytes) -> tuple[str, bool]:
        """Store a blob unless it is known; return (id, whether new bytes were written)."""
        blob_id = self.keys.blob_id(plaintext)
        with self.lock:
            if blob_id in self.index or blob_id in self.pending:
                return blob_id, False
            self.pending.add(blob_id)
        sealed = seal_blob(self.keys, blob_id, plaintext)
        full = None
        with self.lock:
            self.header.append([blob_id, blob_type, self.buffered, len(sealed), len(plaintext)])
            self.buffer.append(sealed)
            self.buffered += len(sealed)
            if self.buffered >= self.pack_size:
                full = self._take()
        if full is not None:
            self._upload(*full)
        return blob_id, True

    def _take(self) -> tuple[list[bytes], list[list]] | None:
        if not self.buffer:
            return None
        taken = (self.buffer, self.header)
        self.buffer, self.header, self.buffered = [], [], 0
        self.in_flight += 1
        return taken

    def _upload(self, parts: list[bytes], header: list[list]) -> None:
        try:
            sealed_header = self.keys.seal(json.dumps(header).encode(), b"pack-header")
            data = b"".join(parts) + sealed_header + struct.pack("<I", len(sealed_header))
            name = hashlib.sha256(data).hexdigest()
            self.storage.save("data", name, data)
            with self.lock:
                self.index.add_pack(name, header)
                for entry in header:  # found through the index from now on
                    self.pending.discard(entry[0])
                self.unindexed.append({"id": name, "blobs": header})
                self.bytes_stored += len(data)
                # Index the uploaded packs every so often instead of holding every header until the
                # snapshot commits: memory stays flat on big projects, and the write order still holds
                # (these packs are already stored).
                ready, self.unindexed = (
                    (self.unindexed, []) if len(self.unindexed) >= INDEX_EVERY else ([], self.unindexed)
                )
            if ready:
                self._write_index(ready)
                self.packs_written += 1
        except BaseException:
            with self.lock:
                for entry in header:
                    self.pending.discard(entry[0])
            raise
        finally:
            with self.lock:
                self.in_flight -= 1
                self.lock.notify_all()

    def flush(self) -> None:
        """Upload the partial pack, wait for other uploads, then write one index file for new packs."""
        with self.lock:
            partial = self._take()
        if partial is not None:
            self._upload(*partial)
        with self.lock:
            while self.in_flight:
                self.lock.wait()
            packs, self.unindexed = self.unindexed, []
        if packs:
            self._write_index(packs)

    def _write_index(self, packs: list[dict]) -> None:
        data = self.keys.seal(json.dumps({"version": 1, "packs": packs}).encode(), b"index")
        name = hashlib.sha256(data).hexdigest()
        self.storage.save("index", name, data)
        with self.lock:
            self.index.files.add(name)
            self.bytes_stored += len(data)


def read_blob(storage: Storage, keys: MasterKeys, index: Index, blob_id: str) -> bytes:
    """Load one blob through the index."""
    where = index.get(blob_id)
    if where is None:
        raise RepositoryCorrupt(f"blob {blob_id[:12]} is in no index")
    try:
        sealed = storage.load("data", where.pack, where.offset, where.length)
    except NotFound:
        raise RepositoryCorrupt(f"pack {where.pack[:12]} holding blob {blob_id[:12]} is missing") from None
    try:
        return open_blob(keys, blob_id, sealed)
    except (IntegrityError, zstandard.ZstdError) as e:
        raise RepositoryCorrupt(f"blob {blob_id[:12]} in pack {where.pack[:12]} is damaged: {e}") from e


def read_pack_header(keys: MasterKeys, data: bytes) -> list[list]:
    """Parse a whole pack's trailing header."""
    if len(data) < 4:
        raise IntegrityError("pack too short")
    (length,) = struct.unpack("<I", data[-4:])
    if length + 4 > len(data):
        raise IntegrityError("pack header length is out of range")
    return json.loads(keys.open(data[-4 - length : -4], b"pack-header"))
