"""Restore speed against a rate-limited, latent sandbox, side by side on one site: the path before issue 15
(bench/restore_baseline.py) and the current one, each restoring the same snapshot into a new project.

Reported per path: issues/s, requests, requests per issue, and requests against the fewest a restore of that
snapshot needs (`minimum`), the share of the allowed rate kept busy.

The minimum counts, from what the snapshot holds: the fixed reads and writes of a target (project check and
create, who am I, fields, users, the project, its components, versions, priorities, board), one create per
configuration object, one bulk create per 50 issues of each level (parents before children), one
transition per issue whose status is not the one a new issue starts in, one edit per issue whose
resolution the workflow cannot give it, one upload per issue with attachments (all in one multipart
request), one request per comment, worklog, link and watcher (Jira has no bulk write for them), and per
issue with media nodes one read per referenced attachment (its media id) and one edit; for the project's
boards, filters, dashboards and role members (`backend/restore/configuration.py`): the target's roles and one
read of each role's members, one write per role with members besides the lead, one filter and one board
create per backed-up board beyond the one a new software project comes with, one create per dashboard and
gadget, one write per gadget setting (item property), and one owner change per filter (and per owner of
dashboards) the restoring account does not own in the backup. Not counted, though the current path spends
them: the keepstone.attachments marker write per issue with attachments (identity), learning each issue
type's workflow (two reads), and the configuration look-ups that make a second run create nothing (the
target's filters, boards, dashboards, a found board's filter).
"""

from __future__ import annotations

import math
import tempfile
import time
from typing import Any

import requests

from backend.backup import BackupSpec, run_backup
from backend.jira import JiraClient, JiraCredentials
from backend.repository import Repository
from backend.restore.config_objects import Backup as ConfigurationBackup
from backend.restore.execute import BULK, Restorer, media_refs
from backend.restore.journal import Journal
from backend.restore.plan import RestoreRequest, build_plan, link_set
from backend.storage import open_storage
from bench import restore_baseline
from keepstone.servers import serve_in_thread
from sandbox.app import create_app
from sandbox.config import SandboxConfig

AUTH = ("admin@example.com", "sandbox-admin-token")
FIXED = 11  # project check, create, myself, fields, users, project, components, versions, priorities, board, sprints
INITIAL_STATUS = "To Do"


def minimum(repo: Repository, plan, me: str | None = None) -> int:
    """The fewest requests a restore of this plan's snapshot into a new project needs (`me`: the restoring
    account, which Jira makes the owner of what it creates)."""
    entries = plan.snapshot.entries
    n = FIXED
    for part in ("components", "versions", "sprints"):
        if f"config/{part}" in entries:
            n += len(repo.read_json(entries[f"config/{part}"]))
    n += sum(math.ceil(len(level) / BULK) for level in plan.levels)
    config = ConfigurationBackup(repo, entries, plan.project)
    lead = (plan.project.get("lead") or {}).get("accountId")
    roles = config.roles or []
    n += (1 + len(roles)) if roles else 0
    n += sum(
        any((a.get("actorUser") or {}).get("accountId") != lead for a in r.get("actors") or []) for r in roles
    )
    n += 2 * max(0, len(config.boards) - (plan.project.get("projectTypeKey") == "software"))
    n += sum(1 + len(d.get("gadgets") or []) for d in config.dashboards)
    gadgets = [g for d in config.dashboards for g in d.get("gadgets") or []]
    n += sum(len(g.get("properties") or {}) for g in gadgets)  # one write a gadget setting
    owners = {(d.get("owner") or {}).get("accountId") for d in config.dashboards} - {me, None}
    n += len(owners)  # one bulk owner change an owner
    n += sum((f.get("owner") or {}).get("accountId") not in (me, None) for f in config.filters)  # one each
    for p in plan.issues:
        f = p.doc.get("fields") or {}
        status = (f.get("status") or {}).get("name")
        resolution = (f.get("resolution") or {}).get("name")
        done = ((f.get("status") or {}).get("statusCategory") or {}).get("key") == "done"
        n += status not in (None, INITIAL_STATUS)
        # the workflow gives a done issue "Done" and a not-done one none; anything else costs an edit
        n += (done and resolution != "Done") or (not done and resolution is not None)
        attachments = [
            e for e in entries.values() if e.kind == "attachment" and e.name.split("/")[1] == p.key
        ]
        n += bool(attachments)
        for part in ("comments", "worklogs"):
            if f"{part}/{p.key}" in entries:
                n += len(repo.read_json(entries[f"{part}/{p.key}"]))
        if f"watchers/{p.key}" in entries:
            n += len(repo.read_json(entries[f"watchers/{p.key}"]).get("watchers") or [])
        refs = media_refs([f.get("description"), f.get("environment")])
        if refs and attachments:
            n += len({alt for _, alt in refs}) + 1
    return n + len(link_set(plan.issues))


