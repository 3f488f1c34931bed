"""What a restore will do, decided before anything is written: selection, target, order, and known losses.

Order: target project and its configuration, then issues level by level (epics, then their children, then
sub-tasks) so every parent exists before its children, then per issue its comments, worklogs,
attachments and watchers, and last the links between issues (both ends must exist).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.repository import Repository, RepositoryError, Snapshot

PARTS = ("configuration", "issues", "comments", "worklogs", "attachments", "links", "watchers")
TARGETS = ("original", "existing", "new")


class RestoreError(Exception):
    """The restore cannot go ahead as asked; the message says why and what to do."""


@dataclass
class RestoreRequest:
    """What to restore (issues, a filter, or the whole project) and where to."""

    snapshot_id: str
    issues: list[str] | None = None
    whole_project: bool = False
    filter: dict[str, str] = field(default_factory=dict)
    target: str = "original"
    target_key: str | None = None
    target_name: str | None = None
    parts: set[str] = field(default_factory=lambda: set(PARTS))
    overwrite: bool = False

    def validate(self) -> None:
        if self.target not in TARGETS:
            raise RestoreError(f"target must be one of {', '.join(TARGETS)}")
        if self.target in ("existing", "new") and not self.target_key:
            raise RestoreError(
                f"a restore to {'another' if self.target == 'existing' else 'a new'} project needs its key"
            )
        if not (self.issues or self.whole_project or self.filter):
            raise RestoreError("say what to restore: issue keys, a filter, or the whole project")
        unknown = self.parts - set(PARTS)
        if unknown:
            raise RestoreError(f"unknown parts {', '.join(sorted(unknown))} (known: {', '.join(PARTS)})")


@dataclass
class PlannedIssue:
    key: str
    doc: dict[str, Any]
    parent: str | None  # original key of the parent, if any
    level: int


@dataclass
class RestorePlan:
    request: RestoreRequest
    snapshot: Snapshot
    project: dict[str, Any]
    issues: list[PlannedIssue]
    levels: list[list[PlannedIssue]]
    counts: dict[str, int]
    notes: list[str]

    @property
    def source_project(self) -> str:
        return self.snapshot.info.project

    def describe(self) -> list[str]:
        """Human-readable lines for --dry-run."""
        r = self.request
        target = {
            "original": f"the original project {self.source_project}",
            "existing": f"the existing project {r.target_key}",
            "new": f"a new project {r.target_key}",
        }[r.target]
        lines = [
            f"restore from snapshot {self.snapshot.info.short_id} ({self.snapshot.info.time}) into {target}",
            f"parts: {', '.join(p for p in PARTS if p in r.parts)}",
        ]
        lines += [f"  {name}: {n}" for name, n in self.counts.items()]
        for i, level in enumerate(self.levels):
            lines.append(
                f"  step {i + 1}: {len(level)} issues ({', '.join(p.key for p in level[:5])}"
                f"{', ...' if len(level) > 5 else ''})"
            )
        lines += [f"note: {n}" for n in self.notes]
        return lines


def _matches(doc: dict[str, Any], flt: dict[str, str]) -> bool:
    fields = doc.get("fields") or {}
    for name, wanted in flt.items():
        value = fields.get(name)
        if isinstance(value, dict):
            value = value.get("name") or value.get("value") or value.get("key")
        if isinstance(value, list):
            if wanted not in [v if isinstance(v, str) else (v.get("name") or v.get("value")) for v in value]:
                return False
        elif str(value) != wanted:
            return False
    return True


def build_plan(repo: Repository, request: RestoreRequest) -> RestorePlan:
    """Read the snapshot and decide the order; raises RestoreError for anything that cannot work."""
    request.validate()
    try:
        snapshot = repo.snapshot(request.snapshot_id)
    except RepositoryError as e:
        raise RestoreError(str(e)) from e
    entries = snapshot.entries
    project_entry = entries.get("project")
    if project_entry is None:
        raise RestoreError(f"snapshot {snapshot.info.short_id} holds no project")
    project = repo.read_json(project_entry)
    issue_entries = {e.name.split("/", 1)[1]: e for e in entries.values() if e.kind == "issue"}
    if request.issues:
        wanted = [k.upper() for k in request.issues]
        missing = [k for k in wanted if k not in issue_entries]
        if missing:
            raise RestoreError(f"not in snapshot {snapshot.info.short_id}: {', '.join(missing)}")
        selected = {k: repo.read_json(issue_entries[k]) for k in wanted}
    else:
        selected = {}
        for key, entry in issue_entries.items():
            doc = repo.read_json(entry)
            if _matches(doc, request.filter):
                selected[key] = doc
    notes = []
    planned: dict[str, PlannedIssue] = {}
    for key, doc in selected.items():
        parent = ((doc.get("fields") or {}).get("parent") or {}).get("key")
        planned[key] = PlannedIssue(key, doc, parent, 0)

    def level(p: PlannedIssue, seen: set[str]) -> int:
        if p.parent is None or p.parent not in planned or p.parent in seen:
            return 0
        return 1 + level(planned[p.parent], seen | {p.key})

    for p in planned.values():
        p.level = level(p, set())
        if p.parent and p.parent not in planned:
            notes.append(
                f"{p.key}: its parent {p.parent} is not restored with it; it is linked to the parent "
                "if that still exists in the target, else restored without one"
            )
    depth = max((p.level for p in planned.values()), default=-1) + 1
    levels = [
        sorted((p for p in planned.values() if p.level == d), key=lambda p: _num(p.key)) for d in range(depth)
    ]
    counts = {"issues": len(planned)}
    for part in ("comments", "worklogs"):
        if part in request.parts:
            counts[part] = sum(
                len(repo.read_json(entries[f"{part}/{k}"])) for k in planned if f"{part}/{k}" in entries
            )
    if "attachments" in request.parts:
        counts["attachments"] = sum(
            1 for e in entries.values() if e.kind == "attachment" and e.name.split("/")[1] in planned
        )
    if "links" in request.parts:
        counts["links"] = len(link_set(planned.values()))
    from backend.restore.config_objects import Backup, wanted

    if wanted(request):
        config = Backup(repo, entries, project)
        counts.update(config.counts())
        notes += config.notes()
    notes.append(
        "Jira sets creation times, authors and keys itself: originals are kept in the label "
        "restored-from-KEY, the issue property keepstone.restore and a note on comments and worklogs"
    )
    return RestorePlan(request, snapshot, project, list(planned.values()), levels, counts, notes)


def link_set(issues) -> set[tuple[str, str, str]]:
    """The links of these issues as (type, inward key, outward key): a link between two of them is listed
    by both ends in the backup, and counts once."""
    out = set()
    for p in issues:
        for link in (p.doc.get("fields") or {}).get("issuelinks") or []:
            if "outwardIssue" in link:
                out.add((link["type"]["name"], p.key, link["outwardIssue"]["key"]))
            elif "inwardIssue" in link:
                out.add((link["type"]["name"], link["inwardIssue"]["key"], p.key))
    return out


def _num(key: str) -> tuple[str, int]:
    project, _, number = key.rpartition("-")
    return project, int(number) if number.isdigit() else 0
