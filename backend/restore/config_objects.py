"""The project's configuration objects in a backup, and how their names, JQL and settings read in a target.

What belongs to the project: its boards (the backup's `config/boards` and `config/board-configuration`),
the filters those boards show, filters whose JQL names the project or that are shared with it, dashboards
shared with it (all from the backup's `site/filters` and `site/dashboards`), and the members of its roles
(`config/role-actors`). Into another project key, JQL and names are rewritten to the new key (the token
`PLAT` becomes `PLATR`); a filter or dashboard whose name does not hold the key gets ` (PLATR)` appended.
"""

from __future__ import annotations

import re
from typing import Any

from backend.repository import Repository

BOARD_FILTER_JQL = "project = {key} ORDER BY Rank ASC"


# --- what belongs to the project, and how it reads in the target ------------------------------------


def issue_key_pattern(key: str) -> re.Pattern[str]:
    """An issue key of the project in JQL (PLAT-12)."""
    return re.compile(rf"(?<![\w.-]){re.escape(key)}-\d+(?![\w-])", re.IGNORECASE)


def key_token(key: str) -> re.Pattern[str]:
    """The project key as a JQL token: not part of a longer word or of an issue key (PLAT-12)."""
    return re.compile(rf"(?<![\w.-]){re.escape(key)}(?![\w-])", re.IGNORECASE)


def rewrite_jql(jql: str, old_key: str, new_key: str, old_id: str = "", new_id: str = "") -> str:
    """JQL of the source project rewritten to the target: its key (and `project = <id>`) replaced."""
    if old_key.upper() == new_key.upper() and old_id == new_id:
        return jql
    out = key_token(old_key).sub(new_key, jql)
    if old_id and new_id:
        out = re.sub(
            rf"(\bproject\s*(?:=|!=)\s*\"?){re.escape(old_id)}\b", rf"\g<1>{new_id}", out, flags=re.I
        )
    return out


def mentions(jql: str, key: str) -> bool:
    return bool(key_token(key).search(jql or ""))


def _shared_with(item: dict[str, Any], project_id: str) -> bool:
    return any(
        str((s.get("project") or {}).get("id")) == str(project_id)
        for s in (item.get("sharePermissions") or []) + (item.get("editPermissions") or [])
    )


class Backup:
    """The configuration objects of the backed-up project, read from its snapshot."""

    def __init__(self, repo: Repository, entries: dict[str, Any], project: dict[str, Any]) -> None:
        def read(name: str) -> Any:
            return repo.read_json(entries[name]) if name in entries else None

        self.key, self.id = project["key"], str(project["id"])
        self.boards: list[dict[str, Any]] = read("config/boards") or []
        configs = read("config/board-configuration") or []
        self.board_config = {c["id"]: c for c in configs}
        self.has_roles = "config/roles" in entries
        self.roles: list[dict[str, Any]] | None = read("config/role-actors")
        site_filters = read("site/filters") or []
        board_filters = {str((c.get("filter") or {}).get("id")) for c in configs}
        self.filters = [
            f
            for f in site_filters
            if str(f["id"]) in board_filters
            or mentions(f.get("jql", ""), self.key)
            or _shared_with(f, self.id)
        ]
        self.missing_filters = sorted(board_filters - {str(f["id"]) for f in site_filters} - {"None"})
        self.dashboards = [d for d in read("site/dashboards") or [] if _shared_with(d, self.id)]

    def role_members(self) -> int:
        return sum(len(r.get("actors") or []) for r in self.roles or [])

    def counts(self) -> dict[str, int]:
        out = {"boards": len(self.boards), "filters": len(self.filters), "dashboards": len(self.dashboards)}
        if self.roles is not None:
            out["role members"] = self.role_members()
        return out

    def notes(self) -> list[str]:
        out = []
        if self.boards:
            out.append(
                "board columns cannot be set through Jira's REST API: where a restored board's columns differ "
                "from the backup (config/board-configuration) they are listed, to be set in the board's settings"
            )
        if self.dashboards:
            out.append(
                "dashboard gadgets come back with their default settings (gadget settings are not backed up)"
            )
        if self.has_roles and self.roles is None:
            out.append(
                "project role members: this backup holds the roles' names only (made before members were)"
            )
        return out


def target_name(name: str, old_key: str, new_key: str, same_project: bool, suffix: bool = True) -> str:
    """An object's name in the target: the key rewritten; else ` (NEWKEY)` appended (`suffix`), since the
    original may still exist beside it."""
    if same_project:
        return name
    renamed = key_token(old_key).sub(new_key, name)
    return renamed if renamed != name or not suffix else f"{name} ({new_key})"


def map_ids(value: Any, filters: dict[str, str], old_project: str, new_project: str) -> Any:
    """Gadget settings with restored filter ids and the project id mapped (whole values, or `filter-ID`
    and `project-ID`); anything else as it was."""
    if isinstance(value, dict):
        return {k: map_ids(v, filters, old_project, new_project) for k, v in value.items()}
    if isinstance(value, list):
        return [map_ids(v, filters, old_project, new_project) for v in value]
    if isinstance(value, str):
        prefix, _, ident = value.rpartition("-")
        if prefix in ("", "filter") and ident in filters:
            return f"{prefix}-{filters[ident]}" if prefix else filters[ident]
        if prefix in ("", "project") and ident == old_project and new_project:
            return f"{prefix}-{new_project}" if prefix else new_project
    return value


def wanted(request: Any) -> bool:
    """Boards, filters, dashboards and role members are the project's: restored with the whole project
    (`--project`, part configuration) or when configuration alone is asked for, not with a few issues."""
    return "configuration" in request.parts and (request.whole_project or request.parts <= {"configuration"})


def columns_of(config: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """A board's columns as (name, status ids) in order."""
    return [
        (c.get("name", ""), tuple(str(s.get("id")) for s in c.get("statuses") or []))
        for c in (config.get("columnConfig") or {}).get("columns") or []
    ]


def columns_text(columns: list[tuple[str, tuple[str, ...]]]) -> str:
    return " | ".join(f"{name} [{', '.join(ids)}]" for name, ids in columns)
