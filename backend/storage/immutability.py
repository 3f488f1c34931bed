"""Retention settings of an immutable storage (S3 Object Lock, Azure blob immutability policies).

A storage given a `Retention` sets it on every object it writes of the kinds that hold backed-up data or
the means to read it (config, keys, data, index, snapshots), and never overwrites such an object. Lock
files and keep marks are not retained: a lock must be removable when its holder ends, and a keep mark is
advice an admin may take back (the snapshot it names is retained anyway).

Modes: `governance` (S3 GOVERNANCE, Azure "Unlocked"): a privileged caller may remove an object early, and
Keepstone does so only when the admin asks explicitly (`bypass_governance`); `compliance` (S3 COMPLIANCE,
Azure "Locked"): nobody can, before the retention ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

MODES = ("governance", "compliance")
RETAINED_KINDS = ("config", "keys", "data", "index", "snapshots")
PROBE_PREFIX = "keepstone-probe-"  # lock names the repository's lock reader skips


@dataclass(frozen=True)
class Retention:
    mode: str
    period: timedelta
    bypass_governance: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown immutability mode {self.mode!r}: use governance or compliance")
        if self.period <= timedelta(0):
            raise ValueError("a retention period is a positive duration")
        if self.bypass_governance and self.mode != "governance":
            raise ValueError("only governance retention can be bypassed; compliance never")

    @classmethod
    def from_settings(
        cls, settings: dict[str, Any] | None, bypass_governance: bool = False
    ) -> Retention | None:
        """A storage record's `immutability` ({"mode", "retain_days"}) as a Retention; None for mode none."""
        settings = settings or {}
        mode = settings.get("mode", "none")
        if mode in ("none", None):
            return None
        days = settings.get("retain_days")
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise ValueError(f"immutability {mode} needs retain_days, a whole number of days >= 1")
        return cls(mode, timedelta(days=days), bypass_governance and mode == "governance")

    def applies(self, kind: str) -> bool:
        return kind in RETAINED_KINDS

    def describe(self) -> str:
        days = self.period / timedelta(days=1)
        span = f"{days:g} days" if days >= 1 else f"{self.period.total_seconds():g} s"
        return f"{self.mode} retention of {span}"
