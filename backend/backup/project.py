"""Back up one project into one snapshot: configuration, issues (only new or changed ones), their content.

The plan of requests, per project: one id page per 1000 issues (key + updated), one bulk fetch per 100
new or changed issues, extra pages only where comments/worklogs/changelog overflow what comes inline,
one download per new attachment. Unchanged issues are carried from the parent snapshot by reference.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backend.backup.spec import BackupSpec
from backend.jira import JiraClient, JiraError, JiraNotFound
from backend.repository import Entry, Repository, RepositoryError, SnapshotWriter
from backend.storage import StorageError

log = logging.getLogger(__name__)
Progress = Callable[[dict[str, Any]], None]
ISSUE_PREFIXES = (
    "issues/",
    "comments/",
    "worklogs/",
    "changelog/",
    "remotelinks/",
    "watchers/",
    "votes/",
    "properties/",
    "attachments/",
)
BULK = 100
# What Jira's filter search leaves out unless asked (a board's filter is restored from these).
FILTER_EXPAND = "description,jql,owner,sharePermissions,editPermissions"


class Cancelled(Exception):
    """The run was cancelled."""


@dataclass
class ProjectResult:
    """How one project's backup went: ok, warning (done, with things skipped), failed or cancelled."""

    project: str
    status: str = "ok"
    snapshot_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    new_bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, int] = {}

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.values[name] = self.values.get(name, 0) + n


