"""What a backup covers: which projects, which data, what to leave out. JSON in, JSON out, validated."""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass, field
from typing import Any

import re2
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

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
MAX_PATTERN = 200  # characters: a project name pattern is a short filter, not a program


class SpecError(ValueError):
    """The backup specification is invalid; `fields` says where (dotted paths) and `messages` nests them."""

    def __init__(self, message: str, fields: dict[str, str] | None = None, messages: Any = None) -> None:
        super().__init__(message)
        self.fields = fields or {}
        self.messages = messages if messages is not None else dict(self.fields)


@functools.lru_cache(maxsize=256)
def name_regex(pattern: str) -> Any:
    """Compile a user's project-name pattern with RE2: linear time, so no pattern can stall a thread."""
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = False
    options.max_mem = 1 << 20
    try:
        return re2.compile(pattern, options=options)
    except re2.error as e:
        detail = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        raise ValueError(f"not a valid regular expression: {detail}") from None


@dataclass
class ProjectSelection:
    """All projects, selected keys, or a rule over key/name pattern, category, type and archived state."""

    mode: str = "all"
    keys: list[str] = field(default_factory=list)
    key_pattern: str | None = None  # shell-style, e.g. "PAY*"
    name_pattern: str | None = None  # regular expression (RE2 syntax), case-insensitive
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
        if self.name_pattern and not name_regex(self.name_pattern).search(str(project.get("name", ""))):
            return False
        category = (project.get("projectCategory") or {}).get("name")
        if self.categories and category not in self.categories:
            return False
        return not (self.project_types and project.get("projectTypeKey") not in self.project_types)


def _pattern(value: str) -> None:
    try:
        name_regex(value)
    except ValueError as e:
        raise ValidationError(str(e)) from None


# JSON's true and false only: marshmallow's default Boolean also takes "yes", 1, "on" ...
Strict = {"truthy": {True}, "falsy": {False}}


class ProjectSelectionSchema(Schema):
    mode = fields.String(load_default="all", validate=validate.OneOf(PROJECT_MODES))
    keys = fields.List(
        fields.String(validate=validate.Length(min=1, max=255)),
        load_default=list,
        validate=validate.Length(max=5000),
    )
    key_pattern = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=MAX_PATTERN)
    )
    name_pattern = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(min=1, max=MAX_PATTERN), _pattern],
    )
    categories = fields.List(fields.String(validate=validate.Length(min=1, max=255)), load_default=list)
    project_types = fields.List(fields.String(validate=validate.Length(min=1, max=64)), load_default=list)
    include_archived = fields.Boolean(load_default=False, **Strict)

    @validates_schema
    def _complete(self, data: dict[str, Any], **_) -> None:
        keys = [k.strip().upper() for k in data.get("keys", []) if k.strip()]
        if data.get("mode") == "selected" and not keys:
            raise ValidationError({"keys": ["name at least one project key when mode is 'selected'"]})
        if data.get("mode") == "rule" and not any(
            data.get(k) for k in ("key_pattern", "name_pattern", "categories", "project_types")
        ):
            raise ValidationError("a rule needs a key_pattern, name_pattern, categories or project_types")

    @post_load
    def _make(self, data: dict[str, Any], **_) -> ProjectSelection:
        data["keys"] = list(dict.fromkeys(k.strip().upper() for k in data["keys"] if k.strip()))
        return ProjectSelection(**data)


class DataKinds(fields.Field):
    """The data to back up: {kind: true/false}, or a list of the kinds to include."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, bool]:
        if isinstance(value, list):
            if not all(isinstance(k, str) for k in value):
                raise ValidationError("a list of data kinds must hold only names")
            value = {k: (k in value) for k in DATA_DEFAULTS} | {k: True for k in value}
        if not isinstance(value, dict):
            raise ValidationError("must be an object of kind: true/false, or a list of kinds")
        errors: dict[str, list[str]] = {}
        out = dict(DATA_DEFAULTS)
        for key, flag in value.items():
            if key not in DATA_DEFAULTS:
                errors[str(key)[:64]] = [f"unknown kind of data (known: {', '.join(DATA_DEFAULTS)})"]
            elif not isinstance(flag, bool):
                errors[key] = ["must be true or false"]
            else:
                out[key] = flag
        if errors:
            raise ValidationError(errors)
        return out


class BackupSpecSchema(Schema):
    """The whole plan spec: the only way in, for the API, the UI, the CLI and stored plans."""

    projects = fields.Nested(ProjectSelectionSchema, load_default=lambda: ProjectSelection())
    data = DataKinds(load_default=lambda: dict(DATA_DEFAULTS))
    exclude_jql = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=10_000))
    corrupt_attachments = fields.String(load_default="skip", validate=validate.OneOf(CORRUPT_POLICIES))
    max_workers = fields.Integer(strict=True, load_default=8, validate=validate.Range(1, 32))
    incremental = fields.Boolean(load_default=True, **Strict)

    @validates_schema
    def _jql(self, data: dict[str, Any], **_) -> None:
        if data.get("exclude_jql") is not None and not data["exclude_jql"].strip():
            raise ValidationError({"exclude_jql": ["must be a non-empty JQL string or null"]})


def _flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested messages as {dotted.path: first message}."""
    if isinstance(messages, dict):
        out: dict[str, str] = {}
        for key, value in messages.items():
            name = prefix if key == "_schema" else f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
        return out
    if isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": messages[0]}
    if isinstance(messages, list):
        return _flatten(messages[0], prefix) if messages else {}
    return {prefix or "_schema": str(messages)}


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
    def from_dict(cls, raw: Any) -> BackupSpec:
        """Build and validate a spec with BackupSpecSchema; errors are SpecErrors naming each field."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise SpecError("the backup specification must be an object", {"_schema": "must be an object"})
        try:
            data = BackupSpecSchema().load(raw)
        except ValidationError as e:
            raise SpecError("the backup specification is invalid", _flatten(e.messages), e.messages) from None
        if data["exclude_jql"] is not None:
            data["exclude_jql"] = data["exclude_jql"].strip()
        return cls(**data)

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
