"""Load a site from a JSON file instead of generating it (the format is in docs/sandbox.md).

Every problem is a `SiteFileError` whose message names the place: `site.json: projects[0].issues[3]
(OPS-4).fields.Team: option 'Nope' does not exist`. Values are checked as Jira checks them when they are
entered (project keys, labels without spaces, summaries that are not blank, statuses that exist, ...).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox import catalog
from sandbox.config import SandboxConfig
from sandbox.generate import BASE_TIME_MS, build_site
from sandbox.model import Attachment, Issue, Link, Project, Site, User
from sandbox.render import ROLES
from sandbox.wiki import is_adf, wiki_to_adf

PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{1,9}$")
ISSUE_KEY = re.compile(r"^([A-Z][A-Z0-9_]{1,9})-([1-9]\d*)$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([wdhm])\s*")
UNIT_SECONDS = {"w": 5 * 8 * 3600, "d": 8 * 3600, "h": 3600, "m": 60}
CORRUPTIONS = ("truncated", "wrong-length", "error")
# Custom field types a site file may declare: Jira's type key -> the sandbox's kind.
FIELD_TYPES = {
    "textfield": "string",
    "textarea": "adf",
    "float": "number",
    "select": "select",
    "radiobuttons": "select",
    "multiselect": "multiselect",
    "multicheckboxes": "multiselect",
    "cascadingselect": "cascading",
    "datepicker": "date",
    "datetime": "datetime",
    "userpicker": "user",
    "multiuserpicker": "multiuser",
    "grouppicker": "group",
    "multigrouppicker": "multigroup",
    "labels": "labels",
    "url": "url",
    "version": "version",
    "multiversion": "multiversion",
    "project": "project",
}
TYPE_ALIASES = {"sub-task": catalog.SUBTASK, "subtask": catalog.SUBTASK}


class SiteFileError(ValueError):
    """The site file is not valid; the message says where."""


class _Bad(Exception):
    """A problem found at the place being loaded; turned into SiteFileError with that place."""


def _fail(message: str) -> None:
    raise _Bad(message)


def _time(value: Any, what: str) -> tuple[int, int]:
    """(epoch ms, offset minutes) of "2024-03-01T09:00:00.000+0100" (seconds and millis optional)."""
    if not isinstance(value, str):
        _fail(f"{what} must be a date-time like 2024-03-01T09:00:00.000+0100")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"):
        try:
            moment = datetime.strptime(value, fmt)
        except ValueError:
            continue
        offset = moment.utcoffset()
        return int(moment.timestamp() * 1000), int(offset.total_seconds() // 60) if offset else 0
    _fail(f"{what} {value!r} is not a date-time like 2024-03-01T09:00:00.000+0100 (with its UTC offset)")
    raise AssertionError  # unreachable


def _duration(value: Any) -> int:
    if isinstance(value, str) and value.strip():
        total, pos = 0.0, 0
        while pos < len(value):
            m = DURATION.match(value, pos)
            if not m:
                break
            total += float(m.group(1)) * UNIT_SECONDS[m.group(2)]
            pos = m.end()
        else:
            if total > 0:
                return round(total)
    _fail(f"timeSpent {value!r} is not a duration like '1h 30m', '2d' or '1w'")
    raise AssertionError  # unreachable


class _Loader:
    def __init__(self, config: SandboxConfig, path: str) -> None:
        self.path = path
        self.folder = Path(path).resolve().parent
        self.where = ""
        empty = SandboxConfig(**{**config.__dict__, "projects": 0, "site_file": None})
        self.site: Site = build_site(empty)
        self.admin = next(iter(self.site.users))
        self.by_email: dict[str, str] = {u.email.lower(): u.account_id for u in self.site.users.values()}
        self.former: set[str] = set()  # account ids of deleted users
        self.groups = {g for u in self.site.users.values() for g in u.groups}
        self.keys: dict[str, int] = {}  # every issue key in the file -> issue id
        self.pending_links: list[tuple[str, int, dict[str, Any]]] = []
        self.moved: list[tuple[str, str, int]] = []
        self.sprints_by_project: dict[int, dict[str, int]] = {}

    # --- small checks ---------------------------------------------------------------------------------

    def text(self, obj: dict[str, Any], name: str, required: bool = False) -> str | None:
        value = obj.get(name)
        if value is None:
            if required:
                _fail(f"needs a '{name}'")
            return None
        if not isinstance(value, str):
            _fail(f"'{name}' must be a string, not {type(value).__name__}")
        return value

    def items(self, obj: dict[str, Any], name: str) -> list[Any]:
        value = obj.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            _fail(f"'{name}' must be a list")
        return value

    def person(self, email: Any, what: str, allow_former: bool = True) -> str:
        if email is None:
            return self.admin
        if not isinstance(email, str):
            _fail(f"'{what}' must be an email address")
        account_id = self.by_email.get(email.lower(), self.admin)
        if account_id in self.former and not allow_former:
            _fail(f"'{what}' names {email}, a deleted user (only authors may be deleted users)")
        return account_id

    def rich(self, value: Any, what: str, issue: Issue | None = None) -> dict[str, Any] | None:
        """Plain text (as v2 takes it) or an ADF document; media nodes name attachments by filename."""
        if value is None:
            return None
        if isinstance(value, str):
            return wiki_to_adf(value)
        if not is_adf(value) or value.get("version") != 1:
            _fail(
                f"'{what}' must be text or an ADF document ({{'type': 'doc', 'version': 1, 'content': [...]}})"
            )
        doc = json.loads(json.dumps(value))
        content = []
        for node in doc["content"]:
            if isinstance(node, dict) and node.get("type") == "media":  # shorthand: a bare media node
                node = {"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [node]}
            content.append(node)
        doc["content"] = content
        self._media(doc, what, issue)
        return doc

    def _media(self, node: Any, what: str, issue: Issue | None) -> None:
        if isinstance(node, list):
            for child in node:
                self._media(child, what, issue)
            return
        if not isinstance(node, dict):
            _fail(f"'{what}' holds a node that is not an object: {node!r}")
        if not isinstance(node.get("type"), str):
            _fail(f"'{what}' holds a node without a 'type': {node!r}")
        if node["type"] == "text" and not (isinstance(node.get("text"), str) and node["text"]):
            _fail(f"'{what}' holds a text node without text")
        if node["type"] in ("media", "mediaInline"):
            attrs = node.get("attrs") or {}
            name = attrs.get("attachment")
            if name is not None:
                found = None
                if issue is not None:
                    for aid in self.site.attachments_by_issue.get(issue.id, []):
                        if self.site.attachments[aid].filename == name:
                            found = self.site.attachments[aid]
                if found is None:
                    _fail(f"'{what}' has a media node for attachment {name!r}, which the issue does not have")
                assert found is not None
                node["attrs"] = {
                    "type": "file",
                    "id": found.media_id,
                    "collection": "",
                    "alt": found.filename,
                }
                node["attrs"] |= {k: v for k, v in attrs.items() if k in ("width", "height")}
        self._media(node.get("content") or [], what, issue)

    def visibility(self, value: Any) -> dict[str, str] | None:
        if value is None:
            return None
        if not isinstance(value, dict) or value.get("type") not in ("role", "group"):
            _fail("'visibility' must be {'type': 'role' or 'group', 'value': name}")
        name = value.get("value")
        if value["type"] == "role" and name not in ROLES:
            _fail(f"visibility role {name!r} does not exist (roles: {', '.join(ROLES)})")
        if value["type"] == "group" and name not in self.groups:
            _fail(f"visibility group {name!r} does not exist (groups: {', '.join(sorted(self.groups))})")
        return {"type": value["type"], "value": name}

    # --- the file -------------------------------------------------------------------------------------

    def load(self, data: Any) -> Site:
        if not isinstance(data, dict) or not isinstance(data.get("projects"), list):
            raise SiteFileError(f"{self.path}: the top level must be an object with a 'projects' list")
        steps = [
            ("users", self.users),
            ("linkTypes", self.link_types),
            ("customFields", self.custom_fields),
        ]
        for name, step in steps:
            for n, item in enumerate(self._list(data, name)):
                self._at(f"{name}[{n}]", step, item)
        projects: list[tuple[int, dict[str, Any], Project]] = []
        seen_keys: set[str] = set()
        for n, p in enumerate(data["projects"]):
            project = self._at(f"projects[{n}]", self.project, n, p, seen_keys)
            projects.append((n, p, project))
        for n, p, project in projects:
            previous = 0
            for i, item in enumerate(p.get("issues") or []):
                label = f"projects[{n}].issues[{i}]"
                previous = self._at(label, self.issue, project, item, previous, label)
            project.next_num = previous + 1
        for label, issue_id, link in self.pending_links:
            self._at(label, self.link, issue_id, link)
        for label, old_key, issue_id in self.moved:
            self._at(label, self.move, old_key, issue_id)
        return self.site

    def _list(self, data: dict[str, Any], name: str) -> list[Any]:
        value = data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise SiteFileError(f"{self.path}: '{name}' must be a list")
        return value

    def _at(self, place: str, step, *args):
        outer = self.where
        self.where = place
        try:
            return step(*args)
        except _Bad as e:
            raise SiteFileError(f"{self.path}: {self.where}: {e}") from None
        except SiteFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise SiteFileError(f"{self.path}: {self.where}: cannot read this entry ({e!r})") from None
        finally:
            self.where = outer

    def users(self, u: Any) -> None:
        if not isinstance(u, dict):
            _fail("a user must be an object with an 'email'")
        email = self.text(u, "email")
        if not email:
            _fail("needs an 'email' (issues, comments and worklogs name users by email)")
        assert email is not None
        if not EMAIL.match(email):
            _fail(f"{email!r} is not an email address")
        if email.lower() in self.by_email:
            _fail(f"{email} is listed twice")
        account_id = self.text(u, "accountId") or "5b10" + uuid.uuid5(uuid.NAMESPACE_URL, email).hex[:20]
        groups = self.items(u, "groups")
        if not all(isinstance(g, str) and g.strip() for g in groups):
            _fail("'groups' must be a list of group names")
        self.by_email[email.lower()] = account_id
        if u.get("deleted"):
            self.former.add(account_id)  # gone from the site: Jira answers "Former user" with the id
            return
        user = User(
            account_id,
            self.text(u, "displayName") or email.split("@")[0],
            email,
            active=bool(u.get("active", True)),
            time_zone=self.text(u, "timeZone") or "Europe/Berlin",
            groups=tuple(groups) or ("jira-software-users",),
        )
        self.site.users[account_id] = user
        self.groups |= set(user.groups)

    def link_types(self, t: Any) -> None:
        if not isinstance(t, dict):
            _fail("a link type must be an object with 'name', 'inward' and 'outward'")
        name = self.text(t, "name", True)
        inward, outward = self.text(t, "inward", True), self.text(t, "outward", True)
        if any(x["name"].lower() == str(name).lower() for x in self.site.link_types):
            _fail(f"link type {name!r} exists already")
        type_id = str(10_100 + len(self.site.link_types))
        self.site.link_types.append({"id": type_id, "name": name, "inward": inward, "outward": outward})

    def custom_fields(self, f: Any) -> None:
        if not isinstance(f, dict):
            _fail("a custom field must be an object with 'name' and 'type'")
        name = self.text(f, "name", True)
        type_key = self.text(f, "type", True)
        if type_key not in FIELD_TYPES:
            _fail(f"unknown custom field type {type_key!r} (one of {', '.join(FIELD_TYPES)})")
        if any(d["name"].lower() == str(name).lower() for d in self.site.custom_fields.values()):
            _fail(f"a custom field named {name!r} exists already")
        field_id = self.text(f, "id") or f"customfield_{10_100 + len(self.site.custom_fields)}"
        if not re.fullmatch(r"customfield_\d+", field_id) or field_id in self.site.custom_fields:
            _fail(f"field id {field_id!r} must look like customfield_10100 and be new")
        kind = FIELD_TYPES[str(type_key)]
        definition: dict[str, Any] = {"name": name, "kind": kind, "type": type_key}
        if kind in ("select", "multiselect", "cascading"):
            options = []
            next_id = 20_000 + 100 * len(self.site.custom_fields)
            for n, o in enumerate(self.items(f, "options")):
                if isinstance(o, str):
                    o = {"value": o}
                if not isinstance(o, dict) or not isinstance(o.get("value"), str) or not o["value"].strip():
                    _fail(f"options[{n}] needs a 'value'")
                option: dict[str, Any] = {"id": str(next_id), "value": o["value"]}
                next_id += 1
                if o.get("deleted"):
                    option["deleted"] = True
                if kind == "cascading":
                    option["children"] = []
                    for c in o.get("children") or []:
                        c = {"value": c} if isinstance(c, str) else c
                        if not isinstance(c, dict) or not isinstance(c.get("value"), str):
                            _fail(f"options[{n}].children need a 'value'")
                        child = {"id": str(next_id), "value": c["value"]}
                        next_id += 1
                        if c.get("deleted"):
                            child["deleted"] = True
                        option["children"].append(child)
                options.append(option)
            if not options:
                _fail(f"a {type_key} field needs 'options'")
            definition["options"] = options
        self.site.custom_fields[field_id] = definition

    def project(self, n: int, p: Any, seen: set[str]) -> Project:
        if not isinstance(p, dict):
            _fail("a project must be an object")
        key = self.text(p, "key")
        name = self.text(p, "name")
        if not key or not name or not name.strip():
            _fail("needs 'key' and 'name'")
        assert key is not None and name is not None
        if not PROJECT_KEY.match(key):
            _fail(
                f"project key {key!r} is not valid: 2 to 10 characters, an uppercase letter followed by "
                "uppercase letters, digits or underscores"
            )
        if key in seen:
            _fail(f"project key {key} is used twice")
        seen.add(key)
        self.where = f"{self.where} ({key})"
        type_key = self.text(p, "type") or "software"
        if type_key not in ("software", "business", "service_desk"):
            _fail(f"project type {type_key!r} is not software, business or service_desk")
        project = Project(
            id=10_000 + n,
            key=key,
            name=name,
            type_key=type_key,
            lead=self.person(p.get("lead"), "lead", allow_former=False),
            description=self.text(p, "description") or "",
            category_id=None,
            created=BASE_TIME_MS,
            archived=bool(p.get("archived", False)),
        )
        for i, c in enumerate(self.items(p, "components")):
            c = {"name": c} if isinstance(c, str) else c
            if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"].strip():
                _fail(f"components[{i}] needs a 'name'")
            if any(x["name"].lower() == c["name"].lower() for x in project.components):
                _fail(f"components[{i}]: component {c['name']!r} is listed twice")
            project.components.append(
                {
                    "id": self.site.next_id("components", 10000),
                    "name": c["name"],
                    "description": str(c.get("description") or ""),
                    "lead": self.person(c["lead"], "lead", False) if c.get("lead") else None,
                    "assigneeType": "PROJECT_DEFAULT",
                }
            )
        for i, v in enumerate(self.items(p, "versions")):
            v = {"name": v} if isinstance(v, str) else v
            if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not v["name"].strip():
                _fail(f"versions[{i}] needs a 'name'")
            if any(x["name"] == v["name"] for x in project.versions):
                _fail(f"versions[{i}]: version {v['name']!r} is listed twice")
            if v.get("releaseDate") is not None and not DATE.match(str(v["releaseDate"])):
                _fail(f"versions[{i}]: releaseDate must look like 2024-05-31")
            project.versions.append(
                {
                    "id": self.site.next_id("versions", 10000),
                    "name": v["name"],
                    "description": str(v.get("description") or ""),
                    "released": bool(v.get("released", False)),
                    "archived": bool(v.get("archived", False)),
                    "releaseDate": v.get("releaseDate"),
                }
            )
        roles = p.get("roles") or {}
        if not isinstance(roles, dict):
            _fail("'roles' must be an object of role name -> list of emails")
        for role, members in roles.items():
            if role not in ROLES:
                _fail(f"roles: {role!r} is not a project role ({', '.join(ROLES)})")
            if not isinstance(members, list):
                _fail(f"roles.{role} must be a list of emails")
            project.roles[role] = {self.person(m, f"roles.{role}", False) for m in members}
        self.site.projects[project.id] = project
        sprints: dict[str, int] = {}
        for i, b in enumerate(self.items(p, "boards")):
            self._at(f"projects[{n}] ({key}).boards[{i}]", self.board, project, b, sprints)
        self.sprints_by_project[project.id] = sprints
        return project

    def board_settings(self, board: dict[str, Any], b: dict[str, Any]) -> None:
        """A board's filter JQL (`jql`; default the template's) and its `columns` (set in the board's
        settings in Jira; no REST API writes them): a list of {name, statuses: [status names]}."""
        if "jql" in b:
            if not isinstance(b["jql"], str) or not b["jql"].strip():
                _fail("a board's 'jql' must be a non-empty string")
            board["filter_jql"] = b["jql"]
        if "columns" in b:
            by_name = {st["name"]: st["id"] for st in catalog.STATUSES}
            columns = []
            for i, c in enumerate(self.items(b, "columns")):
                if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"].strip():
                    _fail(f"columns[{i}] needs a 'name'")
                names = c.get("statuses") or []
                unknown = [n for n in names if n not in by_name]
                if not isinstance(names, list) or unknown:
                    _fail(f"columns[{i}]: statuses must be status names ({', '.join(by_name)})")
                columns.append({"name": c["name"], "statuses": [by_name[n] for n in names]})
            board["columns"] = columns

    def board(self, project: Project, b: Any, sprints: dict[str, int]) -> None:
        if not isinstance(b, dict):
            _fail("a board must be an object")
        board_type = self.text(b, "type") or "scrum"
        if board_type not in ("scrum", "kanban"):
            _fail(f"board type {board_type!r} is not scrum or kanban")
        board_id = self.site.next_id("boards", 1)
        name = self.text(b, "name") or f"{project.key} board"
        board: dict[str, Any] = {"id": board_id, "name": name, "type": board_type, "project_id": project.id}
        self.site.boards.append(board)
        self.board_settings(board, b)
        if b.get("sprints") and board_type != "scrum":
            _fail("only a scrum board has sprints")
        for i, s in enumerate(self.items(b, "sprints")):
            if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not s["name"].strip():
                _fail(f"sprints[{i}] needs a 'name'")
            state = s.get("state", "future")
            if state not in ("closed", "active", "future"):
                _fail(f"sprints[{i}]: state {state!r} is not closed, active or future")
            if s["name"] in sprints:
                _fail(f"sprints[{i}]: sprint {s['name']!r} is listed twice in the project")
            start = _time(s["startDate"], "startDate")[0] if s.get("startDate") else BASE_TIME_MS
            end = _time(s["endDate"], "endDate")[0] if s.get("endDate") else start + 14 * 86_400_000
            if end < start:
                _fail(f"sprints[{i}]: endDate is before startDate")
            sprint_id = self.site.next_id("sprints", 1)
            self.site.sprints.append(
                {
                    "id": sprint_id,
                    "name": s["name"],
                    "state": state,
                    "board_id": board_id,
                    "startDate": start,
                    "endDate": end,
                    "goal": str(s.get("goal") or ""),
                }
            )
            sprints[s["name"]] = sprint_id

    def issue(self, project: Project, item: Any, previous: int, label: str) -> int:
        site = self.site
        if not isinstance(item, dict):
            _fail("an issue must be an object")
        num = previous + 1
        if item.get("key") is not None:
            m = ISSUE_KEY.match(str(item["key"]))
            if not m or m.group(1) != project.key:
                _fail(f"key {item['key']!r} is not a key of project {project.key} (like {project.key}-7)")
            assert m is not None
            num = int(m.group(2))
            if num <= previous:
                _fail(f"key {item['key']} must be numbered above {project.key}-{previous}")
        key = f"{project.key}-{num}"
        self.where = f"{label} ({key})"
        summary = item.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            _fail("needs a 'summary' that is not blank")
        assert isinstance(summary, str)
        if len(summary) > 255 or "\n" in summary or "\r" in summary:
            _fail("the summary must be one line of at most 255 characters")
        type_name = str(item.get("type", "Task"))
        type_by_name = {t["name"].lower(): t["id"] for t in catalog.ISSUE_TYPES} | TYPE_ALIASES
        type_id = type_by_name.get(type_name.lower())
        if type_id is None:
            _fail(f"unknown type {type_name!r} (Epic, Story, Task, Bug or Sub-task)")
        status_name = str(item.get("status", "To Do"))
        status_id = {s["name"].lower(): s["id"] for s in catalog.STATUSES}.get(status_name.lower())
        if status_id is None:
            _fail(f"unknown status {status_name!r} ({', '.join(s['name'] for s in catalog.STATUSES)})")
        done = catalog.STATUS_BY_ID[str(status_id)]["category"] == "done"
        resolution = None
        if item.get("resolution") is not None:
            resolution = next(
                (
                    r["id"]
                    for r in catalog.RESOLUTIONS
                    if r["name"].lower() == str(item["resolution"]).lower()
                ),
                None,
            )
            if resolution is None:
                _fail(f"unknown resolution {item['resolution']!r}")
        elif done:
            resolution = "10000"
        priority = "3"
        if item.get("priority") is not None:
            priority = next(
                (p["id"] for p in catalog.PRIORITIES if p["name"].lower() == str(item["priority"]).lower()),
                None,
            )
            if priority is None:
                _fail(f"unknown priority {item['priority']!r}")
        parent_id = None
        if item.get("parent"):
            parent_id = self.keys.get(str(item["parent"]))
            if parent_id is None or site.issues[parent_id].project_id != project.id:
                _fail(f"parent {item['parent']!r} must be an earlier issue of project {project.key}")
            assert parent_id is not None
            parent_type = site.issues[parent_id].type_id
            if type_id == catalog.SUBTASK and parent_type in (catalog.SUBTASK, catalog.EPIC):
                _fail("a sub-task's parent must be a story, task or bug")
            if type_id == catalog.EPIC:
                _fail("an epic cannot have a parent")
            if type_id != catalog.SUBTASK and parent_type != catalog.EPIC:
                _fail("the parent of a story, task or bug must be an epic")
        elif type_id == catalog.SUBTASK:
            _fail("a sub-task needs a 'parent'")
        labels = self.items(item, "labels")
        for label_value in labels:
            if not isinstance(label_value, str) or not label_value.strip():
                _fail("labels must be strings that are not blank")
            if any(ch.isspace() for ch in label_value):
                _fail(f"the label {label_value!r} contains spaces, which Jira does not allow")
            if len(label_value) > 255:
                _fail(f"the label {label_value[:20]!r}... is longer than 255 characters")
        created = BASE_TIME_MS + num * 3_600_000
        if item.get("created") is not None:
            created = _time(item["created"], "created")[0]
        updated = created + 60_000
        if item.get("updated") is not None:
            updated = _time(item["updated"], "updated")[0]
            if updated < created:
                _fail("'updated' is before 'created'")
        issue = Issue(
            site.next_id("issues", 10_000), key, project.id, num, str(type_id), parent_id, created, updated
        )
        site.add_issue(issue)
        self.keys[key] = issue.id
        assignee = self.person(item["assignee"], "assignee", False) if item.get("assignee") else None
        reporter = self.person(item.get("reporter"), "reporter")

        def named(kind: str, table: list[dict[str, Any]]) -> list[int]:
            ids = []
            for value in self.items(item, kind):
                found = next((x["id"] for x in table if x["name"] == value), None)
                if found is None:
                    _fail(f"{kind}: {value!r} is not a {kind[:-1]} of project {project.key}")
                ids.append(found)
            return ids

        components = named("components", project.components)
        fix_versions = named("fixVersions", project.versions)
        versions = named("versions", project.versions)
        for n, a in enumerate(self.items(item, "attachments")):
            self._at(f"{self.where}.attachments[{n}]", self.attachment, issue, a)
        custom: dict[str, Any] = {}
        fields = item.get("fields") or {}
        if not isinstance(fields, dict):
            _fail("'fields' must be an object of field name (or id) -> value")
        for name, value in fields.items():
            field_id = self._field_id(name)
            custom[field_id] = self._at(
                f"{self.where}.fields.{name}", self.custom_value, project, field_id, value
            )
        if item.get("sprint") is not None:
            names = item["sprint"] if isinstance(item["sprint"], list) else [item["sprint"]]
            sprints = self.sprints_by_project.get(project.id, {})
            ids = []
            for sprint_name in names:
                if sprint_name not in sprints:
                    _fail(f"sprint {sprint_name!r} is not a sprint of a board of project {project.key}")
                ids.append(sprints[sprint_name])
            custom["customfield_10020"] = ids
        comments = []
        for n, c in enumerate(self.items(item, "comments")):
            comments.append(self._at(f"{self.where}.comments[{n}]", self.comment, issue, c, n))
        worklogs = []
        for n, w in enumerate(self.items(item, "worklogs")):
            worklogs.append(self._at(f"{self.where}.worklogs[{n}]", self.worklog, issue, w, n))
        changelog = []
        for n, h in enumerate(self.items(item, "changelog")):
            changelog.append(self._at(f"{self.where}.changelog[{n}]", self.history, issue, h, n))
        issue.content = {
            "fields": {
                "summary": summary,
                "description": self.rich(item.get("description"), "description", issue),
                "environment": self.rich(item.get("environment"), "environment", issue),
                "status": status_id,
                "priority": priority,
                "resolution": resolution,
                "resolutiondate": updated if resolution else None,
                "labels": sorted(set(labels)),
                "components": components,
                "fixVersions": fix_versions,
                "versions": versions,
                "assignee": assignee,
                "reporter": reporter,
                "creator": reporter,
                "duedate": self._date(item.get("duedate"), "duedate"),
                "timeoriginalestimate": _duration(item["originalEstimate"])
                if item.get("originalEstimate")
                else None,
                "custom": custom,
            },
            "comments": comments,
            "worklogs": worklogs,
            "changelog": changelog,
            "remotelinks": [],
            "watchers": [reporter] if reporter in site.users else [],
            "votes": [],
            "properties": {},
        }
        for n, link in enumerate(self.items(item, "links")):
            self.pending_links.append((f"{self.where}.links[{n}]", issue.id, link))
        if item.get("movedFrom") is not None:
            self.moved.append((f"{self.where}.movedFrom", str(item["movedFrom"]), issue.id))
        return num

    def _date(self, value: Any, what: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not DATE.match(value):
            _fail(f"'{what}' must look like 2024-05-31")
        return value

    def _field_id(self, name: str) -> str:
        if name in self.site.custom_fields:
            return name
        for field_id, d in self.site.custom_fields.items():
            if d["name"].lower() == name.lower():
                return field_id
        _fail(f"fields: no custom field is named {name!r} (declare it in 'customFields')")
        raise AssertionError  # unreachable

    def custom_value(self, project: Project, field_id: str, value: Any) -> Any:
        d = self.site.custom_fields[field_id]
        kind = d["kind"]
        if value is None:
            return None

        def option(text: Any, options: list[dict[str, Any]]) -> str:
            # A file may use an option deleted since: the value stays on the issue, as in Jira.
            found = next((o for o in options if o["value"] == text), None)
            if found is None:
                _fail(f"option {text!r} does not exist ({', '.join(o['value'] for o in options)})")
            assert found is not None
            return found["id"]

        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                _fail("must be a number")
            return float(value)
        if kind in ("string", "url"):
            if not isinstance(value, str):
                _fail("must be a string")
            if kind == "string" and len(value) > 255:
                _fail("a single-line text field holds at most 255 characters")
            return value
        if kind == "adf":
            return self.rich(value, d["name"])
        if kind == "select":
            return option(value, d["options"])
        if kind == "multiselect":
            if not isinstance(value, list):
                _fail("must be a list of option values")
            return sorted(option(v, d["options"]) for v in value)
        if kind == "cascading":
            parts = value if isinstance(value, list) else [value]
            if not 1 <= len(parts) <= 2:
                _fail("must be 'parent' or ['parent', 'child']")
            parent_id = option(parts[0], d["options"])
            if len(parts) == 1:
                return [parent_id]
            parent = next(o for o in d["options"] if o["id"] == parent_id)
            return [parent_id, option(parts[1], parent.get("children") or [])]
        if kind == "date":
            return self._date(value, d["name"])
        if kind == "datetime":
            _time(value, d["name"])  # kept as written: its offset is part of the value
            return value
        if kind == "user":
            return self.person(value, d["name"], False)
        if kind == "multiuser":
            if not isinstance(value, list):
                _fail("must be a list of emails")
            return sorted({self.person(v, d["name"], False) for v in value})
        if kind in ("group", "multigroup"):
            names = value if kind == "multigroup" else [value]
            if not isinstance(names, list):
                _fail("must be a list of group names")
            for g in names:
                if g not in self.groups:
                    _fail(f"group {g!r} does not exist")
            return sorted(set(names)) if kind == "multigroup" else names[0]
        if kind in ("version", "multiversion"):
            names = value if kind == "multiversion" else [value]
            if not isinstance(names, list):
                _fail("must be a list of version names")
            ids = []
            for v in names:
                found = next((x["id"] for x in project.versions if x["name"] == v), None)
                if found is None:
                    _fail(f"version {v!r} is not a version of project {project.key}")
                ids.append(found)
            return ids if kind == "multiversion" else ids[0]
        if kind == "project":
            found = next((p for p in self.site.projects.values() if p.key == value), None)
            if found is None:
                _fail(f"project {value!r} is not a project listed before this one")
            assert found is not None
            return found.id
        if kind == "labels":
            if not isinstance(value, list) or not all(
                isinstance(v, str) and v and not any(ch.isspace() for ch in v) for v in value
            ):
                _fail("must be a list of labels without spaces")
            return sorted(set(value))
        if kind == "sprint":
            _fail("set sprints with the issue's 'sprint' (a sprint name of the project's boards)")
        _fail(f"cannot hold values of kind {kind}")
        raise AssertionError  # unreachable

    def attachment(self, issue: Issue, a: Any) -> None:
        if not isinstance(a, dict):
            _fail("an attachment must be an object")
        filename = a.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            _fail("needs a 'filename'")
        if "/" in filename or "\\" in filename:
            _fail(f"the filename {filename!r} must not hold a path")
        sources = [k for k in ("text", "base64", "path") if a.get(k) is not None]
        if len(sources) > 1:
            _fail(f"give one of 'text', 'base64' or 'path', not {' and '.join(sources)}")
        if a.get("base64") is not None:
            try:
                body = base64.b64decode(str(a["base64"]), validate=True)
            except (binascii.Error, ValueError):
                _fail("'base64' is not valid base64")
        elif a.get("path") is not None:
            source = (self.folder / str(a["path"])).resolve()
            try:
                body = source.read_bytes()
            except OSError as e:
                _fail(f"cannot read 'path' {a['path']!r} beside the site file: {e.strerror}")
        else:
            body = str(a.get("text", "")).encode()
        corrupt = a.get("corrupt")
        if corrupt is not None and corrupt not in CORRUPTIONS:
            _fail(f"'corrupt' must be one of {', '.join(CORRUPTIONS)}")
        if corrupt and not body:
            _fail("an empty attachment cannot be corrupted")
        created = _time(a["created"], "created")[0] if a.get("created") else issue.created
        attachment_id = self.site.next_id("attachments", 10_000)
        self.site.add_attachment(
            Attachment(
                attachment_id,
                issue.id,
                filename,
                self.text(a, "mimeType")
                or ("text/plain" if a.get("text") is not None else "application/octet-stream"),
                len(body),
                created,
                self.person(a.get("author"), "author"),
                corrupt=corrupt,
                data=body,
                media_id=str(
                    uuid.uuid5(uuid.NAMESPACE_URL, f"{self.site.cloud_id}/attachment/{attachment_id}")
                ),
            )
        )

    def comment(self, issue: Issue, c: Any, n: int) -> dict[str, Any]:
        if not isinstance(c, dict):
            _fail("a comment must be an object with a 'body'")
        if c.get("body") is None or c.get("body") == "":
            _fail("needs a 'body'")
        created = _time(c["created"], "created")[0] if c.get("created") else issue.created + n + 1
        return {
            "id": issue.id * 1000 + n,
            "author": self.person(c.get("author"), "author"),
            "body": self.rich(c["body"], "body", issue),
            "created": created,
            "updated": _time(c["updated"], "updated")[0] if c.get("updated") else created,
            "visibility": self.visibility(c.get("visibility")),
        }

    def worklog(self, issue: Issue, w: Any, n: int) -> dict[str, Any]:
        if not isinstance(w, dict):
            _fail("a worklog must be an object")
        if w.get("timeSpentSeconds") is not None:
            seconds = w["timeSpentSeconds"]
            if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
                _fail("'timeSpentSeconds' must be a whole number above 0")
        elif w.get("timeSpent") is not None:
            seconds = _duration(w["timeSpent"])
        else:
            _fail("needs 'timeSpent' (like '1h 30m') or 'timeSpentSeconds'")
        started, offset = _time(w["started"], "started") if w.get("started") else (issue.created, 0)
        return {
            "id": issue.id * 1000 + n,
            "author": self.person(w.get("author"), "author"),
            "started": started,
            "started_offset": offset,
            "created": started,
            "updated": started,
            "timeSpentSeconds": seconds,
            "comment": self.rich(w.get("comment"), "comment", issue),
            "visibility": self.visibility(w.get("visibility")),
        }

    def history(self, issue: Issue, h: Any, n: int) -> dict[str, Any]:
        if not isinstance(h, dict) or not isinstance(h.get("items"), list) or not h["items"]:
            _fail("a changelog entry needs a list of 'items'")
        items = []
        for i, it in enumerate(h["items"]):
            if not isinstance(it, dict) or not isinstance(it.get("field"), str) or not it["field"]:
                _fail(f"items[{i}] needs a 'field' (the field's name at the time of the change)")
            item = {
                "field": it["field"],
                "fieldtype": it.get("fieldtype")
                or ("custom" if str(it.get("fieldId", "")).startswith("customfield_") else "jira"),
            }
            if it.get("fieldId") is not None:
                item["fieldId"] = str(it["fieldId"])
            for k in ("from", "fromString", "to", "toString"):
                value = it.get(k)
                if value is not None and not isinstance(value, str):
                    _fail(f"items[{i}].{k} must be a string")
                item[k] = value
            items.append(item)
        created = _time(h["created"], "created")[0] if h.get("created") else issue.created + 1000 * (n + 1)
        return {
            "id": issue.id * 1000 + n,
            "author": self.person(h.get("author"), "author"),
            "created": created,
            "items": items,
        }

    def link(self, issue_id: int, link: Any) -> None:
        if not isinstance(link, dict):
            _fail("a link must be {'type': name, 'outward': key} or {'type': name, 'inward': key}")
        type_name = str(link.get("type", ""))
        link_type = next((t for t in self.site.link_types if t["name"].lower() == type_name.lower()), None)
        if link_type is None:
            names = ", ".join(t["name"] for t in self.site.link_types)
            _fail(f"unknown link type {type_name!r} ({names}; more in 'linkTypes')")
        assert link_type is not None
        sides = [s for s in ("outward", "inward") if link.get(s) is not None]
        if len(sides) != 1:
            _fail(
                "a link names exactly one of 'outward' (this issue blocks it) or 'inward' (it blocks this issue)"
            )
        other_key = str(link[sides[0]])
        other = self.keys.get(other_key)
        if other is None:
            _fail(f"{sides[0]} {other_key!r} is not an issue of the file")
        assert other is not None
        if other == issue_id:
            _fail("an issue cannot link to itself")
        # "A blocks B": A is the link's inward issue, B its outward one (as POST /issueLink has them).
        inward, outward = (issue_id, other) if sides[0] == "outward" else (other, issue_id)
        for lid in self.site.links_by_issue.get(inward, []):
            existing = self.site.links[lid]
            if (existing.type_id, existing.inward_id, existing.outward_id) == (
                link_type["id"],
                inward,
                outward,
            ):
                return
        self.site.add_link(Link(self.site.next_id("links", 10_000), link_type["id"], inward, outward))

    def move(self, old_key: str, issue_id: int) -> None:
        m = ISSUE_KEY.match(old_key)
        if not m:
            _fail(f"{old_key!r} is not an issue key")
        assert m is not None
        if old_key in self.keys or old_key in self.site.moved_keys:
            _fail(f"{old_key} is the key of another issue")
        issue = self.site.issues[issue_id]
        old_project = next((p for p in self.site.projects.values() if p.key == m.group(1)), None)
        if old_project is not None:
            old_project.next_num = max(old_project.next_num, int(m.group(2)) + 1)
        self.site.moved_keys[old_key] = issue_id
        project = self.site.projects[issue.project_id]
        assert issue.content is not None
        issue.content["changelog"].insert(
            0,
            {
                "id": issue_id * 1000 + 999,
                "author": self.admin,
                "created": issue.created + 500,
                "items": [
                    {
                        "field": "Key",
                        "fieldtype": "jira",
                        "from": None,
                        "fromString": old_key,
                        "to": None,
                        "toString": issue.key,
                    },
                    {
                        "field": "project",
                        "fieldtype": "jira",
                        "fieldId": "project",
                        "from": str(old_project.id) if old_project else None,
                        "fromString": old_project.name if old_project else m.group(1),
                        "to": str(project.id),
                        "toString": project.name,
                    },
                ],
            },
        )


def load_site_file(config: SandboxConfig, path: str) -> Site:
    """Build a site holding exactly what the file describes (plus the admin and viewer accounts)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SiteFileError(f"cannot read site file {path}: {e}") from e
    return _Loader(config, path).load(data)
