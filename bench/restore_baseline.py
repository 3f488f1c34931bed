"""The restore path before issue 15 (commit 23e7382), frozen so `python -m bench restore` can measure the
current path side by side with it on the same site. Not used by keepstone itself."""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from backend.jira import JiraClient, JiraError, JiraNotFound
from backend.repository import Repository
from backend.restore.journal import Journal
from backend.restore.mapping import (
    MARKER_PROPERTY,
    TargetSite,
    create_payload,
    marker_label,
    origin_note,
    with_note,
)
from backend.restore.plan import PlannedIssue, RestoreError, RestorePlan

log = logging.getLogger(__name__)
NOTE_ID = re.compile(r"\(id (\w+)\)\]")


@dataclass
class RestoreResult:
    target_project: str = ""
    mapping: dict[str, str] = field(default_factory=dict)  # original key -> restored key
    created: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def status(self) -> str:
        return "failed" if self.errors and not self.mapping else "partial" if self.errors else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status}


class _Tally:
    def __init__(self, result: RestoreResult) -> None:
        self.result = result
        self.lock = threading.Lock()

    def add(self, table: str, name: str, n: int = 1) -> None:
        with self.lock:
            d = getattr(self.result, table)
            d[name] = d.get(name, 0) + n

    def lose(self, line: str) -> None:
        with self.lock:
            self.result.lost.append(line)

    def fail(self, line: str) -> None:
        with self.lock:
            self.result.errors.append(line)

    def map(self, original: str, new: str) -> None:
        with self.lock:
            self.result.mapping[original] = new


def _all_users(client: JiraClient) -> set[str]:
    users, start = set(), 0
    while True:
        page = client.get_json("/rest/api/3/users/search", startAt=start, maxResults=1000)
        users |= {u["accountId"] for u in page}
        if len(page) < 1000:
            return users
        start += len(page)


def _target_site(client: JiraClient, project_key: str) -> TargetSite:
    fields = {f["id"]: f for f in client.get_json("/rest/api/3/field")}
    site = TargetSite(
        fields=fields, fields_by_name={f["name"]: f["id"] for f in fields.values()}, users=_all_users(client)
    )
    project = client.get_json(f"/rest/api/3/project/{project_key}")
    site.components = {
        c["name"]: c["id"] for c in client.get_json(f"/rest/api/3/project/{project_key}/components")
    }
    site.versions = {
        v["name"]: v["id"] for v in client.get_json(f"/rest/api/3/project/{project_key}/versions")
    }
    site.issue_types = {t["name"]: t["id"] for t in project.get("issueTypes") or []}
    site.priorities = {p["name"]: p["id"] for p in client.get_json("/rest/api/3/priority")}
    return site


def _sprints_by_name(client: JiraClient, project_key: str) -> tuple[int | None, dict[str, int]]:
    """The target project's first scrum board and its sprints by name."""
    boards = client.get_json("/rest/agile/1.0/board", projectKeyOrId=project_key).get("values") or []
    scrum = next((b["id"] for b in boards if b.get("type") == "scrum"), None)
    if scrum is None:
        return None, {}
    sprints = client.paged(f"/rest/agile/1.0/board/{scrum}/sprint", "values", 50)
    return scrum, {s["name"]: s["id"] for s in sprints}


