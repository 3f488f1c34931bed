"""The audit log's hash chain: each event's hash is sha256(previous hash + the event's canonical JSON).

Editing, removing or inserting a row breaks every hash from there on, which `verify` finds. The first
event's previous hash is GENESIS.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
# The fields a hash covers, in the order they are written (the JSON is sorted anyway).
HASHED = (
    "seq",
    "time",
    "cloud_id",
    "actor_kind",
    "actor",
    "actor_name",
    "address",
    "action",
    "target_id",
    "target_name",
    "changes",
    "details",
)


def moment(value: datetime) -> str:
    """The event time as hashed: UTC, microseconds (SQLite hands back naive UTC datetimes)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(event: dict[str, Any]) -> str:
    body = {k: event.get(k) for k in HASHED}
    body["time"] = moment(body["time"]) if isinstance(body["time"], datetime) else body["time"]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(prev_hash: str, event: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


@dataclass
class Verdict:
    """What `verify` found: how many events it checked and the first broken one, if any."""

    checked: int
    broken_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify(events: Iterable[dict[str, Any]]) -> Verdict:
    """Check the chain of events given in `seq` order: numbering without gaps, prev links, hashes."""
    prev, expected, checked = GENESIS, 1, 0
    for event in events:
        seq = event["seq"]
        if seq != expected:
            return Verdict(checked, expected, f"event {expected} is missing (found {seq} next)")
        if event["prev_hash"] != prev:
            return Verdict(checked, seq, "its previous hash is not the hash of the event before it")
        if digest(prev, event) != event["hash"]:
            return Verdict(checked, seq, "its content does not match its hash (changed after it was written)")
        prev, expected, checked = event["hash"], seq + 1, checked + 1
    return Verdict(checked)
