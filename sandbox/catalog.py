"""Site-wide Jira objects that every generated site shares: issue types, statuses, priorities, fields."""

from __future__ import annotations

from typing import Any

ISSUE_TYPES: list[dict[str, Any]] = [
    {
        "id": "10000",
        "name": "Epic",
        "subtask": False,
        "hierarchyLevel": 1,
        "description": "A big user story.",
    },
    {"id": "10001", "name": "Story", "subtask": False, "hierarchyLevel": 0, "description": "A user story."},
    {"id": "10002", "name": "Task", "subtask": False, "hierarchyLevel": 0, "description": "A task."},
    {"id": "10003", "name": "Bug", "subtask": False, "hierarchyLevel": 0, "description": "A problem."},
    {
        "id": "10004",
        "name": "Subtask",
        "subtask": True,
        "hierarchyLevel": -1,
        "description": "Part of a task.",
    },
]
EPIC, STORY, TASK, BUG, SUBTASK = (t["id"] for t in ISSUE_TYPES)
ISSUE_TYPE_BY_ID = {t["id"]: t for t in ISSUE_TYPES}

STATUS_CATEGORIES = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {"id": 4, "key": "indeterminate", "colorName": "yellow", "name": "In Progress"},
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
STATUSES: list[dict[str, Any]] = [
    {"id": "10000", "name": "To Do", "category": "new"},
    {"id": "3", "name": "In Progress", "category": "indeterminate"},
    {"id": "10001", "name": "In Review", "category": "indeterminate"},
    {"id": "10002", "name": "Done", "category": "done"},
]
STATUS_BY_ID = {s["id"]: s for s in STATUSES}
# Every status can be reached from every other one; transition ids as in a simplified workflow.
TRANSITIONS = [
    {"id": "11", "to": "10000"},
    {"id": "21", "to": "3"},
    {"id": "31", "to": "10001"},
    {"id": "41", "to": "10002"},
]

PRIORITIES: list[dict[str, Any]] = [
    {"id": "1", "name": "Highest", "statusColor": "#d04437"},
    {"id": "2", "name": "High", "statusColor": "#f15C75"},
    {"id": "3", "name": "Medium", "statusColor": "#f79232"},
    {"id": "4", "name": "Low", "statusColor": "#707070"},
    {"id": "5", "name": "Lowest", "statusColor": "#999999"},
]
PRIORITY_BY_ID = {p["id"]: p for p in PRIORITIES}

RESOLUTIONS: list[dict[str, Any]] = [
    {"id": "10000", "name": "Done", "description": "Work has been completed on this issue."},
    {"id": "10001", "name": "Won't Do", "description": "This issue won't be actioned."},
    {"id": "10002", "name": "Duplicate", "description": "The problem is a duplicate of an existing issue."},
]
RESOLUTION_BY_ID = {r["id"]: r for r in RESOLUTIONS}

