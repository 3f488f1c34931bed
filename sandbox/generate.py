"""Deterministic site generation: the same seed always gives the same site, byte for byte.

`build_site` makes the compact skeleton (users, projects, issue records, links, attachment records);
`issue_content` makes one issue's full content from the seed when a request needs it.
"""

from __future__ import annotations

import copy
import hashlib
import random
import uuid
from functools import lru_cache
from typing import Any

from sandbox import catalog
from sandbox.config import SandboxConfig
from sandbox.model import Attachment, Issue, Link, Project, Site, User

BASE_TIME_MS = 1_704_103_200_000  # 2024-01-01T10:00:00Z
LATEST_TIME_MS = 1_790_000_000_000  # 2026-09-22: generated history ends before "now"
DAY_MS = 86_400_000
ISSUE_ID_BASE = 10_000
ATTACHMENT_ID_BASE = 10_000
LINK_ID_BASE = 10_000
PROJECT_ID_BASE = 10_000


def _account_id(rng: random.Random) -> str:
    return "5b10" + "".join(rng.choice("0123456789abcdef") for _ in range(20))


def build_site(config: SandboxConfig) -> Site:
    """Generate the skeleton of a site from the configuration (fast: content comes later, on demand)."""
    rng = random.Random(config.seed)
    cloud_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    site = Site(cloud_id=cloud_id, seed=config.seed)
    admin = User(
        _account_id(rng),
        "Site Admin",
        config.admin_email,
        config.admin_token,
        groups=("jira-administrators", "jira-software-users", "site-admins"),
    )
    viewer = User(
        _account_id(rng),
        "Vera Viewer",
        config.viewer_email,
        config.viewer_token,
        groups=("jira-software-users",),
    )
    site.users = {admin.account_id: admin, viewer.account_id: viewer}
    for i in range(max(config.users, 1)):
        first, last = catalog.FIRST_NAMES[i % 12], catalog.LAST_NAMES[(i * 7) % 10]
        user = User(
            _account_id(rng),
            f"{first} {last}",
            f"{first.lower()}.{last.lower()}{i}@example.com",
            active=i % 9 != 8,
            groups=("jira-software-users",),
        )
        site.users[user.account_id] = user
    site.categories = [
        {"id": "10000", "name": "Engineering", "description": "Product engineering"},
        {"id": "10001", "name": "Business", "description": "Business teams"},
    ]
    people = [u.account_id for u in site.users.values() if u.token is None]
    site.people = tuple(people)
    for p in range(config.projects):
        _build_project(site, config, rng, p, people, viewer.account_id)
    _build_site_objects(site, admin.account_id)
    return site


def _project_identity(index: int) -> tuple[str, str]:
    if index < len(catalog.PROJECT_NAMES):
        return catalog.PROJECT_NAMES[index]
    return f"P{index}", f"Project {index}"


