"""The simulated site's state: compact records for what every request needs, content made on demand.

A site of 100,000 issues must fit comfortably, so an issue is a small record (id, key, project, type,
parent, times) and its full content (fields, comments, worklogs, changelog, ...) is generated from the
seed when asked for. The first write to an issue "materialises" its content into `record.content`; from
then on the stored copy is the truth.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sandbox import catalog


@dataclass(slots=True)
class User:
    account_id: str
    display_name: str
    email: str
    token: str | None = None
    active: bool = True
    time_zone: str = "Europe/Berlin"
    groups: tuple[str, ...] = ()


@dataclass(slots=True)
class Project:
    id: int
    key: str
    name: str
    type_key: str
    lead: str
    description: str
    category_id: int | None
    created: int
    archived: bool = False
    deleted: bool = False
    components: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    hidden_from: set[str] = field(default_factory=set)  # accountIds without "Browse projects"
    roles: dict[str, set[str]] = field(default_factory=dict)  # project role name -> accountIds in it
    next_num: int = 1
    role_groups: dict[str, set[str]] = field(default_factory=dict)  # project role name -> group names in it


@dataclass(slots=True)
class Issue:
    id: int
    key: str
    project_id: int
    num: int
    type_id: str
    parent_id: int | None
    created: int  # epoch milliseconds
    updated: int
    content: dict[str, Any] | None = None  # materialised content (after the first write)
    deleted: bool = False


@dataclass(slots=True)
class Attachment:
    id: int
    issue_id: int
    filename: str
    mime_type: str
    size: int  # the size the metadata announces
    created: int
    author: str
    corrupt: str | None = None  # None, "truncated", "wrong-length" or "error"
    data: bytes | None = None  # uploaded bytes; generated content otherwise
    deleted: bool = False
    media_id: str | None = None  # the media file id ADF media nodes name it by


@dataclass(slots=True)
class Link:
    id: int
    type_id: str
    inward_id: int
    outward_id: int


@dataclass
class Site:
    """Everything a site holds; guarded by `lock` for writes (reads of single values need no lock)."""

    cloud_id: str
    seed: int
    users: dict[str, User] = field(default_factory=dict)
    projects: dict[int, Project] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    issue_by_key: dict[str, int] = field(default_factory=dict)
    issues_by_project: dict[int, list[int]] = field(default_factory=dict)
    children: dict[int, list[int]] = field(default_factory=dict)
    attachments: dict[int, Attachment] = field(default_factory=dict)
    attachments_by_issue: dict[int, list[int]] = field(default_factory=dict)
    links: dict[int, Link] = field(default_factory=dict)
    links_by_issue: dict[int, list[int]] = field(default_factory=dict)
    categories: list[dict[str, Any]] = field(default_factory=list)
    boards: list[dict[str, Any]] = field(default_factory=list)
    sprints: list[dict[str, Any]] = field(default_factory=list)
    filters: list[dict[str, Any]] = field(default_factory=list)
    dashboards: list[dict[str, Any]] = field(default_factory=list)
    people: tuple[str, ...] = ()  # generated users that issues refer to
    link_types: list[dict[str, Any]] = field(default_factory=lambda: [dict(t) for t in catalog.LINK_TYPES])
    custom_fields: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(catalog.CUSTOM_FIELDS))
    moved_keys: dict[str, int] = field(default_factory=dict)  # old key of a moved issue -> its id
    counters: dict[str, int] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def next_id(self, kind: str, start: int) -> int:
        """Return a fresh id of one kind (issues, comments, ...), counting up from `start`."""
        with self.lock:
            value = max(self.counters.get(kind, start), start)
            self.counters[kind] = value + 1
            return value

    def link_type(self, type_id: str) -> dict[str, Any]:
        """The issue link type with this id (the site's own list: the catalog's or a site file's)."""
        return next(t for t in self.link_types if t["id"] == type_id)

    def project_by_key(self, key_or_id: str) -> Project | None:
        """Find a live project by key (case-insensitive) or numeric id."""
        for project in self.projects.values():
            if project.deleted:
                continue
            if project.key == key_or_id.upper() or str(project.id) == key_or_id:
                return project
        return None

    def issue(self, key_or_id: str) -> Issue | None:
        """Find a live issue by key or numeric id."""
        if key_or_id.isdigit():
            issue = self.issues.get(int(key_or_id))
        else:
            issue_id = self.issue_by_key.get(key_or_id.upper())
            if issue_id is None:  # a moved issue still answers to its old key
                issue_id = self.moved_keys.get(key_or_id.upper())
            issue = self.issues.get(issue_id) if issue_id is not None else None
        if issue is None or issue.deleted or self.projects[issue.project_id].deleted:
            return None
        return issue

    def add_issue(self, issue: Issue) -> None:
        """Register a new issue in every index."""
        with self.lock:
            self.issues[issue.id] = issue
            self.issue_by_key[issue.key] = issue.id
            self.issues_by_project.setdefault(issue.project_id, []).append(issue.id)
            if issue.parent_id is not None:
                self.children.setdefault(issue.parent_id, []).append(issue.id)

    def add_link(self, link: Link) -> None:
        """Register an issue link on both of its issues."""
        with self.lock:
            self.links[link.id] = link
            self.links_by_issue.setdefault(link.inward_id, []).append(link.id)
            self.links_by_issue.setdefault(link.outward_id, []).append(link.id)

    def add_attachment(self, attachment: Attachment) -> None:
        """Register an attachment on its issue."""
        with self.lock:
            self.attachments[attachment.id] = attachment
            self.attachments_by_issue.setdefault(attachment.issue_id, []).append(attachment.id)
