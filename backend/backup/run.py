"""A backup run: select the projects, then one task per project; a failing project fails alone."""

from __future__ import annotations

import threading
import time
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


def run_backup(
    client: JiraClient,
    repo: Repository,
    spec: BackupSpec,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Back up every selected project, each into its own snapshot, under a shared repository lock."""
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
    report({"phase": "selected", "projects": keys})
    with repo.lock():
        for index, key in enumerate(keys):
            if cancel.is_set():
                results.append(ProjectResult(key, status="cancelled", errors=["the run was cancelled first"]))
                continue
            report({"phase": "project", "project": key, "index": index, "total": len(keys)})
            t = time.monotonic()
            result = backup_project(
                client, repo, spec, key, progress=report, cancel=cancel, site_objects=site_objects
            )
            report(
                {
                    "phase": "project-done",
                    "project": key,
                    "status": result.status,
                    "seconds": round(time.monotonic() - t, 2),
                }
            )
            results.append(result)
    return RunResult(
        overall_status(results),
        results,
        started,
        datetime.now(UTC).isoformat(timespec="seconds"),
        client.stats.requests - before,
    )
