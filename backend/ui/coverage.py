"""Which plans cover which projects, for "also in plan X" on the plans list and the plan form.

A project in two plans is allowed (two schedules, two rotations, two storages); the pages only say so.
Coverage is decided like a run decides it (ProjectSelection.matches) over the site's projects as Jira lists
them now; without that list (Jira unreachable, no token) only selected keys are known.
"""

from __future__ import annotations

from typing import Any

from backend.backup.spec import ProjectSelection, ProjectSelectionSchema


def selection_of(projects: dict[str, Any]) -> ProjectSelection | None:
    try:
        return ProjectSelectionSchema().load(projects)
    except Exception:  # an incomplete rule while the form is being filled in covers nothing yet
        return None


def covered(projects: dict[str, Any], site: list[dict[str, Any]] | None) -> set[str]:
    """The keys a plan's project selection covers today (selected keys alone when the site is unknown)."""
    selection = selection_of(projects)
    if selection is None:
        return set()
    if selection.mode == "selected":
        return set(selection.keys)
    if site is None:
        return set()
    return {p["key"] for p in site if selection.matches(p)}


def overlaps(
    plans: list[tuple[str, str, dict[str, Any]]], site: list[dict[str, Any]] | None
) -> dict[str, list[tuple[str, list[str]]]]:
    """For each plan id: the other plans that cover some of its projects, with those keys.

    `plans` are (plan id, name, spec["projects"]); the answer keeps the given order of the other plans."""
    keys = {pid: covered(projects, site) for pid, _, projects in plans}
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for pid, _, _ in plans:
        out[pid] = [
            (name, sorted(keys[pid] & keys[other]))
            for other, name, _ in plans
            if other != pid and keys[pid] & keys[other]
        ]
    return out


def also_in(
    mine: set[str], others: list[tuple[str, str, dict[str, Any]]], site: list[dict[str, Any]] | None
) -> dict[str, list[str]]:
    """For each key of `mine`: the names of the other plans covering it too."""
    out: dict[str, list[str]] = {}
    for _, name, projects in others:
        for key in sorted(mine & covered(projects, site)):
            out.setdefault(key, []).append(name)
    return out


def of_plans(plans: list[Any], site: list[dict[str, Any]] | None) -> dict[str, list[tuple[str, list[str]]]]:
    """`overlaps` of Plan rows."""
    return overlaps([(p.public_id, p.name, (p.spec or {}).get("projects") or {}) for p in plans], site)
