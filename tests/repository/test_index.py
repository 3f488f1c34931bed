"""The in-memory blob index: every blob found where its pack put it, however many, from many threads."""

from __future__ import annotations

import os
import random
import threading

import pytest

from backend.repository import Repository
from backend.repository.packs import BlobLocation, Index
from backend.storage import open_storage


def _pack(n: int, rng: random.Random) -> list[list]:
    offset, entries = 0, []
    for _ in range(n):
        length = rng.randrange(40, 5000)
        entries.append([os.urandom(32).hex(), rng.choice(Index.TYPES), offset, length, length * 3])
        offset += length
    return entries


def test_every_blob_is_found_at_its_place_after_the_table_grows_many_times():
    rng = random.Random(3)
    index = Index()
    packs = {os.urandom(32).hex(): _pack(rng.randrange(1, 400), rng) for _ in range(150)}
    for name, entries in packs.items():
        index.add_pack(name, entries)
    expected = {
        blob: BlobLocation(name, offset, length, raw, kind)
        for name, entries in packs.items()
        for blob, kind, offset, length, raw in entries
    }
    assert len(index) == len(expected) > 4 * 1024  # past the first table size, so it grew
    assert all(index.get(blob) == where for blob, where in expected.items())
    assert dict(index.items()) == expected
    strangers = [os.urandom(32).hex() for _ in range(2000)]
    assert not any(s in index for s in strangers)
    assert all(index.get(s) is None for s in strangers)


def test_a_blob_stored_twice_keeps_its_first_pack():
    index = Index()
    blob = os.urandom(32).hex()
    index.add_pack("a" * 64, [[blob, "data", 0, 10, 20]])
    index.add_pack("b" * 64, [[blob, "data", 50, 10, 20], [os.urandom(32).hex(), "tree", 60, 5, 9]])
    assert index.get(blob) == BlobLocation("a" * 64, 0, 10, 20, "data")
    assert len(index) == 2


def test_readers_see_every_blob_while_writers_add_packs():
    index = Index()
    added: list[str] = []
    lock = threading.Lock()
    missing: list[str] = []
    stop = threading.Event()

    def write(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(40):
            entries = _pack(100, rng)
            index.add_pack(os.urandom(32).hex(), entries)
            with lock:
                added.extend(e[0] for e in entries)

    def read() -> None:
        while not stop.is_set():
            with lock:
                sample = random.sample(added, min(50, len(added)))
            missing.extend(b for b in sample if b not in index)

    writers = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not missing
    assert len(index) == len(added) == 3 * 40 * 100


def test_the_packer_forgets_blobs_in_flight_once_the_index_has_them(tmp_path):
    repo = Repository.init(open_storage(f"file://{tmp_path}/repo"), "pw", pack_size=4096)
    writer = repo.start_snapshot("ABC", "http://site")
    for n in range(300):
        writer.add_json(f"issues/ABC-{n}", {"n": n, "text": os.urandom(200).hex()}, "issue")
    writer.commit()
    assert repo.packer.pending == set()  # nothing held per blob after the snapshot
    assert len(repo.index) >= 300


@pytest.mark.parametrize(
    "bad",
    [
        [os.urandom(31).hex(), "data", 10, 10, 20],  # an id of the wrong length
        [os.urandom(32).hex(), "blob", 10, 10, 20],  # a type this format does not know
        [os.urandom(32).hex(), "data", -1, 10, 20],  # a negative offset
        [os.urandom(32).hex(), "data", 1 << 40, 10, 20],  # an offset no pack reaches
        ["not hex", "data", 10, 10, 20],
    ],
)
def test_a_malformed_pack_entry_is_refused_whole(bad):
    index = Index()
    good = [os.urandom(32).hex(), "data", 0, 10, 20]
    with pytest.raises(ValueError, match="malformed index entry"):
        index.add_pack("c" * 64, [good, bad])
    assert len(index) == 0 and good[0] not in index and index.packs == []