def _build_project(
    site: Site, config: SandboxConfig, rng: random.Random, index: int, people: list[str], viewer_id: str
) -> None:
    key, name = _project_identity(index)
    project_id = PROJECT_ID_BASE + index
    type_key = "business" if index % 4 == 3 else "software"
    project = Project(
        id=project_id,
        key=key,
        name=name,
        type_key=type_key,
        lead=rng.choice(people),
        description=f"{name}: everything the {name.lower()} team works on.",
        category_id=10000 if type_key == "software" else 10001,
        created=BASE_TIME_MS - index * DAY_MS,
    )
    if index == config.projects - 1 and config.projects > 1:
        project.hidden_from.add(viewer_id)
    for c in range(3 + index % 3):
        cid = site.next_id("components", 10000)
        project.components.append(
            {
                "id": cid,
                "name": ["API", "UI", "Storage", "Auth", "Billing"][c],
                "description": f"The {['API', 'UI', 'Storage', 'Auth', 'Billing'][c]} part",
                "lead": rng.choice(people),
                "assigneeType": "PROJECT_DEFAULT",
            }
        )
    for v in range(2 + index % 3):
        vid = site.next_id("versions", 10000)
        released = v < 1 + index % 2
        project.versions.append(
            {
                "id": vid,
                "name": f"{1 + v}.0",
                "description": f"Release {1 + v}.0",
                "released": released,
                "archived": False,
                "releaseDate": f"2025-{1 + v * 3:02d}-15",
            }
        )
    site.projects[project_id] = project
    board_id = site.next_id("boards", 1)
    if not config.boards:
        board_id = 0
    else:
        site.boards.append(
            {
                "id": board_id,
                "name": f"{key} board",
                "type": "scrum" if type_key == "software" else "kanban",
                "project_id": project_id,
            }
        )
    if type_key == "software" and config.boards:
        for s, state in enumerate(("closed", "closed", "active", "future")):
            sid = site.next_id("sprints", 1)
            start = BASE_TIME_MS + (s * 14 + index) * DAY_MS
            site.sprints.append(
                {
                    "id": sid,
                    "name": f"{key} Sprint {s + 1}",
                    "state": state,
                    "board_id": board_id,
                    "startDate": start,
                    "endDate": start + 14 * DAY_MS,
                    "goal": f"Ship {key} {s + 1}",
                }
            )

    last_epic: int | None = None
    last_parent: int | None = None
    issue_ids: list[int] = []
    for num in range(1, config.issues_per_project + 1):
        issue_id = site.next_id("issues", ISSUE_ID_BASE)
        r = random.Random(config.seed * 1_000_003 + issue_id)
        roll = r.random()
        parent_id: int | None = None
        if num % 20 == 1:
            type_id = catalog.EPIC
        elif roll < 0.15 and last_parent is not None:
            type_id, parent_id = catalog.SUBTASK, last_parent
        else:
            type_id = (catalog.STORY, catalog.TASK, catalog.BUG)[int(roll * 100) % 3]
            if last_epic is not None and r.random() < 0.6:
                parent_id = last_epic
        created = BASE_TIME_MS + num * 3_600_000 + index * 60_000
        updated = min(created + int(r.random() * 400 * DAY_MS), LATEST_TIME_MS)
        issue = Issue(issue_id, f"{key}-{num}", project_id, num, type_id, parent_id, created, updated)
        site.add_issue(issue)
        issue_ids.append(issue_id)
        if type_id == catalog.EPIC:
            last_epic = issue_id
        elif type_id != catalog.SUBTASK:
            last_parent = issue_id
        if len(issue_ids) > 3 and r.random() < 0.12:
            other = issue_ids[int(r.random() * (len(issue_ids) - 1))]
            link_type = catalog.LINK_TYPES[int(r.random() * len(catalog.LINK_TYPES))]["id"]
            site.add_link(Link(site.next_id("links", LINK_ID_BASE), link_type, other, issue_id))
        if r.random() < config.attachment_share:
            for a in range(1 + int(r.random() * 2)):
                _add_generated_attachment(site, config, r, issue, a, people)
    project.next_num = config.issues_per_project + 1


