"""The repository's shared vocabulary: entries, snapshot summaries, errors, canonical JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 1


class RepositoryError(Exception):
    """The repository cannot do what was asked: {detail}."""


class RepositoryLocked(RepositoryError):
    """Another process holds a conflicting lock."""


class RepositoryCorrupt(RepositoryError):
    """The repository's structure or data is damaged."""


@dataclass
class Entry:
    """One named item of a snapshot: an issue document, a comment list, an attachment's bytes, ..."""

    name: str
    kind: str
    blobs: list[str]
    size: int
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "blobs": self.blobs,
            "size": self.size,
            "attrs": self.attrs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(
            data["name"], data["kind"], list(data["blobs"]), int(data["size"]), dict(data.get("attrs") or {})
        )


@dataclass
class SnapshotInfo:
    """What a snapshot file says about itself, without its entries."""

    id: str
    time: str
    project: str
    site: str
    parent: str | None
    meta: dict[str, Any]
    entry_count: int
    size: int  # bytes of plaintext the snapshot references

    @property
    def short_id(self) -> str:
        return self.id[:8]


def canonical_json(doc: Any) -> bytes:
    """Serialise JSON the same way every time, so equal documents get equal blob ids."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
