"""Load a site from a JSON file instead of generating it (the format is in docs/sandbox.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sandbox import catalog
from sandbox.config import SandboxConfig
from sandbox.generate import BASE_TIME_MS, build_site
from sandbox.model import Attachment, Issue, Project, Site, User


class SiteFileError(ValueError):
    """The site file is not valid; the message says where."""


def _adf(value: Any) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": str(value)}]}],
    }


def load_site_file(config: SandboxConfig, path: str) -> Site:
    """Build a site holding exactly what the file describes (plus the admin and viewer accounts)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SiteFileError(f"cannot read site file {path}: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("projects"), list):
        raise SiteFileError(f"{path}: the top level must be an object with a 'projects' list")
    empty = SandboxConfig(**{**config.__dict__, "projects": 0, "site_file": None})
    site = build_site(empty)
    by_email: dict[str, str] = {u.email: u.account_id for u in site.users.values()}
    for n, u in enumerate(data.get("users") or []):
        account_id = u.get("accountId") or f"5b10{n:020x}"
        site.users[account_id] = User(account_id, u.get("displayName", u["email"]), u["email"])
        by_email[u["email"]] = account_id
    admin = next(iter(site.users))

    def person(email: str | None) -> str:
        return by_email.get(email or "", admin)

    type_by_name = {t["name"].lower(): t["id"] for t in catalog.ISSUE_TYPES}
    status_by_name = {s["name"].lower(): s["id"] for s in catalog.STATUSES}
    for p_index, p in enumerate(data["projects"]):
        where = f"{path}: projects[{p_index}]"
        if not isinstance(p, dict) or not p.get("key") or not p.get("name"):
            raise SiteFileError(f"{where} needs 'key' and 'name'")
        project = Project(
            id=10_000 + p_index,
            key=str(p["key"]).upper(),
            name=p["name"],
            type_key=p.get("type", "software"),
            lead=person(p.get("lead")),
            description=p.get("description", ""),
            category_id=None,
            created=BASE_TIME_MS,
        )
        for c in p.get("components") or []:
            project.components.append({"id": site.next_id("components", 10000), "name": c, "description": ""})
        for v in p.get("versions") or []:
            project.versions.append({"id": site.next_id("versions", 10000), "name": v, "released": False})
        site.projects[project.id] = project
        keys: dict[str, int] = {}
        for i_index, item in enumerate(p.get("issues") or []):
            if not isinstance(item, dict) or not item.get("summary"):
                raise SiteFileError(f"{where}.issues[{i_index}] needs a 'summary'")
            type_id = type_by_name.get(str(item.get("type", "Task")).lower())
            if type_id is None:
                raise SiteFileError(f"{where}.issues[{i_index}]: unknown type {item.get('type')!r}")
            num = i_index + 1
            created = BASE_TIME_MS + num * 3_600_000
            parent = keys.get(item.get("parent", "")) if item.get("parent") else None
            if item.get("parent") and parent is None:
                raise SiteFileError(f"{where}.issues[{i_index}]: parent {item['parent']!r} must come earlier")
            issue = Issue(
                site.next_id("issues", 10_000),
                f"{project.key}-{num}",
                project.id,
                num,
                type_id,
                parent,
                created,
                created + 60_000,
            )
            comments = [
                {
                    "id": issue.id * 1000 + k,
                    "author": person(c.get("author")),
                    "body": _adf(c.get("body")),
                    "created": created + k,
                    "updated": created + k,
                }
                for k, c in enumerate(item.get("comments") or [])
            ]
            issue.content = {
                "fields": {
                    "summary": item["summary"],
                    "description": _adf(item.get("description")),
                    "environment": None,
                    "status": status_by_name.get(str(item.get("status", "to do")).lower(), "10000"),
                    "priority": "3",
                    "resolution": None,
                    "resolutiondate": None,
                    "labels": sorted(item.get("labels") or []),
                    "components": [],
                    "fixVersions": [],
                    "versions": [],
                    "assignee": person(item.get("assignee")) if item.get("assignee") else None,
                    "reporter": person(item.get("reporter")),
                    "creator": person(item.get("reporter")),
                    "duedate": None,
                    "timeoriginalestimate": None,
                    "custom": {},
                },
                "comments": comments,
                "worklogs": [],
                "changelog": [],
                "remotelinks": [],
                "watchers": [],
                "votes": [],
                "properties": {},
            }
            site.add_issue(issue)
            keys[issue.key] = issue.id
            for a in item.get("attachments") or []:
                body = str(a.get("text", "")).encode()
                site.add_attachment(
                    Attachment(
                        site.next_id("attachments", 10_000),
                        issue.id,
                        a["filename"],
                        a.get("mimeType", "text/plain"),
                        len(body),
                        created,
                        admin,
                        data=body,
                    )
                )
        project.next_num = len(p.get("issues") or []) + 1
    return site