class Restorer:
    """One restore run: plan + client + journal."""

    def __init__(
        self,
        client: JiraClient,
        repo: Repository,
        plan: RestorePlan,
        journal: Journal,
        workers: int = 4,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.client = client
        self.repo = repo
        self.plan = plan
        self.journal = journal
        self.workers = workers
        self.progress = progress or (lambda _: None)
        self.result = RestoreResult()
        self.tally = _Tally(self.result)
        self.entries = plan.snapshot.entries
        self.restored: set[str] = set()  # original keys whose content this run restores

    # --- project and configuration ----------------------------------------------------------------

    def _project(self) -> str:
        r = self.plan.request
        if r.target == "original":
            key = self.plan.source_project
            try:
                self.client.get_json(f"/rest/api/3/project/{key}")
            except JiraNotFound:
                raise RestoreError(
                    f"the original project {key} no longer exists: restore into a new project "
                    "(--new-project KEY) instead"
                ) from None
            return key
        key = r.target_key.upper()
        if r.target == "existing":
            try:
                self.client.get_json(f"/rest/api/3/project/{key}")
            except JiraNotFound:
                raise RestoreError(f"there is no project {key} to restore into") from None
            return key
        if self.journal.done("project") is not None:
            return key
        exists = True
        try:
            self.client.get_json(f"/rest/api/3/project/{key}")
        except JiraNotFound:
            exists = False
        started = self.journal.get("project") is not None
        if exists and not started:
            raise RestoreError(f"project {key} already exists: restore into it with --to-project {key}")
        if not exists:
            self.journal.start("project")
            me = self.client.myself()["accountId"]
            source = self.plan.project
            self.client.post_json(
                "/rest/api/3/project",
                {
                    "key": key,
                    "name": r.target_name or f"{source['name']} (restored)",
                    "projectTypeKey": source.get("projectTypeKey", "software"),
                    "leadAccountId": me,
                    "description": source.get("description") or "",
                },
            )
            self.tally.add("created", "projects")
        self.journal.finish("project", {"key": key})
        return key

    def _configuration(self, key: str) -> None:
        for part, path, create in (
            ("components", f"/rest/api/3/project/{key}/components", "/rest/api/3/component"),
            ("versions", f"/rest/api/3/project/{key}/versions", "/rest/api/3/version"),
        ):
            entry = self.entries.get(f"config/{part}")
            if entry is None:
                continue
            present = {item["name"] for item in self.client.get_json(path)}
            project_id = self.client.get_json(f"/rest/api/3/project/{key}")["id"]
            for item in self.repo.read_json(entry):
                if item["name"] in present:
                    continue
                body: dict[str, Any] = {"name": item["name"], "description": item.get("description", "")}
                if part == "components":
                    body["project"] = key
                else:
                    body |= {
                        "projectId": int(project_id),
                        "released": item.get("released", False),
                        "archived": item.get("archived", False),
                    }
                    if item.get("releaseDate"):
                        body["releaseDate"] = item["releaseDate"]
                self.client.post_json(create, body)
                self.tally.add("created", part)

    def _sprints(self, key: str) -> dict[int, int]:
        """Map backed-up sprints to the target board's sprints by name, creating the missing ones."""
        entry = self.entries.get("config/sprints")
        if entry is None:
            return {}
        board, existing = _sprints_by_name(self.client, key)
        mapping: dict[int, int] = {}
        for sprint in self.repo.read_json(entry):
            if sprint["name"] in existing:
                mapping[sprint["id"]] = existing[sprint["name"]]
            elif board is not None and self.plan.request.target == "new":
                created = self.client.post_json(
                    "/rest/agile/1.0/sprint",
                    {
                        "name": sprint["name"],
                        "originBoardId": board,
                        "goal": sprint.get("goal") or "",
                        **{k: sprint[k] for k in ("startDate", "endDate") if sprint.get(k)},
                    },
                )
                mapping[sprint["id"]] = created["id"]
                self.tally.add("created", "sprints")
        return mapping

    # --- issues -----------------------------------------------------------------------------------

    def _find_restored(self, project: str, original: str) -> dict[str, Any] | None:
        jql = f'project = "{project}" AND labels = "{marker_label(original)}"'
        found = list(self.client.search_jql(jql, ["key"], page_size=10))
        return found[0] if found else None

    def _issue(self, p: PlannedIssue, project: str, site: TargetSite) -> None:
        step = f"issue:{p.key}"
        done = self.journal.done(step)
        if done is not None:
            self.tally.map(p.key, done["key"])
            if not done.get("existing"):
                self.restored.add(p.key)
            self.tally.add("skipped", "issues already restored")
            return
        r = self.plan.request
        if r.target == "original":
            try:
                current = self.client.get_json(f"/rest/api/3/issue/{p.key}", fields="project")
                if current["fields"]["project"]["key"] == project:
                    if r.overwrite:
                        payload, lost = create_payload(p.doc, project, site, None, p.key)
                        fields = {
                            k: v for k, v in payload["fields"].items() if k not in ("project", "issuetype")
                        }
                        self.client.request("PUT", f"/rest/api/3/issue/{p.key}", json={"fields": fields})
                        self.tally.add("created", "issues overwritten")
                    else:
                        self.tally.add("skipped", "issues that still exist")
                    self.tally.map(p.key, p.key)
                    self.journal.finish(step, {"key": p.key, "existing": True})
                    return
            except JiraNotFound:
                pass
        found = self._find_restored(project, p.key)
        if found is not None:  # created by an earlier, interrupted run
            self.tally.map(p.key, found["key"])
            self.restored.add(p.key)
            self.journal.finish(step, {"key": found["key"], "id": found["id"]})
            self.tally.add("skipped", "issues found from an earlier run")
            return
        parent_key = self.result.mapping.get(p.parent) if p.parent else None
        if p.parent and parent_key is None and r.target == "original":
            try:
                self.client.get_json(f"/rest/api/3/issue/{p.parent}", fields="key")
                parent_key = p.parent
            except JiraNotFound:
                self.tally.lose(f"{p.key}: parent {p.parent} neither restored nor present")
        payload, lost = create_payload(p.doc, project, site, parent_key, p.key)
        for line in lost:
            self.tally.lose(f"{p.key}: {line}")
        self.journal.start(step)
        created = self.client.post_json("/rest/api/3/issue", payload)
        fields = p.doc.get("fields") or {}
        self._transition(created["key"], fields)
        self.client.request(
            "PUT",
            f"/rest/api/3/issue/{created['key']}/properties/{MARKER_PROPERTY}",
            json={
                "originalKey": p.key,
                "originalId": p.doc.get("id"),
                "created": fields.get("created"),
                "updated": fields.get("updated"),
                "creator": (fields.get("creator") or {}).get("accountId"),
                "reporter": (fields.get("reporter") or {}).get("accountId"),
                "snapshot": self.plan.snapshot.id,
            },
        )
        self.journal.finish(step, {"key": created["key"], "id": created["id"]})
        self.tally.map(p.key, created["key"])
        self.restored.add(p.key)
        self.tally.add("created", "issues")

    def _transition(self, key: str, fields: dict[str, Any]) -> None:
        status = (fields.get("status") or {}).get("name")
        if not status:
            return
        options = self.client.get_json(f"/rest/api/3/issue/{key}/transitions")["transitions"]
        current = self.client.get_json(f"/rest/api/3/issue/{key}", fields="status")["fields"]["status"][
            "name"
        ]
        if current == status:
            return
        match = next((t for t in options if t["to"]["name"] == status), None)
        if match is None:
            self.tally.lose(f"{key}: no transition leads to status {status}")
            return
        body: dict[str, Any] = {"transition": {"id": match["id"]}}
        if fields.get("resolution"):
            body["fields"] = {"resolution": {"name": fields["resolution"]["name"]}}
        self.client.post_json(f"/rest/api/3/issue/{key}/transitions", body)

    # --- content of one issue ---------------------------------------------------------------------

    def _content(self, original: str) -> None:
        new = self.result.mapping[original]
        parts = self.plan.request.parts
        if "comments" in parts and f"comments/{original}" in self.entries:
            existing = self.client.paged(f"/rest/api/3/issue/{new}/comment", "comments", 100)
            have = {m.group(1) for c in existing for m in [NOTE_ID.search(_first_text(c.get("body")))] if m}
            for c in self.repo.read_json(self.entries[f"comments/{original}"]):
                if str(c["id"]) in have:
                    continue
                body = with_note(c.get("body"), origin_note(c.get("author"), c.get("created"), str(c["id"])))
                self.client.post_json(f"/rest/api/3/issue/{new}/comment", {"body": body})
                self.tally.add("created", "comments")
        if "worklogs" in parts and f"worklogs/{original}" in self.entries:
            existing = self.client.paged(f"/rest/api/3/issue/{new}/worklog", "worklogs", 1000)
            have = {
                m.group(1) for w in existing for m in [NOTE_ID.search(_first_text(w.get("comment")))] if m
            }
            for w in self.repo.read_json(self.entries[f"worklogs/{original}"]):
                if str(w["id"]) in have:
                    continue
                note = origin_note(w.get("author"), w.get("started"), str(w["id"]))
                self.client.post_json(
                    f"/rest/api/3/issue/{new}/worklog",
                    {
                        "timeSpentSeconds": w["timeSpentSeconds"],
                        "started": w["started"],
                        "comment": with_note(w.get("comment"), note),
                    },
                )
                self.tally.add("created", "worklogs")
        if "attachments" in parts:
            mine = [
                e
                for e in self.entries.values()
                if e.kind == "attachment" and e.name.split("/")[1] == original
            ]
            if mine:
                present = self.client.get_json(f"/rest/api/3/issue/{new}", fields="attachment")["fields"][
                    "attachment"
                ]
                have = {(a["filename"], a["size"]) for a in present}
                for entry in sorted(mine, key=lambda e: int(e.attrs.get("id") or 0)):
                    if (entry.attrs.get("filename"), entry.size) in have:
                        continue
                    self._upload(new, entry)
                    self.tally.add("created", "attachments")
        if "watchers" in parts and f"watchers/{original}" in self.entries:
            for w in self.repo.read_json(self.entries[f"watchers/{original}"]).get("watchers") or []:
                try:
                    self.client.post_json(f"/rest/api/3/issue/{new}/watchers", w["accountId"])
                except JiraError:
                    self.tally.lose(f"{original}: watcher {w['accountId']} could not be added")

    def _upload(self, key: str, entry) -> None:
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as f:
            for chunk in self.repo.open_stream(entry):
                f.write(chunk)
            f.seek(0)
            files = {
                "file": (
                    entry.attrs.get("filename") or "attachment",
                    f,
                    entry.attrs.get("mimeType") or "application/octet-stream",
                )
            }
            self.client.request(
                "POST",
                f"/rest/api/3/issue/{key}/attachments",
                files=files,
                headers={"X-Atlassian-Token": "no-check"},
            )

    # --- links ------------------------------------------------------------------------------------

    def _links(self) -> None:
        wanted: set[tuple[str, str, str]] = set()
        for p in self.plan.issues:
            if p.key not in self.result.mapping:
                continue
            for link in (p.doc.get("fields") or {}).get("issuelinks") or []:
                type_name = link["type"]["name"]
                if "outwardIssue" in link:
                    inward, outward = p.key, link["outwardIssue"]["key"]
                else:
                    inward, outward = link["inwardIssue"]["key"], p.key
                wanted.add((type_name, inward, outward))
        for type_name, inward, outward in sorted(wanted):
            ends = [self._resolve(k) for k in (inward, outward)]
            if None in ends:
                missing = inward if ends[0] is None else outward
                self.tally.lose(
                    f"link {inward} {type_name} {outward}: {missing} is neither restored nor in the site"
                )
                continue
            step = f"link:{type_name}:{inward}:{outward}"
            if self.journal.done(step) is not None:
                continue
            self.client.post_json(
                "/rest/api/3/issueLink",
                {
                    "type": {"name": type_name},
                    "inwardIssue": {"key": ends[0]},
                    "outwardIssue": {"key": ends[1]},
                },
            )
            self.journal.finish(step, True)
            self.tally.add("created", "links")

    def _resolve(self, original: str) -> str | None:
        if original in self.result.mapping:
            return self.result.mapping[original]
        if self.plan.request.target == "original":
            try:
                return self.client.get_json(f"/rest/api/3/issue/{original}", fields="key")["key"]
            except JiraNotFound:
                return None
        return None

    # --- the whole run ----------------------------------------------------------------------------

    def run(self) -> RestoreResult:
        before = self.client.stats.requests
        try:
            project = self._project()
            self.result.target_project = project
            if "configuration" in self.plan.request.parts or self.plan.request.target == "new":
                self._configuration(project)
            site = _target_site(self.client, project)
            site.sprints = self._sprints(project)
            done = 0
            with ThreadPoolExecutor(self.workers, thread_name_prefix="restore") as pool:
                for level in self.plan.levels:
                    for future in [pool.submit(self._issue, p, project, site) for p in level]:
                        future.result()
                    done += len(level)
                    self.progress({"phase": "issues", "done": done, "total": len(self.plan.issues)})
                content = [pool.submit(self._content, k) for k in sorted(self.restored)]
                for future in content:
                    future.result()
            if "links" in self.plan.request.parts:
                self._links()
        except RestoreError:
            raise
        except JiraError as e:
            self.tally.fail(f"Jira: {e}")
        finally:
            self.result.requests = self.client.stats.requests - before
        return self.result


def _first_text(doc: Any) -> str:
    try:
        return str(doc["content"][0]["content"][0]["text"])
    except (KeyError, IndexError, TypeError):
        return ""