def _add_generated_attachment(
    site: Site, config: SandboxConfig, r: random.Random, issue: Issue, index: int, people: list[str]
) -> None:
    roll = r.random()
    if roll < 0.05:
        size = 0
    elif roll < 0.05 + config.attachment_large_share:
        size = max(config.attachment_large_bytes // 2, int(r.random() * config.attachment_large_bytes))
    else:
        size = min(config.attachment_max_bytes, 200 + int(r.random() ** 3 * 400_000))
    kind = r.choice(["png", "pdf", "txt", "log", "zip"])
    mime = {
        "png": "image/png",
        "pdf": "application/pdf",
        "txt": "text/plain",
        "log": "text/plain",
        "zip": "application/zip",
    }[kind]
    corrupt = None
    if size > 0 and r.random() < config.corrupt_share:
        corrupt = r.choice(["truncated", "wrong-length", "error"])
    attachment = Attachment(
        id=site.next_id("attachments", ATTACHMENT_ID_BASE),
        issue_id=issue.id,
        filename=f"{['screenshot', 'report', 'notes', 'server', 'export'][index % 5]}-{issue.num}.{kind}",
        mime_type=mime,
        size=size,
        created=issue.created + 3_600_000 * (index + 1),
        author=people[int(r.random() * len(people))],
        corrupt=corrupt,
    )
    site.add_attachment(attachment)


def _build_site_objects(site: Site, admin_id: str) -> None:
    for i, (name, jql) in enumerate(
        [
            ("My open issues", "assignee = currentUser() AND resolution = Unresolved"),
            ("Recently updated", "updated >= -7d ORDER BY updated DESC"),
            ("Open bugs", "issuetype = Bug AND statusCategory != Done"),
        ]
    ):
        site.filters.append(
            {
                "id": str(10000 + i),
                "name": name,
                "jql": jql,
                "owner": admin_id,
                "description": f"Filter: {name}",
                "favourite": i == 0,
            }
        )
    for i, name in enumerate(["Team overview", "Release health"]):
        site.dashboards.append({"id": str(10000 + i), "name": name, "owner": admin_id, "description": name})


# --- content made on demand ---------------------------------------------------------------------------


def _words(r: random.Random, n: int) -> str:
    return " ".join(r.choices(catalog.WORDS, k=n))


def _adf(r: random.Random, people: list[str], paragraphs: int, table: bool = False) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for _ in range(paragraphs):
        nodes: list[dict[str, Any]] = [
            {"type": "text", "text": _words(r, 8 + int(r.random() * 20)).capitalize() + ". "}
        ]
        if r.random() < 0.3:
            nodes.append({"type": "mention", "attrs": {"id": r.choice(people), "text": "@someone"}})
            nodes.append({"type": "text", "text": " please have a look.", "marks": [{"type": "strong"}]})
        content.append({"type": "paragraph", "content": nodes})
    if r.random() < 0.25:
        content.append(
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": _words(r, 5)}]}
                        ],
                    }
                    for _ in range(2 + int(r.random() * 3))
                ],
            }
        )
    if r.random() < 0.1:
        content.append(
            {
                "type": "codeBlock",
                "attrs": {"language": "python"},
                "content": [{"type": "text", "text": "def retry():\n    return backoff()"}],
            }
        )
    if table:
        rows = []
        for row in range(3):
            cell_type = "tableHeader" if row == 0 else "tableCell"
            rows.append(
                {
                    "type": "tableRow",
                    "content": [
                        {
                            "type": cell_type,
                            "attrs": {},
                            "content": [
                                {"type": "paragraph", "content": [{"type": "text", "text": _words(r, 2)}]}
                            ],
                        }
                        for _ in range(3)
                    ],
                }
            )
        content.append(
            {"type": "table", "attrs": {"isNumberColumnEnabled": False, "layout": "default"}, "content": rows}
        )
    return {"type": "doc", "version": 1, "content": content}


