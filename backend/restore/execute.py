"""Carry out a restore plan against Jira, step by step, recording each step in the journal.

Every step first asks the target whether its work is already there (restored-from label, origin notes,
same-name attachments, existing links), so running a killed restore again finishes it without duplicates.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
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
from backend.restore.config_objects import Backup as ConfigurationBackup
from backend.restore.config_objects import wanted as configuration_wanted
from backend.restore.configuration import ConfigurationRestore, board_for_sprint
from backend.restore.journal import Journal
from backend.restore.mapping import (
    ATTACHMENTS_PROPERTY,
    CHANGELOG_PROPERTY,
    MARKER_PROPERTY,
    TargetSite,
    create_payload,
    marker_label,
    origin_note,
    with_note,
)
from backend.restore.plan import PlannedIssue, RestoreError, RestorePlan, link_set

log = logging.getLogger(__name__)
NOTE_ID = re.compile(r"\(id (\w+)\)\]")
MEDIA_LOCATION = re.compile(r"/file/([^/?]+)")
BULK = 50  # issues per POST /issue/bulk, Jira's limit
FALLBACK_VISIBILITY = {"type": "role", "value": "Administrators"}


@dataclass
class RestoreResult:
    target_project: str = ""
    mapping: dict[str, str] = field(default_factory=dict)  # original key -> restored key
    created: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    outside: dict[str, str] = field(default_factory=dict)  # link ends outside the restored set -> site key
    stopped: bool = False  # asked to stop (first Ctrl-C): ended after a step; the same command resumes
    configuration: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # boards/filters/dashboards: old -> new

    @property
    def status(self) -> str:
        if self.stopped:
            return "stopped"
        if not self.errors:
            return "ok"
        done = self.mapping or self.created or self.skipped  # something came back (or was there already)
        return "partial" if done else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status}


class _Tally:
    def __init__(self, result: RestoreResult, progress: Callable[[dict[str, Any]], None]) -> None:
        self.result = result
        self.lock = threading.Lock()
        self.progress = progress

    def add(self, table: str, name: str, n: int = 1) -> None:
        with self.lock:
            d = getattr(self.result, table)
            d[name] = d.get(name, 0) + n
        if table == "created":
            self.progress({"created": name, "n": n})

    def lose(self, line: str) -> None:
        with self.lock:
            self.result.lost.append(line)

    def fail(self, line: str) -> None:
        with self.lock:
            self.result.errors.append(line)

    def item_error(self, key: str, e: JiraError) -> None:
        """A refused item: named by issue key and field, and the restore goes on."""
        detail = (
            "; ".join(f"{k}: {v}" for k, v in sorted(e.errors.items())) or "; ".join(e.messages) or str(e)
        )
        self.fail(f"{key}: {detail}")

    def map(self, original: str, new: str) -> None:
        with self.lock:
            self.result.mapping[original] = new


def _all_users(client: JiraClient) -> set[str]:
    """The accountIds of the site's users."""
    return {u["accountId"] for u in client.all_users()}


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
    """The target project's first scrum board, and the sprints of its scrum boards by name."""
    boards = client.get_json("/rest/agile/1.0/board", projectKeyOrId=project_key).get("values") or []
    scrum = [b["id"] for b in boards if b.get("type") == "scrum"]
    if not scrum:
        return None, {}
    sprints = [s for b in scrum for s in client.paged(f"/rest/agile/1.0/board/{b}/sprint", "values", 50)]
    return scrum[0], {s["name"]: s["id"] for s in sprints}


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
        bulk: bool = True,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.repo = repo
        self.plan = plan
        self.journal = journal
        self.workers = workers
        self.progress = progress or (lambda _: None)
        self.result = RestoreResult()
        self.tally = _Tally(self.result, self.progress)
        self.stop = stop or threading.Event()  # set: end after the current step (the journal resumes)
        self.entries = plan.snapshot.entries
        self.restored: set[str] = set()  # original keys whose content this run restores
        self._types: dict[
            str, tuple[str, list[dict[str, Any]]]
        ] = {}  # issue type -> (initial status, transitions)
        self.bulk = bulk  # create issues 50 a request; False: one request each (the path before issue 15)
        self.fresh: set[str] = set()  # originals created by this run: nothing of theirs is in the site yet
        self.own_project = False  # this journal created the target project
        self._found: dict[str, str | None] = {}  # original key -> key in the site (links outside the set)
        self.config_restore: ConfigurationRestore | None = None  # boards, filters, dashboards, roles

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
            self.own_project = bool(self.journal.done("project").get("created"))
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
            lead = (source.get("lead") or {}).get("accountId")
            if lead and lead != me and lead not in _all_users(self.client):
                self.tally.lose(
                    f"project lead {lead} no longer exists in the site: the restoring account leads"
                )
                lead = None
            self.client.post_json(
                "/rest/api/3/project",
                {
                    "key": key,
                    "name": r.target_name or f"{source['name']} (restored)",
                    "projectTypeKey": source.get("projectTypeKey", "software"),
                    "leadAccountId": lead or me,
                    "description": source.get("description") or "",
                },
            )
            self.tally.add("created", "projects")
            self.own_project = True
        self.journal.finish("project", {"key": key, "created": self.own_project})
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

    def _boards_filters_dashboards_roles(self, key: str) -> None:
        """Boards (with their filters), the project's filters and dashboards, role members
        (`configuration.py`)."""
        users: list[set[str]] = []

        def target_users() -> set[str]:
            if not users:
                users.append(_all_users(self.client))
            return users[0]

        self.config_restore = ConfigurationRestore(
            self.client,
            ConfigurationBackup(self.repo, self.entries, self.plan.project),
            self.journal,
            self.tally,
            self.result.configuration,
            same_project=key == self.plan.source_project,
            may_change=self.own_project or self.plan.request.overwrite,
            users=target_users,
        )
        self.config_restore.run(key)

    def _sprints(self, key: str) -> dict[int, int]:
        """Map backed-up sprints to the target board's sprints by name, creating the missing ones."""
        entry = self.entries.get("config/sprints")
        if entry is None:
            return {}
        board, existing = _sprints_by_name(self.client, key)
        mapping: dict[int, int] = {}
        order = {"closed": 0, "active": 1, "future": 2}  # one active sprint a board: close before starting
        sprints = sorted(self.repo.read_json(entry), key=lambda x: (order.get(x.get("state"), 2), x["id"]))
        boards = self.result.configuration.get("boards") or {}
        for sprint in sprints:
            if sprint["name"] in existing:
                mapping[sprint["id"]] = existing[sprint["name"]]
            elif board is not None and self.plan.request.target == "new":
                created = self.client.post_json(
                    "/rest/agile/1.0/sprint",
                    {
                        "name": sprint["name"],
                        "originBoardId": board_for_sprint(sprint, boards) or board,
                        "goal": sprint.get("goal") or "",
                        **{k: sprint[k] for k in ("startDate", "endDate") if sprint.get(k)},
                    },
                )
                mapping[sprint["id"]] = created["id"]
                self.tally.add("created", "sprints")
                self._sprint_state(created["id"], sprint)
        return mapping

    def _sprint_state(self, sprint_id: int, sprint: dict[str, Any]) -> None:
        """Jira creates sprints as future; move it as Jira allows (future -> active -> closed)."""
        moves = {"active": ["active"], "closed": ["active", "closed"]}.get(sprint.get("state") or "", [])
        try:
            for state in moves:
                self.client.post_json(f"/rest/agile/1.0/sprint/{sprint_id}", {"state": state})
        except JiraError as e:
            self.tally.lose(f"sprint {sprint['name']}: could not be made {sprint.get('state')} ({e})")

    # --- issues -----------------------------------------------------------------------------------

    def _find_restored(self, project: str, original: str) -> dict[str, Any] | None:
        jql = f'project = "{project}" AND labels = "{marker_label(original)}"'
        found = list(self.client.search_jql(jql, ["key"], page_size=10))
        return found[0] if found else None

    def _issue(self, p: PlannedIssue, project: str, site: TargetSite) -> None:
        payload = self._prepare(p, project, site)
        if payload is not None:
            self.journal.start(f"issue:{p.key}")
            self._created(p, self.client.post_json("/rest/api/3/issue", payload))

    def _bulk(
        self, level: list[PlannedIssue], project: str, site: TargetSite, pool: ThreadPoolExecutor
    ) -> None:
        """Create a level's issues 50 a request (POST /issue/bulk); the ones it refuses are created one by one,
        so each refusal is named with its issue key and field."""
        prepared = []
        for p, future in [(p, pool.submit(self._prepare, p, project, site)) for p in level]:
            try:
                payload = future.result()
            except JiraError as e:
                self.tally.item_error(p.key, e)
                continue
            if payload is not None:
                prepared.append((p, payload))

        def chunk(items: list[tuple[PlannedIssue, dict[str, Any]]]) -> list[PlannedIssue]:
            for p, _ in items:
                self.journal.start(f"issue:{p.key}")
            try:
                answer = self.client.post_json(
                    "/rest/api/3/issue/bulk", {"issueUpdates": [x for _, x in items]}
                )
            except JiraError as e:
                if e.status != 400:
                    raise
                return [p for p, _ in items]  # all refused: each one alone names its problem
            failed = {e["failedElementNumber"] for e in answer.get("errors") or []}
            ok = [p for n, (p, _) in enumerate(items) if n not in failed]
            for p, created in zip(ok, answer.get("issues") or [], strict=True):
                self._created(p, created, transition=False)
                made.append((p, created["key"]))
            return [p for n, (p, _) in enumerate(items) if n in failed]

        made: list[tuple[PlannedIssue, str]] = []

        batches = [prepared[i : i + BULK] for i in range(0, len(prepared), BULK)]
        refused = [p for f in [pool.submit(chunk, b) for b in batches] for p in f.result()]
        payloads = dict((p.key, x) for p, x in prepared)
        jobs = [(p, pool.submit(self._create_one, p, payloads[p.key])) for p in refused]
        jobs += [(p, pool.submit(self._transition, key, p.doc.get("fields") or {})) for p, key in made]
        for p, future in jobs:
            try:
                future.result()
            except JiraError as e:
                self.tally.item_error(p.key, e)

    def _create_one(self, p: PlannedIssue, payload: dict[str, Any]) -> None:
        self._created(p, self.client.post_json("/rest/api/3/issue", payload))

    def _prepare(self, p: PlannedIssue, project: str, site: TargetSite) -> dict[str, Any] | None:
        """The create body for an issue, or None when it needs none (done before, or still in the site)."""
        step = f"issue:{p.key}"
        seen = self.journal.get(step)
        done = self.journal.done(step)
        if done is not None:
            self.tally.map(p.key, done["key"])
            if not done.get("existing"):
                self.restored.add(p.key)
            self.tally.add("skipped", "issues already restored")
            return None
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
                    return None
            except JiraNotFound:
                pass
        # Look for the work of an earlier, interrupted run unless this journal made the project and never
        # started this issue (then nobody can have created it).
        found = None
        if seen is not None or not self.own_project:
            found = self._find_restored(project, p.key)
        if found is not None:  # created by an earlier, interrupted run
            self.tally.map(p.key, found["key"])
            self.restored.add(p.key)
            self.journal.finish(step, {"key": found["key"], "id": found["id"]})
            self.tally.add("skipped", "issues found from an earlier run")
            return None
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
        payload["properties"] = self._properties(p, p.doc.get("fields") or {})
        return payload

    def _created(self, p: PlannedIssue, created: dict[str, Any], transition: bool = True) -> None:
        self.journal.finish(f"issue:{p.key}", {"key": created["key"], "id": created["id"]})
        self.tally.map(p.key, created["key"])
        with self.tally.lock:
            self.restored.add(p.key)
            self.fresh.add(p.key)
        self.tally.add("created", "issues")
        if transition:
            self._transition(created["key"], p.doc.get("fields") or {})

    def _properties(self, p: PlannedIssue, fields: dict[str, Any]) -> list[dict[str, Any]]:
        """The marker and the changelog as entity properties, sent inside the create body (no extra request).

        The changelog is split into properties of at most ~30 000 characters (Jira's limit is 32 768 each):
        keepstone.changelog, keepstone.changelog.2, ...
        """
        marker = {
            "originalKey": p.key,
            "originalId": p.doc.get("id"),
            "created": fields.get("created"),
            "updated": fields.get("updated"),
            "creator": (fields.get("creator") or {}).get("accountId"),
            "reporter": (fields.get("reporter") or {}).get("accountId"),
            "snapshot": self.plan.snapshot.id,
        }
        props = [{"key": MARKER_PROPERTY, "value": marker}]
        entry = self.entries.get(f"changelog/{p.key}")
        if entry is not None:
            pages: list[list[Any]] = [[]]
            size = 0
            for history in self.repo.read_json(entry):
                n = len(json.dumps(history, separators=(",", ":")))
                if pages[-1] and size + n > 30_000:
                    pages.append([])
                    size = 0
                pages[-1].append(history)
                size += n
            for i, page in enumerate(pages):
                key = CHANGELOG_PROPERTY if i == 0 else f"{CHANGELOG_PROPERTY}.{i + 1}"
                props.append({"key": key, "value": {"pages": len(pages), "histories": page}})
        return props

    def _workflow(self, key: str, type_name: str) -> tuple[str, list[dict[str, Any]]]:
        """The status a new issue of this type starts in and its transitions, read once per type."""
        with self.tally.lock:
            known = self._types.get(type_name)
        if known is None:
            status = self.client.get_json(f"/rest/api/3/issue/{key}", fields="status")["fields"]["status"]
            options = self.client.get_json(f"/rest/api/3/issue/{key}/transitions")["transitions"]
            known = (status["name"], options)
            with self.tally.lock:
                self._types[type_name] = known
        return known

    def _transition(self, key: str, fields: dict[str, Any]) -> None:
        """Move the new issue to its backed-up status only if it differs; end with the backup's resolution."""
        status = (fields.get("status") or {}).get("name")
        if not status:
            return
        initial, options = self._workflow(key, (fields.get("issuetype") or {}).get("name") or "")
        resolution = (fields.get("resolution") or {}).get("name")
        if status != initial:
            match = next((t for t in options if t["to"]["name"] == status), None)
            if match is None:
                self.tally.lose(f"{key}: no transition leads to status {status}")
                return
            body: dict[str, Any] = {"transition": {"id": match["id"]}}
            done = (match["to"].get("statusCategory") or {}).get("key") == "done"
            if resolution and done:
                body["fields"] = {"resolution": {"name": resolution}}
            self.client.post_json(f"/rest/api/3/issue/{key}/transitions", body)
            if done and not resolution:  # the workflow set one; the backup has none
                self.client.request("PUT", f"/rest/api/3/issue/{key}", json={"fields": {"resolution": None}})
            elif resolution and not done:
                self.client.request(
                    "PUT", f"/rest/api/3/issue/{key}", json={"fields": {"resolution": {"name": resolution}}}
                )
        elif resolution:
            self.client.request(
                "PUT", f"/rest/api/3/issue/{key}", json={"fields": {"resolution": {"name": resolution}}}
            )

    # --- content of one issue ---------------------------------------------------------------------

    def _content(self, original: str) -> None:
        """Attachments first (media nodes then point at them), then comments, worklogs, the description's
        media references and watchers; a refused item is recorded with its issue key and the restore goes on."""
        new = self.result.mapping[original]
        parts = self.plan.request.parts
        media: dict[str, str] = {}
        if "attachments" in parts:
            try:
                media = self._attachments(original, new)
            except JiraError as e:
                self.tally.item_error(f"{original}: attachments", e)
        doc = next((p.doc for p in self.plan.issues if p.key == original), {})
        old_attachments = self._old_attachments(original)
        fields = doc.get("fields") or {}
        docs = [fields.get("description"), fields.get("environment")]
        for part, body_key in (("comments", "body"), ("worklogs", "comment")):
            if f"{part}/{original}" in self.entries:
                docs += [c.get(body_key) for c in self.repo.read_json(self.entries[f"{part}/{original}"])]
        rewrite = _media_map(docs, old_attachments, media)
        for part, path, list_key, body_key, when in (
            ("comments", "comment", "comments", "body", "created"),
            ("worklogs", "worklog", "worklogs", "comment", "started"),
        ):
            if part not in parts or f"{part}/{original}" not in self.entries:
                continue
            fresh = original in self.fresh  # created by this run: nothing of its own is there yet
            existing = [] if fresh else self.client.paged(f"/rest/api/3/issue/{new}/{path}", list_key, 100)
            have = {m.group(1) for c in existing for m in [NOTE_ID.search(_first_text(c.get(body_key)))] if m}
            for item in self.repo.read_json(self.entries[f"{part}/{original}"]):
                step = f"{part[:-1]}:{original}:{item['id']}"
                # The journal too: the restoring account may no longer see an item it restored (restricted
                # to a group it has left, or to the Administrators role instead of a missing group).
                if str(item["id"]) in have or self.journal.done(step) is not None:
                    continue
                note = origin_note(item.get("author"), item.get(when), str(item["id"]))
                body: dict[str, Any] = {body_key: with_note(_rewrite(item.get(body_key), rewrite), note)}
                if part == "worklogs":
                    body |= {"timeSpentSeconds": item["timeSpentSeconds"], "started": item["started"]}
                try:
                    self._post_restricted(f"/rest/api/3/issue/{new}/{path}", body, item, original, part)
                    self.journal.finish(step, True)
                    self.tally.add("created", part)
                except JiraError as e:
                    self.tally.item_error(f"{original}: {part[:-1]} {item['id']}", e)
        if rewrite and any(_has_media(fields.get(n)) for n in ("description", "environment")):
            update = {
                n: _rewrite(fields[n], rewrite) for n in ("description", "environment") if fields.get(n)
            }
            try:
                self.client.request("PUT", f"/rest/api/3/issue/{new}", json={"fields": update})
            except JiraError as e:
                self.tally.item_error(f"{original}: description", e)
        if "watchers" in parts and f"watchers/{original}" in self.entries:
            for w in self.repo.read_json(self.entries[f"watchers/{original}"]).get("watchers") or []:
                try:
                    self.client.post_json(f"/rest/api/3/issue/{new}/watchers", w["accountId"])
                except JiraError:
                    self.tally.lose(f"{original}: watcher {w['accountId']} could not be added")

    def _post_restricted(
        self, path: str, body: dict[str, Any], item: dict[str, Any], original: str, part: str
    ) -> None:
        """Post with the backed-up visibility; never publicly when the target lacks that role or group:
        then restricted to the Administrators role, and the change listed."""
        visibility = item.get("visibility")
        if not visibility:
            self.client.post_json(path, body)
            return
        wanted = {"type": visibility.get("type"), "value": visibility.get("value")}
        try:
            self.client.post_json(path, {**body, "visibility": wanted})
        except JiraError as e:
            if e.status != 400 or "visibility" not in e.errors:
                raise
            self.client.post_json(path, {**body, "visibility": FALLBACK_VISIBILITY})
            self.tally.lose(
                f"{original}: {part[:-1]} {item['id']} was visible to {wanted['type']} {wanted['value']}, "
                "which the target lacks: restricted to the Administrators role"
            )

    def _old_attachments(self, original: str) -> list[Any]:
        return sorted(
            (e for e in self.entries.values() if e.kind == "attachment" and e.name.split("/")[1] == original),
            key=lambda e: int(e.attrs.get("id") or 0),
        )

    def _attachments(self, original: str, new: str) -> dict[str, str]:
        """Upload the missing attachments in one multipart request; identity is the backed-up id and the
        SHA-256 of the bytes, kept in the issue property keepstone.attachments (never filename and size).
        Returns backed-up attachment id -> media id of the restored one."""
        mine = self._old_attachments(original)
        if not mine:
            return {}
        present: dict[str, Any] = {}
        marker: dict[str, Any] = {}
        if original not in self.fresh:  # an issue created by this run has no attachments yet
            present = {
                a["id"]: a
                for a in self.client.get_json(f"/rest/api/3/issue/{new}", fields="attachment")["fields"][
                    "attachment"
                ]
            }
            try:
                marker = self.client.get_json(f"/rest/api/3/issue/{new}/properties/{ATTACHMENTS_PROPERTY}")[
                    "value"
                ]
            except JiraNotFound:
                pass
        marker = {k: v for k, v in marker.items() if v.get("id") in present}  # a deleted one comes back
        claimed = {v["id"] for v in marker.values()}
        missing = []
        for entry in mine:
            old_id = str(entry.attrs.get("id"))
            if old_id in marker:
                self.tally.add("skipped", "attachments already restored")
                continue
            digest = self._digest(entry)
            # Uploaded by a run killed before it wrote the marker: the same bytes, not yet claimed.
            twin = next(
                (
                    a
                    for a in present.values()
                    if a["id"] not in claimed
                    and a.get("size") == entry.size
                    and _sha256(self.client.download(a["id"])) == digest
                ),
                None,
            )
            if twin is not None:
                claimed.add(twin["id"])
                marker[old_id] = self._marker_item(entry, twin["id"], digest)
                continue
            missing.append((entry, digest))
        if missing:
            uploaded = self._upload(new, [e for e, _ in missing])
            for (entry, digest), a in zip(missing, uploaded, strict=True):
                marker[str(entry.attrs.get("id"))] = self._marker_item(entry, a["id"], digest)
            self.tally.add("created", "attachments", len(uploaded))
        for item in marker.values():
            if "mediaId" not in item:
                item["mediaId"] = self._media_id(item["id"])
        self.client.request("PUT", f"/rest/api/3/issue/{new}/properties/{ATTACHMENTS_PROPERTY}", json=marker)
        return {k: v["mediaId"] for k, v in marker.items() if v.get("mediaId")}

    def _marker_item(self, entry: Any, new_id: str, digest: str) -> dict[str, Any]:
        return {
            "id": str(new_id),
            "sha256": digest,
            "filename": entry.attrs.get("filename"),
            "size": entry.size,
            "author": entry.attrs.get("author"),
            "created": entry.attrs.get("created"),
        }

    def _digest(self, entry: Any) -> str:
        return _sha256(self.repo.open_stream(entry))

    def _media_id(self, attachment_id: str) -> str | None:
        """The media file id ADF names an attachment by: where Jira's content URL redirects to."""
        r = self.client.request(
            "GET", f"/rest/api/3/attachment/content/{attachment_id}", allow_redirects=False, stream=True
        )
        r.close()
        m = MEDIA_LOCATION.search(r.headers.get("Location", ""))
        return m.group(1) if m else None

    def _upload(self, key: str, entries: list[Any]) -> list[dict[str, Any]]:
        """Several attachments in one multipart request (Jira answers them in the order sent)."""
        with contextlib.ExitStack() as stack:
            files = []
            for entry in entries:
                f = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=8 << 20))
                for chunk in self.repo.open_stream(entry):
                    f.write(chunk)
                f.seek(0)
                files.append(
                    (
                        "file",
                        (
                            entry.attrs.get("filename") or "attachment",
                            f,
                            entry.attrs.get("mimeType") or "application/octet-stream",
                        ),
                    )
                )
            r = self.client.request(
                "POST",
                f"/rest/api/3/issue/{key}/attachments",
                files=files,
                headers={"X-Atlassian-Token": "no-check"},
            )
            return list(r.json())

    # --- links ------------------------------------------------------------------------------------

    def _links(self) -> None:
        wanted = link_set(p for p in self.plan.issues if p.key in self.result.mapping)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="restore-links") as pool:
            for future in [pool.submit(self._link, *t) for t in sorted(wanted)]:
                future.result()

    def _step(self, fn: Callable[..., None], *args: Any) -> None:
        """Run one step unless a stop was asked for (then the same command resumes it later)."""
        if not self.stop.is_set():
            fn(*args)

    def _link(self, type_name: str, inward: str, outward: str) -> None:
        if self.stop.is_set():
            return
        step = f"link:{type_name}:{inward}:{outward}"
        if self.journal.done(step) is not None:
            return
        try:
            ends = [self._resolve(k) for k in (inward, outward)]
            if None in ends:
                missing = inward if ends[0] is None else outward
                self.tally.lose(
                    f"link {inward} {type_name} {outward}: {missing} is neither restored nor in the site"
                )
                return
            self.client.post_json(
                "/rest/api/3/issueLink",
                {
                    "type": {"name": type_name},
                    "inwardIssue": {"key": ends[0]},
                    "outwardIssue": {"key": ends[1]},
                },
            )
        except JiraError as e:
            self.tally.item_error(f"link {inward} {type_name} {outward}", e)
            return
        self.journal.finish(step, True)
        self.tally.add("created", "links")

    def _resolve(self, original: str) -> str | None:
        """The link end in the target: restored now, or an issue still in the site (any project, any target;
        a moved issue answers to its old key with its new one)."""
        if original in self.result.mapping:
            return self.result.mapping[original]
        if original not in self._found:
            try:
                found = self.client.get_json(f"/rest/api/3/issue/{original}", fields="key")["key"]
            except JiraNotFound:
                found = None
            self._found[original] = found
            if found:
                with self.tally.lock:
                    self.result.outside[original] = found
        return self._found[original]

    # --- the whole run ----------------------------------------------------------------------------

    def run(self) -> RestoreResult:
        before = self.client.stats.requests
        try:
            project = self._project()
            self.result.target_project = project
            if "configuration" in self.plan.request.parts or self.plan.request.target == "new":
                self._configuration(project)
            if configuration_wanted(self.plan.request):
                self._boards_filters_dashboards_roles(project)
            if self.plan.request.parts <= {"configuration"}:  # --only configuration: no issue is touched
                if self.config_restore is not None:
                    self.config_restore.finish({})
                return self.result
            site = _target_site(self.client, project)
            site.sprints = self._sprints(project)
            done = 0
            with ThreadPoolExecutor(self.workers, thread_name_prefix="restore") as pool:
                for level in self.plan.levels:
                    if self.stop.is_set():
                        break
                    if self.bulk:
                        self._bulk(level, project, site, pool)
                        done += len(level)
                        self.progress({"phase": "issues", "done": done, "total": len(self.plan.issues)})
                        continue
                    for p, future in [(p, pool.submit(self._issue, p, project, site)) for p in level]:
                        try:
                            future.result()
                        except JiraError as e:  # this issue is refused; the others go on
                            self.tally.item_error(p.key, e)
                    done += len(level)
                    self.progress({"phase": "issues", "done": done, "total": len(self.plan.issues)})
                content = [(k, pool.submit(self._step, self._content, k)) for k in sorted(self.restored)]
                for k, future in content:
                    try:
                        future.result()
                    except JiraError as e:
                        self.tally.item_error(k, e)
            if "links" in self.plan.request.parts and not self.stop.is_set():
                self._links()
            if self.config_restore is not None and not self.stop.is_set():
                self.config_restore.finish(dict(self.result.mapping))  # filters naming restored issues
            self.result.stopped = self.stop.is_set()
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


