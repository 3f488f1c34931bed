"""A backup run: select the projects, then one task per project; a failing project fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend.backup.project import Progress, ProjectResult, backup_project, fetch_site_objects
from backend.backup.spec import BackupSpec
from backend.jira import JiraClient, JiraError
from backend.repository import Repository


@dataclass
class RunResult:
    """The whole run: per-project results and an overall status (ok, warning, partial, failed, cancelled)."""

    status: str
    projects: list[ProjectResult] = field(default_factory=list)
    started: str = ""
    finished: str = ""
    requests: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self.__dict__.items() if k != "projects"},
            "projects": [p.to_dict() for p in self.projects],
        }


def select_projects(client: JiraClient, spec: BackupSpec) -> tuple[list[str], list[ProjectResult]]:
    """The keys a spec selects, plus failed results for selected keys that this account cannot see."""
    visible = client.projects()
    keys = [p["key"] for p in visible if spec.projects.matches(p)]
    missing = []
    if spec.projects.mode == "selected":
        seen = {p["key"] for p in visible}
        for key in spec.projects.keys:
            if key not in seen:
                missing.append(
                    ProjectResult(
                        key,
                        status="failed",
                        errors=[f"project {key} does not exist or this account may not browse it"],
                    )
                )
        keys = [k for k in spec.projects.keys if k in seen]
    return keys, missing


def overall_status(results: list[ProjectResult]) -> str:
    statuses = {r.status for r in results}
    if not results:
        return "ok"
    if "cancelled" in statuses:
        return "cancelled"
    if statuses == {"failed"}:
        return "failed"
    if "failed" in statuses:
        return "partial"
    return "warning" if "warning" in statuses else "ok"


def project_client(client: JiraClient) -> JiraClient:
    """A client of its own for one project (exact request counts), sharing the site's rate budget."""
    return JiraClient(
        client.credentials,
        budget=client.budget,
        pool_size=16,
        max_attempts=client.max_attempts,
        backoff_base=client.backoff_base,
        timeout=client.timeout,
    )


def run_backup(
    client: JiraClient,
    repo: Repository,
    spec: BackupSpec,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    on_selected: Callable[[list[str], list[ProjectResult]], None] | None = None,
    on_result: Callable[[ProjectResult], None] | None = None,
    parallel_projects: int = 2,
    snapshot_meta: dict[str, Any] | None = None,
    snapshot_time: datetime | None = None,
) -> RunResult:
    """Back up every selected project, each into its own snapshot, a few at a time, under a shared lock."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    before = client.stats.requests
    cancel = cancel or threading.Event()
    report = progress or (lambda _: None)
    try:
        keys, results = select_projects(client, spec)
        site_objects = fetch_site_objects(client, spec)
    except JiraError as e:
        return RunResult(
            "failed",
            [],
            started,
            datetime.now(UTC).isoformat(timespec="seconds"),
            client.stats.requests - before,
            [f"Jira: {e}"],
        )
    if on_selected:
        on_selected(keys, list(results))
    for r in results:
        if on_result:
            on_result(r)
    report({"phase": "selected", "projects": keys})
    extra = [0]
    lock = threading.Lock()

    def one(key: str) -> ProjectResult:
        if cancel.is_set():
            result = ProjectResult(key, status="cancelled", errors=["the run was cancelled first"])
        else:
            report({"phase": "project", "project": key})
            own = project_client(client)
            t = time.monotonic()
            result = backup_project(
                own,
                repo,
                spec,
                key,
                progress=report,
                cancel=cancel,
                site_objects=site_objects,
                snapshot_meta=snapshot_meta,
                snapshot_time=snapshot_time,
            )
            with lock:
                extra[0] += own.stats.requests
            report(
                {
                    "phase": "project-done",
                    "project": key,
                    "status": result.status,
                    "seconds": round(time.monotonic() - t, 2),
                }
            )
        if on_result:
            on_result(result)
        return result

    with repo.lock(), ThreadPoolExecutor(max(1, parallel_projects), thread_name_prefix="project") as pool:
        results += list(pool.map(one, keys))
    return RunResult(
        overall_status(results),
        results,
        started,
        datetime.now(UTC).isoformat(timespec="seconds"),
        client.stats.requests - before + extra[0],
    )
