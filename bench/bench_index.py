"""The in-memory blob index, side by side with the plain dict of location objects it replaced:
bytes held per blob (tracemalloc), and the time to add and to look up every blob of a large repository.
"""

from __future__ import annotations

import os
import time
import tracemalloc

from backend.repository.packs import BlobLocation, Index


class DictIndex:
    """The first design: a dict from the 32 raw id bytes to a location object."""

    def __init__(self) -> None:
        self.blobs: dict[bytes, BlobLocation] = {}

    def add_pack(self, pack: str, entries: list[list]) -> None:
        for blob_id, blob_type, offset, length, raw in entries:
            self.blobs.setdefault(bytes.fromhex(blob_id), BlobLocation(pack, offset, length, raw, blob_type))

    def __contains__(self, blob_id: str) -> bool:
        return bytes.fromhex(blob_id) in self.blobs


def _packs(blobs: int, per_pack: int = 500) -> list[tuple[str, list[list]]]:
    out = []
    for _ in range(0, blobs, per_pack):
        offset, entries = 0, []
        for _ in range(per_pack):
            entries.append([os.urandom(32).hex(), "data", offset, 1200 + offset % 977, 4000 + offset % 1511])
            offset += 1200 + offset % 977
        out.append((os.urandom(32).hex(), entries))
    return out


def _build(factory, packs: list[tuple[str, list[list]]]):
    index = factory()
    for name, entries in packs:
        index.add_pack(name, entries)
    return index


def _measure(factory, packs: list[tuple[str, list[list]]], probes: list[str]) -> dict[str, float]:
    tracemalloc.start()  # memory in one build, time in another: tracing slows allocation-heavy code most
    index = _build(factory, packs)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del index
    started = time.perf_counter()
    index = _build(factory, packs)
    added = time.perf_counter() - started
    started = time.perf_counter()
    found = sum(1 for p in probes if p in index)
    looked = time.perf_counter() - started
    blobs = sum(len(e) for _, e in packs)
    return {"bytes_per_blob": held / blobs, "add_s": added, "lookup_s": looked, "found": found}


def run(quick: bool) -> dict[str, object]:
    blobs = 100_000 if quick else 1_000_000
    packs = _packs(blobs)
    probes = [e[0] for _, entries in packs[::7] for e in entries] + [
        os.urandom(32).hex() for _ in range(20_000)
    ]
    compact = _measure(Index, packs, probes)
    plain = _measure(DictIndex, packs, probes)
    assert compact["found"] == plain["found"]
    return {
        "blobs": blobs,
        "compact_bytes_per_blob": round(compact["bytes_per_blob"], 1),
        "dict_bytes_per_blob": round(plain["bytes_per_blob"], 1),
        "compact_vs_dict_memory": round(compact["bytes_per_blob"] / plain["bytes_per_blob"], 3),
        "compact_vs_dict_add_time": round(compact["add_s"] / plain["add_s"], 2),
        "compact_vs_dict_lookup_time": round(compact["lookup_s"] / plain["lookup_s"], 2),
        "compact_adds_per_s": round(blobs / compact["add_s"]),
        "compact_lookups_per_s": round(len(probes) / compact["lookup_s"]),
    }
