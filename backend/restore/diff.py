"""An issue across snapshots: its versions, and what changed between two of them."""

from __future__ import annotations

from typing import Any

from backend.repository import Repository, RepositoryError

SKIP = {"updated", "statuscategorychangedate", "lastViewed"}


def history(repo: Repository, key: str) -> list[dict[str, Any]]:
    """Every snapshot holding the issue, with the version it holds (same blob = same version)."""
    project = key.rsplit("-", 1)[0]
    out = []
    for info in repo.snapshots(project):
        entry = repo.snapshot(info.id).entry(f"issues/{key}")
        if entry is not None:
            out.append(
                {
                    "snapshot": info.short_id,
                    "time": info.time,
                    "updated": entry.attrs.get("updated"),
                    "version": entry.blobs[0][:12],
                }
            )
    return out


def _flat(value: Any) -> Any:
    if isinstance(value, dict):
        for k in ("accountId", "value", "name", "key"):
            if k in value and value.get("type") != "doc":
                return value[k]
    if isinstance(value, list):
        return [_flat(v) for v in value]
    return value


def diff(repo: Repository, key: str, first: str, second: str) -> dict[str, Any]:
    """Field by field and comment by comment differences of an issue between two snapshots."""
    docs = []
    for snap_id in (first, second):
        snap = repo.snapshot(snap_id)
        entry = snap.entry(f"issues/{key}")
        if entry is None:
            raise RepositoryError(f"{key} is not in snapshot {snap.info.short_id}")
        comments = snap.entry(f"comments/{key}")
        docs.append((repo.read_json(entry), repo.read_json(comments) if comments else []))
    (a, ca), (b, cb) = docs
    fa, fb = a.get("fields") or {}, b.get("fields") or {}
    fields = {}
    for name in sorted(set(fa) | set(fb)):
        if name in SKIP or name in ("comment", "worklog"):
            continue
        if _flat(fa.get(name)) != _flat(fb.get(name)):
            fields[name] = {"from": _flat(fa.get(name)), "to": _flat(fb.get(name))}
    ids_a, ids_b = {c["id"] for c in ca}, {c["id"] for c in cb}
    return {
        "issue": key,
        "fields": fields,
        "comments_added": sorted(ids_b - ids_a),
        "comments_removed": sorted(ids_a - ids_b),
    }