@lru_cache(maxsize=4096)
def _generated(
    seed: int,
    issue_id: int,
    people: tuple[str, ...],
    project_key: str,
    num: int,
    type_id: str,
    created: int,
    updated: int,
    component_ids: tuple[int, ...],
    version_ids: tuple[int, ...],
    sprint_ids: tuple[int, ...],
) -> dict[str, Any]:
    r = random.Random(seed * 7_000_003 + issue_id)
    plist = list(people)
    status = catalog.STATUSES[int(r.random() * len(catalog.STATUSES))]["id"]
    done = catalog.STATUS_BY_ID[status]["category"] == "done"
    fields: dict[str, Any] = {
        "summary": f"{project_key}-{num}: " + _words(r, 4 + int(r.random() * 6)).capitalize(),
        "description": _adf(r, plist, 1 + int(r.random() * 3), table=r.random() < 0.15)
        if r.random() < 0.9
        else None,
        "status": status,
        "priority": catalog.PRIORITIES[int(r.random() * 5)]["id"],
        "resolution": catalog.RESOLUTIONS[int(r.random() * 3)]["id"] if done else None,
        "resolutiondate": updated if done else None,
        "labels": sorted(set(r.sample(catalog.LABELS, int(r.random() * 4)))),
        "components": sorted(r.sample(list(component_ids), min(len(component_ids), int(r.random() * 3)))),
        "fixVersions": sorted(r.sample(list(version_ids), min(len(version_ids), int(r.random() * 2)))),
        "versions": [],
        "assignee": r.choice(plist) if r.random() < 0.8 else None,
        "reporter": r.choice(plist),
        "creator": r.choice(plist),
        "duedate": f"2026-{1 + int(r.random() * 12):02d}-{1 + int(r.random() * 28):02d}"
        if r.random() < 0.3
        else None,
        "environment": {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Chrome 130 on macOS"}]}],
        }
        if r.random() < 0.1
        else None,
        "timeoriginalestimate": 3600 * int(1 + r.random() * 16) if r.random() < 0.4 else None,
    }
    custom: dict[str, Any] = {}
    for fid, definition in catalog.CUSTOM_FIELDS.items():
        if r.random() < 0.35:
            continue
        kind = definition["kind"]
        if kind == "number":
            custom[fid] = float(r.choice([1, 2, 3, 5, 8, 13]))
        elif kind == "select":
            custom[fid] = r.choice(definition["options"])["id"]
        elif kind == "multiselect":
            custom[fid] = sorted(o["id"] for o in r.sample(definition["options"], 1 + int(r.random() * 2)))
        elif kind == "date":
            custom[fid] = f"2026-{1 + int(r.random() * 12):02d}-{1 + int(r.random() * 28):02d}"
        elif kind == "user":
            custom[fid] = r.choice(plist)
        elif kind == "multiuser":
            custom[fid] = sorted(set(r.sample(plist, 1 + int(r.random() * 2))))
        elif kind == "adf":
            custom[fid] = _adf(r, plist, 1)
        elif kind == "labels":
            custom[fid] = sorted(
                set(r.sample(["alpha", "beta", "gamma", "vip", "q3"], 1 + int(r.random() * 2)))
            )
        elif kind == "url":
            custom[fid] = f"https://status.example.com/incidents/{issue_id}"
        elif kind == "string":
            custom[fid] = (
                f"0|i{issue_id:05d}:" if fid == "customfield_10019" else f"build-{int(r.random() * 9999)}"
            )
        elif kind == "sprint" and sprint_ids and type_id not in (catalog.EPIC,):
            custom[fid] = [r.choice(list(sprint_ids))]
    fields["custom"] = custom

    def count(common: int, beyond: int, share: float) -> int:
        return beyond + int(r.random() * beyond) if r.random() < share else int(r.random() * (common + 1))

    comments = []
    t = created
    for c in range(count(4, 21, 0.05)):
        t += int(r.random() * DAY_MS)
        comments.append(
            {
                "id": issue_id * 1000 + c,
                "author": r.choice(plist),
                "body": _adf(r, plist, 1 + int(r.random() * 2)),
                "created": t,
                "updated": t,
                "public": True,
            }
        )
    worklogs = []
    for w in range(count(3, 21, 0.02)):
        t += int(r.random() * DAY_MS)
        worklogs.append(
            {
                "id": issue_id * 1000 + w,
                "author": r.choice(plist),
                "started": t,
                "created": t,
                "updated": t,
                "timeSpentSeconds": 900 * (1 + int(r.random() * 16)),
                "comment": _adf(r, plist, 1) if r.random() < 0.5 else None,
            }
        )
    changelog = []
    t = created
    last_status = "10000"
    for h in range(count(6, 41, 0.03) + 1):
        t += int(r.random() * DAY_MS / 2)
        if h % 2 == 0:
            new_status = catalog.STATUSES[int(r.random() * 4)]["id"]
            items = [
                {
                    "field": "status",
                    "fieldtype": "jira",
                    "fieldId": "status",
                    "from": last_status,
                    "fromString": catalog.STATUS_BY_ID[last_status]["name"],
                    "to": new_status,
                    "toString": catalog.STATUS_BY_ID[new_status]["name"],
                }
            ]
            last_status = new_status
        else:
            items = [
                {
                    "field": "summary",
                    "fieldtype": "jira",
                    "fieldId": "summary",
                    "from": None,
                    "fromString": _words(r, 4),
                    "to": None,
                    "toString": _words(r, 4),
                }
            ]
        changelog.append({"id": issue_id * 1000 + h, "author": r.choice(plist), "created": t, "items": items})
    remotelinks = []
    if r.random() < 0.08:
        remotelinks.append(
            {
                "id": issue_id * 10,
                "globalId": f"system=https://ci.example.com&id={issue_id}",
                "relationship": "causes",
                "object": {"url": f"https://ci.example.com/build/{issue_id}", "title": f"Build {issue_id}"},
            }
        )
    properties = {}
    if r.random() < 0.1:
        properties["keepstone.demo"] = {"reviewed": bool(r.random() < 0.5), "score": int(r.random() * 100)}
    return {
        "fields": fields,
        "comments": comments,
        "worklogs": worklogs,
        "changelog": changelog,
        "remotelinks": remotelinks,
        "watchers": sorted(set(r.sample(plist, 1 + int(r.random() * 3)))),
        "votes": sorted(set(r.sample(plist, int(r.random() * 3)))),
        "properties": properties,
    }