LINK_TYPES: list[dict[str, Any]] = [
    {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
    {"id": "10001", "name": "Cloners", "inward": "is cloned by", "outward": "clones"},
    {"id": "10002", "name": "Duplicate", "inward": "is duplicated by", "outward": "duplicates"},
    {"id": "10003", "name": "Relates", "inward": "relates to", "outward": "relates to"},
]
LINK_TYPE_BY_ID = {t["id"]: t for t in LINK_TYPES}

TEAMS = ["Atlas", "Borealis", "Cobalt", "Delta", "Ember"]
PLATFORMS = ["Web", "iOS", "Android", "Desktop", "API"]
SEVERITIES = ["S1 - Critical", "S2 - Major", "S3 - Minor", "S4 - Trivial"]


def _options(field_id: str, values: list[str], base: int) -> list[dict[str, Any]]:
    return [{"id": str(base + i), "value": v} for i, v in enumerate(values)]


# Custom fields: id -> definition. `kind` drives generation, rendering, JQL and restore mapping.
CUSTOM_FIELDS: dict[str, dict[str, Any]] = {
    "customfield_10010": {"name": "Story Points", "kind": "number", "type": "float"},
    "customfield_10011": {
        "name": "Team",
        "kind": "select",
        "type": "select",
        "options": _options("t", TEAMS, 10100),
    },
    "customfield_10012": {
        "name": "Affected Platforms",
        "kind": "multiselect",
        "type": "multiselect",
        "options": _options("p", PLATFORMS, 10200),
    },
    "customfield_10013": {"name": "Target Date", "kind": "date", "type": "datepicker"},
    "customfield_10014": {"name": "Reviewer", "kind": "user", "type": "userpicker"},
    "customfield_10015": {"name": "Customer Notes", "kind": "adf", "type": "textarea"},
    "customfield_10016": {"name": "Tags", "kind": "labels", "type": "labels"},
    "customfield_10017": {"name": "External URL", "kind": "url", "type": "url"},
    "customfield_10018": {
        "name": "Severity",
        "kind": "select",
        "type": "select",
        "options": _options("s", SEVERITIES, 10300),
    },
    "customfield_10019": {"name": "Rank", "kind": "string", "type": "rank"},
    "customfield_10020": {"name": "Sprint", "kind": "sprint", "type": "gh-sprint"},
    "customfield_10021": {"name": "Start date", "kind": "date", "type": "datepicker"},
    "customfield_10022": {"name": "Code Owners", "kind": "multiuser", "type": "multiuserpicker"},
    "customfield_10023": {"name": "Build Number", "kind": "string", "type": "textfield"},
}

SYSTEM_FIELDS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("summary", "Summary", {"type": "string", "system": "summary"}),
    ("description", "Description", {"type": "string", "system": "description"}),
    ("issuetype", "Issue Type", {"type": "issuetype", "system": "issuetype"}),
    ("project", "Project", {"type": "project", "system": "project"}),
    ("status", "Status", {"type": "status", "system": "status"}),
    ("priority", "Priority", {"type": "priority", "system": "priority"}),
    ("resolution", "Resolution", {"type": "resolution", "system": "resolution"}),
    ("resolutiondate", "Resolved", {"type": "datetime", "system": "resolutiondate"}),
    ("labels", "Labels", {"type": "array", "items": "string", "system": "labels"}),
    ("components", "Components", {"type": "array", "items": "component", "system": "components"}),
    ("fixVersions", "Fix versions", {"type": "array", "items": "version", "system": "fixVersions"}),
    ("versions", "Affects versions", {"type": "array", "items": "version", "system": "versions"}),
    ("assignee", "Assignee", {"type": "user", "system": "assignee"}),
    ("reporter", "Reporter", {"type": "user", "system": "reporter"}),
    ("creator", "Creator", {"type": "user", "system": "creator"}),
    ("created", "Created", {"type": "datetime", "system": "created"}),
    ("updated", "Updated", {"type": "datetime", "system": "updated"}),
    ("duedate", "Due date", {"type": "date", "system": "duedate"}),
    ("environment", "Environment", {"type": "string", "system": "environment"}),
    ("parent", "Parent", None),
    ("subtasks", "Sub-tasks", {"type": "array", "items": "issuelinks", "system": "subtasks"}),
    ("issuelinks", "Linked Issues", {"type": "array", "items": "issuelinks", "system": "issuelinks"}),
    ("comment", "Comment", {"type": "comments-page", "system": "comment"}),
    ("worklog", "Log Work", {"type": "array", "items": "worklog", "system": "worklog"}),
    ("attachment", "Attachment", {"type": "array", "items": "attachment", "system": "attachment"}),
    ("watches", "Watchers", {"type": "watches", "system": "watches"}),
    ("votes", "Votes", {"type": "votes", "system": "votes"}),
    ("timetracking", "Time tracking", {"type": "timetracking", "system": "timetracking"}),
    (
        "statuscategorychangedate",
        "Status Category Changed",
        {"type": "datetime", "system": "statuscategorychangedate"},
    ),
]
NAVIGABLE_SKIP = {"comment", "worklog"}  # not part of *navigable
FIELD_NAMES = {fid: name for fid, name, _ in SYSTEM_FIELDS} | {
    fid: d["name"] for fid, d in CUSTOM_FIELDS.items()
}

LABELS = [
    "backend",
    "frontend",
    "customer",
    "regression",
    "performance",
    "security",
    "ux",
    "tech-debt",
    "docs",
    "infra",
]
WORDS = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "for",
    "on",
    "with",
    "backup",
    "restore",
    "sprint",
    "release",
    "api",
    "token",
    "page",
    "cache",
    "index",
    "query",
    "user",
    "admin",
    "project",
    "board",
    "issue",
    "field",
    "report",
    "latency",
    "error",
    "timeout",
    "retry",
    "build",
    "deploy",
    "review",
    "design",
    "spec",
    "test",
    "fix",
    "refactor",
    "migrate",
    "upgrade",
    "schema",
    "export",
    "import",
    "audit",
    "log",
    "metric",
    "alert",
    "dashboard",
    "filter",
    "workflow",
    "status",
    "customer",
    "invoice",
    "payment",
    "search",
    "mobile",
    "login",
    "session",
    "permission",
    "role",
    "group",
    "team",
    "quarter",
    "roadmap",
]
PROJECT_NAMES = [
    ("PLAT", "Platform"),
    ("MOB", "Mobile App"),
    ("WEB", "Website"),
    ("SUP", "Support Desk"),
    ("DATA", "Data Pipeline"),
    ("INFRA", "Infrastructure"),
    ("MKT", "Marketing"),
    ("PAY", "Payments"),
    ("SEC", "Security"),
    ("ANL", "Analytics"),
]
FIRST_NAMES = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gita", "Hugo", "Iris", "Jonas", "Kai", "Lena"]
LAST_NAMES = [
    "Okafor",
    "Schmidt",
    "Tanaka",
    "Novak",
    "Silva",
    "Haddad",
    "Larsen",
    "Moreau",
    "Kowalski",
    "Reyes",
]
