"""What a backup covers: which projects, which data, what to leave out. JSON in, JSON out, validated."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

# Every switchable kind of data, with its default and why some are off by default.
DATA_DEFAULTS: dict[str, bool] = {
    "issues": True,
    "comments": True,
    "worklogs": True,
    "attachments": True,
    "links": True,
    "hierarchy": True,
    "configuration": True,
    "users": True,
    "changelog": False,  # history beyond the last 40 changes costs extra requests per issue
    "watchers": False,  # Jira has no bulk read: one request per watched issue
    "votes": False,  # one request per issue with votes
    "remotelinks": False,  # one request per issue
    "properties": False,  # one request per issue
}
NEEDS_ISSUES = {
    "comments",
    "worklogs",
    "attachments",
    "links",
    "hierarchy",
    "changelog",
    "watchers",
    "votes",
    "remotelinks",
    "properties",
}
PROJECT_MODES = ("all", "selected", "rule")
CORRUPT_POLICIES = ("skip", "fail")


class SpecError(ValueError):
    """The backup specification is invalid; `fields` says where."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


@dataclass
class ProjectSelection:
    """All projects, selected keys, or a rule over key/name pattern, category, type and archived state."""

    mode: str = "all"
    keys: list[str] = field(default_factory=list)
    key_pattern: str | None = None  # shell-style, e.g. "PAY*"
    name_pattern: str | None = None  # regular expression, case-insensitive
    categories: list[str] = field(default_factory=list)
    project_types: list[str] = field(default_factory=list)
    include_archived: bool = False

    def matches(self, project: dict[str, Any]) -> bool:
        """Whether a project (as /project/search returns it) is selected."""
        if project.get("archived") and not self.include_archived and self.mode != "selected":
            return False
        if self.mode == "all":
            return True
        if self.mode == "selected":
            return project["key"] in self.keys
        if self.key_pattern and not fnmatch.fnmatchcase(project["key"], self.key_pattern):
            return False
        if self.name_pattern and not re.search(self.name_pattern, project.get("name", ""), re.IGNORECASE):
            return False
        category = (project.get("projectCategory") or {}).get("name")
        if self.categories and category not in self.categories:
            return False
        return not (self.project_types and project.get("projectTypeKey") not in self.project_types)


@dataclass
class BackupSpec:
    """A backup plan's selection; `from_dict`/`to_dict` are the stored and transmitted form."""

    projects: ProjectSelection = field(default_factory=ProjectSelection)
    data: dict[str, bool] = field(default_factory=lambda: dict(DATA_DEFAULTS))
    exclude_jql: str | None = None
    corrupt_attachments: str = "skip"
    max_workers: int = 8
    incremental: bool = True

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> BackupSpec:
        """Build and validate a spec; unknown keys and wrong values are SpecErrors naming the field."""
        raw = dict(raw or {})
        errors: dict[str, str] = {}
        known = {"projects", "data", "exclude_jql", "corrupt_attachments", "max_workers", "incremental"}
        for key in raw.keys() - known:
            errors[key] = "unknown field"
        projects_raw = dict(raw.get("projects") or {})
        selection_fields = set(ProjectSelection.__dataclass_fields__)
        for key in projects_raw.keys() - selection_fields:
            errors[f"projects.{key}"] = "unknown field"
        selection = ProjectSelection(**{k: v for k, v in projects_raw.items() if k in selection_fields})
        if selection.mode not in PROJECT_MODES:
            errors["projects.mode"] = f"must be one of {', '.join(PROJECT_MODES)}"
        if not isinstance(selection.keys, list) or not all(isinstance(k, str) for k in selection.keys):
            errors["projects.keys"] = "must be a list of project keys"
        else:
            selection.keys = [k.strip().upper() for k in selection.keys if k.strip()]
            if selection.mode == "selected" and not selection.keys:
                errors["projects.keys"] = "name at least one project key when mode is 'selected'"
        if selection.name_pattern:
            try:
                re.compile(selection.name_pattern)
            except re.error as e:
                errors["projects.name_pattern"] = f"not a valid regular expression: {e}"
        if selection.mode == "rule" and not (
            selection.key_pattern or selection.name_pattern or selection.categories or selection.project_types
        ):
            errors["projects"] = "a rule needs a key_pattern, name_pattern, categories or project_types"
        data = dict(DATA_DEFAULTS)
        data_raw = raw.get("data") or {}
        if isinstance(data_raw, list):  # a list of kinds to include
            data_raw = {k: (k in data_raw) for k in DATA_DEFAULTS} | {k: True for k in data_raw}
        if not isinstance(data_raw, dict):
            errors["data"] = "must be an object of kind: true/false, or a list of kinds"
            data_raw = {}
        for key, value in data_raw.items():
            if key not in DATA_DEFAULTS:
                errors[f"data.{key}"] = f"unknown kind of data (known: {', '.join(DATA_DEFAULTS)})"
            elif not isinstance(value, bool):
                errors[f"data.{key}"] = "must be true or false"
            else:
                data[key] = value
        policy = raw.get("corrupt_attachments", "skip")
        if policy not in CORRUPT_POLICIES:
            errors["corrupt_attachments"] = "must be 'skip' or 'fail'"
        workers = raw.get("max_workers", 8)
        if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 32:
            errors["max_workers"] = "must be a whole number from 1 to 32"
        exclude = raw.get("exclude_jql")
        if exclude is not None and (not isinstance(exclude, str) or not exclude.strip()):
            errors["exclude_jql"] = "must be a non-empty JQL string or null"
        incremental = raw.get("incremental", True)
        if not isinstance(incremental, bool):
            errors["incremental"] = "must be true or false"
        if errors:
            raise SpecError("the backup specification is invalid", errors)
        return cls(selection, data, exclude.strip() if exclude else None, policy, workers, incremental)

    def to_dict(self) -> dict[str, Any]:
        return {
            "projects": dict(self.projects.__dict__),
            "data": dict(self.data),
            "exclude_jql": self.exclude_jql,
            "corrupt_attachments": self.corrupt_attachments,
            "max_workers": self.max_workers,
            "incremental": self.incremental,
        }

    def resolved(self) -> tuple[dict[str, bool], list[str]]:
        """The data that will really be backed up, and why it differs from what was asked for."""
        data = dict(self.data)
        notes = []
        wanted = sorted(k for k in NEEDS_ISSUES if data.get(k))
        if wanted and not data["issues"]:
            data["issues"] = True
            notes.append(f"{', '.join(wanted)} need issues: issues are backed up too")
        for kind, why in (
            ("changelog", "off by default: it costs extra requests"),
            ("watchers", "off: it costs one request per issue"),
        ):
            if not data.get(kind):
                notes.append(f"{kind} {why}")
        return data, notes