def issue_content(site: Site, issue: Issue) -> dict[str, Any]:
    """Return the full content of an issue (read-only: call `materialise` before changing it)."""
    if issue.content is not None:
        return issue.content
    project = site.projects[issue.project_id]
    people = site.people or tuple(site.users)
    board_ids = {b["id"] for b in site.boards if b["project_id"] == project.id}
    sprint_ids = tuple(s["id"] for s in site.sprints if s["board_id"] in board_ids and s["state"] != "future")
    return _generated(
        site.seed,
        issue.id,
        people,
        project.key,
        issue.num,
        issue.type_id,
        issue.created,
        issue.updated,
        tuple(c["id"] for c in project.components),
        tuple(v["id"] for v in project.versions),
        sprint_ids,
    )


def materialise(site: Site, issue: Issue) -> dict[str, Any]:
    """Give an issue its own, writable copy of its content and return it."""
    with site.lock:
        if issue.content is None:
            issue.content = copy.deepcopy(issue_content(site, issue))
        return issue.content


def attachment_bytes(
    site: Site, attachment: Attachment, start: int = 0, end: int | None = None, chunk: int = 65_536
):
    """Yield an attachment's bytes from `start` to `end` (exclusive) without holding them all in memory."""
    real_size = (
        attachment.size - (attachment.size // 10 + 1)
        if attachment.corrupt == "wrong-length"
        else attachment.size
    )
    end = real_size if end is None else min(end, real_size)
    if attachment.data is not None:
        for offset in range(start, end, chunk):
            yield attachment.data[offset : min(end, offset + chunk)]
        return
    text = attachment.mime_type.startswith("text/")
    block = start // chunk
    while block * chunk < end:
        data = _block(site.seed, attachment.id, block, chunk, text)
        lo = max(start - block * chunk, 0)
        hi = min(end - block * chunk, chunk)
        yield data[lo:hi]
        block += 1


def real_size(attachment: Attachment) -> int:
    """Return how many bytes a download of the attachment really delivers when it succeeds."""
    if attachment.corrupt == "wrong-length":
        return attachment.size - (attachment.size // 10 + 1)
    return attachment.size


@lru_cache(maxsize=64)
def _block(seed: int, attachment_id: int, block: int, chunk: int, text: bool) -> bytes:
    r = random.Random((seed << 40) ^ (attachment_id << 20) ^ block)
    if text:
        line = f"{block:08d} INFO worker-{attachment_id % 7} {_words(r, 9)}\n".encode()
        return (line * (chunk // len(line) + 1))[:chunk]
    return r.randbytes(chunk)


def attachment_sha256(site: Site, attachment: Attachment) -> str:
    """Return the SHA-256 of the bytes a successful download delivers."""
    digest = hashlib.sha256()
    for part in attachment_bytes(site, attachment):
        digest.update(part)
    return digest.hexdigest()