def _read_all(reads: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run independent reads side by side (they are latency-bound; the rate budget still paces them)."""
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="config") as pool:
        futures = {name: pool.submit(read) for name, read in reads.items()}
        return {name: future.result() for name, future in futures.items()}


def fetch_site_objects(client: JiraClient, spec: BackupSpec) -> dict[str, Any]:
    """Read the site-wide objects every project snapshot keeps (once per run)."""
    data, _ = spec.resolved()
    reads: dict[str, Callable[[], Any]] = {}
    if data["configuration"]:
        for name, path in (
            ("fields", "field"),
            ("issuetypes", "issuetype"),
            ("priorities", "priority"),
            ("resolutions", "resolution"),
            ("statuses", "status"),
            ("issuelinktypes", "issueLinkType"),
        ):
            reads[f"site/{name}"] = lambda path=path: client.get_json(f"/rest/api/3/{path}")
        reads["site/filters"] = lambda: client.paged(
            f"/rest/api/3/filter/search?expand={FILTER_EXPAND}", "values", 100
        )
        reads["site/dashboards"] = lambda: _dashboards(client)
        reads["site/workflows"] = lambda: client.paged("/rest/api/3/workflow/search", "values", 50)
    if data["users"]:
        reads["site/users"] = client.all_users
    return _read_all(reads)


def _dashboards(client: JiraClient) -> list[dict[str, Any]]:
    """The site's dashboards, each with its gadgets and their item properties (where Jira keeps a gadget's
    settings): one read a dashboard, one a gadget, one a property."""
    dashboards = client.paged("/rest/api/3/dashboard", "dashboards", 100)
    gadgets = _read_all(
        {
            d["id"]: (lambda d=d: client.get_json(f"/rest/api/3/dashboard/{d['id']}/gadget"))
            for d in dashboards
        }
    )
    items = {}
    for d in dashboards:
        d["gadgets"] = gadgets[d["id"]].get("gadgets") or []
        for g in d["gadgets"]:
            items[f"{d['id']}/{g['id']}"] = g

    def properties(item: str) -> dict[str, Any]:
        path = f"/rest/api/3/dashboard/{item.split('/')[0]}/items/{item.split('/')[1]}/properties"
        keys = [k["key"] for k in client.get_json(path).get("keys") or []]
        return {k: client.get_json(f"{path}/{k}").get("value") for k in keys}

    for item, found in _read_all({item: (lambda i=item: properties(i)) for item in items}).items():
        items[item]["properties"] = found
    return dashboards


def _project_config(client: JiraClient, key: str, project_id: str) -> dict[str, Any]:
    reads: dict[str, Callable[[], Any]] = {
        f"config/{name}": (lambda name=name, path=path: client.get_json(f"/rest/api/3/project/{key}/{path}"))
        for name, path in (
            ("components", "components"),
            ("versions", "versions"),
            ("statuses", "statuses"),
            ("roles", "role"),
            ("properties", "properties"),
        )
    }
    reads["config/boards"] = lambda: client.paged(f"/rest/agile/1.0/board?projectKeyOrId={key}", "values", 50)
    out = _read_all(reads)
    boards = out["config/boards"]
    board_reads: dict[str, Callable[[], Any]] = {}
    for board in boards:
        board_reads[f"configuration/{board['id']}"] = lambda b=board["id"]: client.get_json(
            f"/rest/agile/1.0/board/{b}/configuration"
        )
        if board.get("type") == "scrum":
            board_reads[f"sprints/{board['id']}"] = lambda b=board["id"]: client.paged(
                f"/rest/agile/1.0/board/{b}/sprint", "values", 50
            )
    for url in (out["config/roles"] or {}).values():  # role members: one read a role
        role_id = str(url).rstrip("/").rsplit("/", 1)[-1]
        board_reads[f"role/{role_id}"] = lambda r=role_id: client.get_json(
            f"/rest/api/3/project/{key}/role/{r}"
        )
    found = _read_all(board_reads)
    out["config/board-configuration"] = [v for k, v in found.items() if k.startswith("configuration/")]
    out["config/role-actors"] = [v for k, v in found.items() if k.startswith("role/")]
    out["config/sprints"] = [s for k, v in found.items() if k.startswith("sprints/") for s in v]
    return out


_UNCHANGED, _CHANGED = 0, 1  # what the listing found of an issue the parent snapshot holds


def _issue_key(entry: Entry) -> str | None:
    """The issue a per-issue entry belongs to (`comments/ABC-1` -> `ABC-1`), None for project entries."""
    return entry.name.split("/")[1] if entry.name.startswith(ISSUE_PREFIXES) else None


def _parent_versions(repo: Repository, parent_id: str) -> dict[str, str]:
    """Issue key -> "id updated" of every issue in the parent snapshot: all a listing is compared with."""
    return {
        entry.name[len("issues/") :]: f"{entry.attrs.get('id')} {entry.attrs.get('updated')}"
        for entry in repo.snapshot(parent_id).iter_entries()
        if entry.kind == "issue" and entry.name.startswith("issues/")
    }


def backup_project(
    client: JiraClient,
    repo: Repository,
    spec: BackupSpec,
    key: str,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    site_objects: dict[str, Any] | None = None,
    snapshot_meta: dict[str, Any] | None = None,
    snapshot_time: datetime | None = None,
) -> ProjectResult:
    """Back up one project into one snapshot; never raises for Jira or storage trouble (it fails the result).

    `snapshot_meta` adds to the snapshot's meta (the backend records its plan and run there);
    `snapshot_time` (aware) records the snapshot at that moment instead of now (`backup --time`).
    """
    started = time.monotonic()
    requests_before = client.stats.requests
    result = ProjectResult(key)
    writer: SnapshotWriter | None = None
    try:
        writer = _run(
            client,
            repo,
            spec,
            key,
            result,
            progress or (lambda _: None),
            cancel or threading.Event(),
            site_objects,
        )
        writer.meta.update(snapshot_meta or {})
        if snapshot_time is not None:
            writer.time = snapshot_time
        result.snapshot_id = writer.commit()
        result.new_bytes = writer.new_bytes
        if result.warnings and result.status == "ok":
            result.status = "warning"
    except Cancelled:
        result.status = "cancelled"
        result.errors.append("the backup was cancelled; no snapshot was written for this project")
    except JiraNotFound:
        result.status = "failed"
        result.errors.append(f"project {key} does not exist or this account may not browse it")
    except JiraError as e:
        result.status = "failed"
        result.errors.append(f"Jira: {e}")
    except (StorageError, RepositoryError) as e:
        result.status = "failed"
        result.errors.append(f"storage: {e}")
    except _AttachmentFailed as e:
        result.status = "failed"
        result.errors.append(str(e))
    finally:
        if writer is not None and result.snapshot_id is None:
            writer.abort()
        result.requests = client.stats.requests - requests_before
        result.seconds = round(time.monotonic() - started, 3)
    log.info(
        "project backed up",
        extra={"project": key, "status": result.status, "counts": result.counts, "requests": result.requests},
    )
    return result


class _AttachmentFailed(Exception):
    """A corrupted attachment failed the project (policy 'fail')."""


def _run(
    client: JiraClient,
    repo: Repository,
    spec: BackupSpec,
    key: str,
    result: ProjectResult,
    progress: Progress,
    cancel: threading.Event,
    site_objects: dict[str, Any] | None,
) -> SnapshotWriter:
    data, notes = spec.resolved()
    site = client.credentials.site_url
    project = client.get_json(
        f"/rest/api/3/project/{key}", expand="description,lead,issueTypes,url,projectKeys,permissions,insight"
    )
    parent = repo.latest(key, site) if spec.incremental else None
    if parent is not None and (parent.meta.get("data") != data):
        parent = None  # what is backed up changed: carrying would miss data, so read everything again
    meta = {"spec": spec.to_dict(), "data": data, "notes": notes, "project_id": project["id"]}
    writer = repo.start_snapshot(key, site, parent.id if parent else None, meta)
    counts = _Counts()
    writer.add_json("project", project, "project")
    if data["configuration"] or data["users"]:
        objects = site_objects if site_objects is not None else fetch_site_objects(client, spec)
        for name, doc in objects.items():
            writer.add_json(name, doc, "site")
    if data["configuration"]:
        for name, doc in _project_config(client, key, project["id"]).items():
            writer.add_json(name, doc, "config")
    progress({"project": key, "phase": "listing"})

    # The parent is read in two streaming passes around the listing, so memory holds one short string per
    # issue instead of every parent entry: its versions (key -> "id updated"), which the listing marks in
    # place (small ints: no new object per issue), then its entries again, carrying those of unchanged
    # issues and keeping the attachment entries of changed ones (attachments never change in place).
    jql = f'project = "{key}"'
    if spec.exclude_jql:
        jql += f" AND NOT ({spec.exclude_jql})"
    versions: dict[str, str | int] = _parent_versions(repo, parent.id) if parent else {}
    changed: list[str] = []  # ids to fetch
    new_ids: set[int] = set()  # issues the parent does not hold, against a page boundary listing one twice
    carried = listed = 0
    for issue in client.search_jql(jql, ["updated"], page_size=5000):
        issue_key, issue_id, updated = issue["key"], issue["id"], issue["fields"]["updated"]
        previous = versions.get(issue_key)
        if previous is None:  # new since the parent (or no parent)
            if int(issue_id) in new_ids:
                continue  # listed twice
            new_ids.add(int(issue_id))
            changed.append(issue_id)
        elif not isinstance(previous, str):
            continue  # listed twice
        elif previous == f"{issue_id} {updated}":
            versions[issue_key] = _UNCHANGED
            carried += 1
        else:
            versions[issue_key] = _CHANGED
            changed.append(issue_id)
        listed += 1
    deleted = sorted(k for k, v in versions.items() if isinstance(v, str))  # no longer listed
    parents: dict[str, list[Entry]] = {}  # attachment entries of changed issues
    if parent is not None:
        for entry in repo.snapshot(parent.id).iter_entries():
            issue_key = _issue_key(entry)
            mark = versions.get(issue_key) if issue_key else None
            if mark == _UNCHANGED:
                writer.carry(entry.name, entry)
            elif mark == _CHANGED and entry.kind == "attachment":
                parents.setdefault(issue_key, []).append(entry)
    del versions, new_ids
    counts.add("carried", carried)
    counts.add("issues", listed)
    counts.add("fetched", len(changed))
    counts.add("deleted", len(deleted))
    writer.meta["deleted"] = deleted
    progress({"project": key, "phase": "fetching", "done": 0, "total": len(changed)})

    skipped: list[dict[str, Any]] = []
    done = [0]
    lock = threading.Lock()

    # Bulk fetches feed a second pool that stores issues one by one, so that an issue with many
    # attachments or overflowing comments never holds up the other 99 of its page.
    in_flight = threading.BoundedSemaphore(2 * BULK)  # parsed issues waiting to be stored: bounds memory

    failures: list[BaseException] = []  # the first failure of a store task, raised after the pools drain

    def store(issue: dict[str, Any]) -> None:
        try:
            if cancel.is_set() or failures:
                raise Cancelled()
            _store_issue(client, writer, repo, issue, data, spec, parents, counts, skipped)
            with lock:
                done[0] += 1
                progress({"project": key, "phase": "fetching", "done": done[0], "total": len(changed),
                          "bytes": writer.size, "new_bytes": writer.new_bytes})  # fmt: skip
        except BaseException as e:  # kept, and re-raised in the caller's thread
            with lock:
                failures.append(e)
        finally:
            in_flight.release()

    def batch(ids: list[str], store_pool: ThreadPoolExecutor) -> None:
        if cancel.is_set() or failures:
            raise Cancelled()
        expand = ["changelog"] if data["changelog"] else None
        for issue in client.bulkfetch(ids, ["*all"], expand):
            in_flight.acquire()
            store_pool.submit(store, issue)  # no future kept: thousands of them would cost memory

    batches = [changed[i : i + BULK] for i in range(0, len(changed), BULK)]
    with (
        ThreadPoolExecutor(
            max_workers=max(1, spec.max_workers // 2), thread_name_prefix=f"fetch-{key}"
        ) as fetch_pool,
        ThreadPoolExecutor(max_workers=spec.max_workers, thread_name_prefix=f"store-{key}") as store_pool,
    ):
        fetches = [fetch_pool.submit(batch, b, store_pool) for b in batches]
        try:
            for future in fetches:
                future.result()
        except BaseException:
            for future in fetches:
                future.cancel()
            raise
    if failures:
        real = [f for f in failures if not isinstance(f, Cancelled)]
        raise (real or failures)[0]
    if skipped:
        writer.meta["skipped_attachments"] = skipped
        for s in skipped:
            result.warnings.append(
                f"attachment {s['id']} ({s['filename']}) of {s['issue']} skipped: {s['reason']}"
            )
    result.counts = dict(sorted(counts.values.items()))
    writer.meta["counts"] = result.counts
    return writer


def _store_issue(
    client: JiraClient,
    writer: SnapshotWriter,
    repo: Repository,
    issue: dict[str, Any],
    data: dict[str, bool],
    spec: BackupSpec,
    parents: dict[str, list[Entry]],
    counts: _Counts,
    skipped: list[dict[str, Any]],
) -> None:
    key, issue_id = issue["key"], issue["id"]
    fields = issue.setdefault("fields", {})
    # Comments, worklogs and changelog live in entries of their own; the issue keeps their totals only.
    comment_page = fields.get("comment") or {}
    worklog_page = fields.get("worklog") or {}
    for kind, page, path, list_key, size in (
        ("comments", comment_page, "comment", "comments", 100),
        ("worklogs", worklog_page, "worklog", "worklogs", 1000),
    ):
        if not data[kind]:
            continue
        items = list(page.get(list_key) or [])
        if page.get("total", 0) > len(items):  # the rest of what did not fit inline
            items += client.paged(f"/rest/api/3/issue/{issue_id}/{path}", list_key, size, start_at=len(items))
        if items:
            writer.add_json(f"{kind}/{key}", items, path)
            counts.add(kind, len(items))
    if data["changelog"]:
        page = issue.pop("changelog", None) or {}
        histories = list(page.get("histories") or [])
        if page.get("total", 0) > len(histories):
            histories += client.paged(
                f"/rest/api/3/issue/{issue_id}/changelog", "values", 100, start_at=len(histories)
            )
        if histories:
            writer.add_json(f"changelog/{key}", histories, "changelog")
    else:
        issue.pop("changelog", None)
    for kind, path, wanted in (
        ("remotelinks", f"/rest/api/3/issue/{issue_id}/remotelink", data["remotelinks"]),
        ("properties", f"/rest/api/3/issue/{issue_id}/properties", data["properties"]),
    ):
        if wanted:
            doc = client.get_json(path)
            if kind == "properties":
                doc = {
                    p["key"]: client.get_json(f"{path}/{p['key']}").get("value")
                    for p in doc.get("keys") or []
                }
            if doc:
                writer.add_json(f"{kind}/{key}", doc, kind.rstrip("s"))
    if data["watchers"] and (fields.get("watches") or {}).get("watchCount"):
        writer.add_json(
            f"watchers/{key}", client.get_json(f"/rest/api/3/issue/{issue_id}/watchers"), "watchers"
        )
    if data["votes"] and (fields.get("votes") or {}).get("votes"):
        writer.add_json(f"votes/{key}", client.get_json(f"/rest/api/3/issue/{issue_id}/votes"), "votes")
    if data["attachments"]:
        previous = {e.name: e for e in parents.get(key, [])}
        for meta in fields.get("attachment") or []:
            _store_attachment(client, writer, key, meta, previous, spec, counts, skipped)
    if "comment" in fields:
        fields["comment"] = {k: v for k, v in comment_page.items() if k != "comments"}
    if "worklog" in fields:
        fields["worklog"] = {k: v for k, v in worklog_page.items() if k != "worklogs"}
    if not data["links"]:
        fields.pop("issuelinks", None)
    if not data["hierarchy"]:
        fields.pop("parent", None)
        fields.pop("subtasks", None)
    writer.add_json(
        f"issues/{key}", issue, "issue", {"id": issue_id, "key": key, "updated": fields.get("updated")}
    )


def _store_attachment(
    client: JiraClient,
    writer: SnapshotWriter,
    key: str,
    meta: dict[str, Any],
    previous: dict[str, Entry],
    spec: BackupSpec,
    counts: _Counts,
    skipped: list[dict[str, Any]],
) -> None:
    name = f"attachments/{key}/{meta['id']}"
    attrs = {
        "id": str(meta["id"]),
        "filename": meta.get("filename"),
        "mimeType": meta.get("mimeType"),
        "size": meta.get("size"),
        "created": meta.get("created"),
        "author": (meta.get("author") or {}).get("accountId"),
    }
    old = previous.get(name)
    if old is not None and old.size == meta.get("size"):
        writer.carry(name, old)  # attachments never change in place: same id, same bytes
        counts.add("attachments")
        return
    try:
        entry = writer.add_stream(
            name, _verified(client.download(str(meta["id"])), meta.get("size")), "attachment", attrs
        )
    except (OSError, JiraError) as e:
        if spec.corrupt_attachments == "fail":
            raise _AttachmentFailed(
                f"attachment {meta['id']} ({meta.get('filename')}) of {key} is corrupted: {e}"
            ) from e
        with writer.lock:
            skipped.append(
                {"id": str(meta["id"]), "issue": key, "filename": meta.get("filename"), "reason": str(e)}
            )
        counts.add("attachments_skipped")
        return
    counts.add("attachments")
    counts.add("attachment_bytes", entry.size)


def _verified(chunks, expected: int | None):
    """Pass a download through, failing before the entry is recorded if its length is not the announced one."""
    received = 0
    for chunk in chunks:
        received += len(chunk)
        yield chunk
    if expected is not None and received != expected:
        raise OSError(f"got {received} bytes where Jira announced {expected}")