def _restore(
    site_url: str, repo: Repository, snapshot: str, key: str, tmp: str, current: bool
) -> dict[str, Any]:
    plan = build_plan(
        repo, RestoreRequest(snapshot, whole_project=True, target="new", target_key=key, target_name=key)
    )
    client = JiraClient(JiraCredentials(site_url, *AUTH))
    journal = Journal(f"{tmp}/{key}.sqlite")
    kind = Restorer if current else restore_baseline.Restorer
    started = time.perf_counter()
    result = kind(client, repo, plan, journal, workers=8).run()
    seconds = time.perf_counter() - started
    restored = result.created.get("issues", 0)
    return {
        "status": result.status,
        "errors": len(result.errors),
        "issues_restored": restored,
        "seconds": round(seconds, 1),
        "issues_per_second": round(restored / seconds, 2),
        "requests": result.requests,
        "requests_per_issue": round(result.requests / max(1, restored), 2),
        "throttled_429s": client.stats.throttled,
        "plan": plan,
    }


def run(quick: bool) -> dict[str, object]:
    issues = 150 if quick else 1000
    rate = 100 if quick else 50
    config = SandboxConfig(
        projects=1,
        issues_per_project=issues,
        seed=31,
        latency_ms=20,
        rate_limit=rate,
        burst=rate,
        corrupt_share=0.0,
        attachment_share=0.1,
        attachment_max_bytes=100_000,
    )
    with serve_in_thread(create_app(config)) as site, tempfile.TemporaryDirectory() as tmp:
        repo = Repository.init(open_storage(f"file://{tmp}/repo"), "pw")
        backup = run_backup(JiraClient(JiraCredentials(site.url, *AUTH)), repo, BackupSpec.from_dict({}))
        snapshot = backup.projects[0].snapshot_id
        requests.post(f"{site.url}/_sandbox/delete", json={"project": "PLAT"}, timeout=30).raise_for_status()
        before = _restore(site.url, repo, snapshot, "BEFORE", tmp, current=False)
        now = _restore(site.url, repo, snapshot, "NOW", tmp, current=True)
        me = JiraClient(JiraCredentials(site.url, *AUTH)).myself()["accountId"]
        least = minimum(repo, now.pop("plan"), me)
        before.pop("plan")
    out: dict[str, object] = {
        "issues": issues,
        "rate_limit_per_s": rate,
        "latency_ms": 20,
        "requests_minimum": least,
    }
    for name, figures in (("before", before), ("now", now)):
        for k, v in figures.items():
            out[f"{name}_{k}"] = v
        out[f"{name}_requests_vs_minimum"] = round(int(figures["requests"]) / least, 3)
        out[f"{name}_rate_busy_share"] = round(int(figures["requests"]) / float(figures["seconds"]) / rate, 3)
    out["issues_per_second_ratio"] = round(
        float(now["issues_per_second"]) / float(before["issues_per_second"]), 2
    )
    out["requests_ratio"] = round(int(now["requests"]) / int(before["requests"]), 3)
    return out
