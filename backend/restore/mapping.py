"""Turn a backed-up issue (as Jira returned it) into what Jira accepts on create, in the target site.

Fields are mapped by id when the target site has the same field, else by name; options by value; users by
accountId when they still exist (else left out, and the loss is recorded); components and versions by name
in the target project. What the API cannot set is listed in LOST_BY_API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Fields Jira sets itself; a restore can only keep them visibly (label, property, comment prefix).
LOST_BY_API = {
    "created",
    "updated",
    "creator",
    "statuscategorychangedate",
    "resolutiondate",
    "lastViewed",
    "watches",
    "votes",
    "workratio",
    "aggregateprogress",
    "progress",
    "customfield_10019",
}
# Fields carried by other steps (status by transition, links and hierarchy by mapping, content by their own
# entries) or describing the issue rather than its content.
HANDLED_ELSEWHERE = {
    "status",
    "resolution",
    "issuelinks",
    "subtasks",
    "parent",
    "comment",
    "worklog",
    "attachment",
    "project",
    "issuetype",
    "timetracking",
    "aggregatetimespent",
    "timespent",
    "timeestimate",
    "aggregatetimeestimate",
    "aggregatetimeoriginalestimate",
    "timeoriginalestimate",
}
MARKER_PROPERTY = "keepstone.restore"
CHANGELOG_PROPERTY = "keepstone.changelog"  # the backed-up history, split into pages (.2, .3, ...)
ATTACHMENTS_PROPERTY = "keepstone.attachments"  # backed-up attachment id -> restored id, hash, author, time


def marker_label(original_key: str) -> str:
    """The label that names where a restored issue came from (visible, searchable, and our idempotency key)."""
    return f"restored-from-{original_key}"


@dataclass
class TargetSite:
    """What the target site offers, read once per restore."""

    fields: dict[str, dict[str, Any]]  # id -> field
    fields_by_name: dict[str, str]  # name -> id
    users: set[str]
    components: dict[str, str] = field(default_factory=dict)  # name -> id, in the target project
    versions: dict[str, str] = field(default_factory=dict)
    sprints: dict[int, int] = field(default_factory=dict)  # backed-up sprint id -> sprint id in the target
    issue_types: dict[str, str] = field(default_factory=dict)  # name -> id
    priorities: dict[str, str] = field(default_factory=dict)  # name -> id


def _user(site: TargetSite, value: Any, lost: list[str], what: str) -> dict[str, str] | None:
    account = (value or {}).get("accountId") if isinstance(value, dict) else None
    if not account:
        return None
    if account not in site.users:
        lost.append(f"{what}: user {account} no longer exists in the site")
        return None
    return {"accountId": account}


def custom_value(schema: dict[str, Any], value: Any, site: TargetSite, lost: list[str], fid: str) -> Any:
    """Convert one custom field value from read shape to write shape (None: leave out)."""
    if value is None:
        return None
    custom = str(schema.get("custom", ""))
    kind = schema.get("type")
    if custom.endswith(":gh-sprint"):
        ids = [site.sprints[s["id"]] for s in value if isinstance(s, dict) and s.get("id") in site.sprints]
        if len(ids) < len(value):
            lost.append(f"{fid}: sprint no longer exists")
        return ids[-1] if ids else None
    if custom.endswith(":rank"):
        return None
    if kind == "option":
        return {"value": value.get("value")} if isinstance(value, dict) else None
    if kind == "array" and schema.get("items") == "option":
        return [{"value": v.get("value")} for v in value]
    if kind == "user":
        return _user(site, value, lost, fid)
    if kind == "array" and schema.get("items") == "user":
        users = [_user(site, v, lost, fid) for v in value]
        return [u for u in users if u]
    return value


def create_payload(
    issue: dict[str, Any], project_key: str, site: TargetSite, parent_key: str | None, original_key: str
) -> tuple[dict[str, Any], list[str]]:
    """The POST /issue body for a backed-up issue, and the list of what could not be carried."""
    f = issue["fields"]
    lost: list[str] = []
    fields: dict[str, Any] = {"project": {"key": project_key}, "summary": f["summary"]}
    type_name = (f.get("issuetype") or {}).get("name")
    if type_name in site.issue_types:
        fields["issuetype"] = {"id": site.issue_types[type_name]}
    else:
        fields["issuetype"] = {"name": type_name}
    if parent_key:
        fields["parent"] = {"key": parent_key}
    for name in ("description", "environment", "duedate"):
        if f.get(name) is not None:
            fields[name] = f[name]
    fields["labels"] = sorted({*(f.get("labels") or []), marker_label(original_key)})
    priority = (f.get("priority") or {}).get("name")
    if priority:
        if priority in site.priorities:
            fields["priority"] = {"id": site.priorities[priority]}
        else:
            lost.append(f"priority: {priority} does not exist in the site")
    for name, table in (
        ("components", site.components),
        ("fixVersions", site.versions),
        ("versions", site.versions),
    ):
        values = []
        for item in f.get(name) or []:
            if item.get("name") in table:
                values.append({"id": table[item["name"]]})
            else:
                lost.append(f"{name}: {item.get('name')} does not exist in the target project")
        if values:
            fields[name] = values
    for name in ("assignee", "reporter"):
        user = _user(site, f.get(name), lost, name)
        if user:
            fields[name] = user
    for fid, value in f.items():
        if not fid.startswith("customfield_") or value is None:
            continue
        target_id = fid if fid in site.fields else None
        if target_id is None:
            lost.append(f"{fid}: no such field in the target site")
            continue
        converted = custom_value(site.fields[target_id].get("schema") or {}, value, site, lost, fid)
        if converted is not None:
            fields[target_id] = converted
    return {"fields": fields}, lost


def origin_note(author: dict[str, Any] | None, created: str | None, original_id: str) -> str:
    """The line that keeps who wrote something and when (the API sets both to the restoring account and now)."""
    name = (author or {}).get("displayName") or (author or {}).get("accountId") or "unknown"
    return f"[Restored by Keepstone: originally by {name} on {created} (id {original_id})]"


def with_note(doc: dict[str, Any] | None, note: str) -> dict[str, Any]:
    """Prefix an ADF document with the origin note as its first paragraph."""
    content = list((doc or {}).get("content") or [])
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": note, "marks": [{"type": "em"}]}]},
            *content,
        ],
    }


def strip_note(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """Undo `with_note`: the original document and the note (None if there was none)."""
    content = list((doc or {}).get("content") or [])
    if content and content[0].get("type") == "paragraph":
        texts = content[0].get("content") or []
        if texts and str(texts[0].get("text", "")).startswith("[Restored by Keepstone"):
            return {**(doc or {}), "content": content[1:]}, texts[0]["text"]
    return doc, None
