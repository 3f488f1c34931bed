"""An issue across snapshots: its versions, and what changed between two of them."""

from __future__ import annotations

from typing import Any

from backend.repository import Repository, RepositoryError
from keepstone.render import changes, field_names, value_text

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
        site_fields = snap.entry("site/fields")
        names = field_names(repo.read_json(site_fields))[0] if site_fields else {}
    (a, ca), (b, cb) = docs
    fa, fb = a.get("fields") or {}, b.get("fields") or {}
    fields = {}
    for name in sorted(set(fa) | set(fb)):
        if name in SKIP or name in ("comment", "worklog"):
            continue
        if _flat(fa.get(name)) != _flat(fb.get(name)):
            fields[name] = {
                "name": f"{names[name]} ({name})"
                if name.startswith("customfield_") and name in names
                else name,
                "from": _flat(fa.get(name)),
                "to": _flat(fb.get(name)),
                "changes": changes(fa.get(name), fb.get(name)),  # structural, never cut short
            }
    ids_a, ids_b = {c["id"] for c in ca}, {c["id"] for c in cb}
    bodies_a = {c["id"]: c.get("body") for c in ca}
    changed = {
        c["id"]: changes(bodies_a[c["id"]], c.get("body"))
        for c in cb
        if c["id"] in bodies_a and value_text(bodies_a[c["id"]]) != value_text(c.get("body"))
    }
    return {
        "issue": key,
        "fields": fields,
        "comments_added": sorted(ids_b - ids_a),
        "comments_removed": sorted(ids_a - ids_b),
        "comments_changed": changed,
    }