def _sha256(chunks: Any) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for child in node.get("content") or []:
            yield from _walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child)


def _has_media(doc: Any) -> bool:
    return any(n.get("type") in ("media", "mediaInline") for n in _walk(doc))


def media_refs(doc: Any) -> list[tuple[str, str]]:
    """(media id, alt) of every media node of an ADF document, in document order."""
    return [
        (str((n.get("attrs") or {}).get("id")), str((n.get("attrs") or {}).get("alt") or ""))
        for n in _walk(doc)
        if n.get("type") in ("media", "mediaInline") and (n.get("attrs") or {}).get("id")
    ]


def _media_map(docs: list[Any], old: list[Any], media: dict[str, str]) -> dict[str, str]:
    """Old media id -> new media id. The backup knows an attachment's id and name, not its media id, so a
    media node is tied to the attachment its alt text names (same-name attachments in upload order)."""
    if not media:
        return {}
    by_name: dict[str, list[str]] = {}
    for e in old:
        by_name.setdefault(str(e.attrs.get("filename")), []).append(str(e.attrs.get("id")))
    out: dict[str, str] = {}
    used: dict[str, int] = {}
    for mid, alt in (r for d in docs for r in media_refs(d)):
        if mid in out or alt not in by_name:
            continue
        i = used.get(alt, 0)
        ids = by_name[alt]
        new = media.get(ids[min(i, len(ids) - 1)])
        used[alt] = i + 1
        if new:
            out[mid] = new
    return out


def _rewrite(doc: Any, mapping: dict[str, str]) -> Any:
    """A copy of an ADF document whose media nodes name the restored attachments."""
    if not mapping or not isinstance(doc, dict | list):
        return doc
    if isinstance(doc, list):
        return [_rewrite(x, mapping) for x in doc]
    out = dict(doc)
    if out.get("type") in ("media", "mediaInline") and isinstance(out.get("attrs"), dict):
        attrs = dict(out["attrs"])
        if str(attrs.get("id")) in mapping:
            attrs["id"] = mapping[str(attrs["id"])]
        out["attrs"] = attrs
    if isinstance(out.get("content"), list):
        out["content"] = [_rewrite(x, mapping) for x in out["content"]]
    return out
