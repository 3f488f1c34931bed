"""The backup engine against a rate-limited, latent sandbox, side by side in one run:

- requests used vs the minimum the data needs (id pages + bulk pages + overflow pages + attachments +
  the fixed configuration reads), and the share of the allowed rate kept busy;
- an incremental run with 1% of issues changed, vs the full run (requests, new stored bytes);
- stored bytes vs the raw JSON the API returned (attachments left out of this one);
- a naive per-issue fetch of the same site (GET issue + comments + worklogs per issue), for the ratio;
- peak RSS of a `keepstone backup` process at two site sizes.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import requests

from backend.backup import BackupSpec, run_backup
from backend.jira import JiraClient, JiraCredentials
from backend.repository import Repository
from backend.storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
AUTH = ("admin@example.com", "sandbox-admin-token")
ID_PAGE, BULK, COMMENT_PAGE, WORKLOG_PAGE, INLINE = 1000, 100, 100, 1000, 20


FLAGS = {
    "projects": "--projects",
    "issues_per_project": "--issues",
    "seed": "--seed",
    "latency_ms": "--latency-ms",
    "rate_limit": "--rate-limit",
    "burst": "--burst",
    "corrupt_share": "--corrupt-share",
    "attachment_share": "--attachment-share",
    "attachment_max_bytes": "--attachment-max-bytes",
}


@contextmanager
def _site_process(**kw):
    """A sandbox in a process of its own, so that Jira's work does not share the engine's CPU and GIL."""
    port = _free_port()
    args = [sys.executable, "-m", "keepstone.cli", "sandbox", "--port", str(port)]
    for name, value in kw.items():
        args += [FLAGS[name], str(value)]
    proc = subprocess.Popen(
        args,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(url + "/_sandbox/stats", timeout=1)
                break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_kib(proc: subprocess.Popen) -> int:
    """Poll a child's resident memory until it exits (ru_maxrss would count the pre-exec fork)."""
    peak = 0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    return peak // 1024


def _client(url: str) -> JiraClient:
    return JiraClient(JiraCredentials(url, *AUTH), pool_size=16)


def _stored_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _minimum(repo: Repository, snapshot_ids: list[str], projects: int) -> int:
    """The fewest requests the backed-up data allows, counted from what the snapshots hold."""
    total = 0
    for sid in snapshot_ids:
        snap = repo.snapshot(sid)
        issues = comments_extra = worklogs_extra = attachments = 0
        for entry in snap.iter_entries():
            if entry.kind == "issue":
                issues += 1
            elif entry.kind == "comment":
                n = len(repo.read_json(entry))
                comments_extra += math.ceil(max(0, n - INLINE) / COMMENT_PAGE)
            elif entry.kind == "worklog":
                n = len(repo.read_json(entry))
                worklogs_extra += math.ceil(max(0, n - INLINE) / WORKLOG_PAGE)
            elif entry.kind == "attachment":
                attachments += 1
        config = (
            1 + 5 + 1 + 2
        )  # project, components/versions/statuses/roles/properties, boards, board config + sprints
        roles = snap.entries.get("config/roles")
        config += len(repo.read_json(roles)) if roles else 0  # each role's members: one read a role
        total += (
            max(1, math.ceil(issues / ID_PAGE)) + math.ceil(issues / BULK) + comments_extra + worklogs_extra
        )
        total += attachments + config
    site_objects = 1 + 10  # project list, site-wide objects and users, once per run
    dashboards = repo.snapshot(snapshot_ids[0]).entries.get("site/dashboards") if snapshot_ids else None
    for d in repo.read_json(dashboards) if dashboards else []:  # its gadgets; each gadget's item properties
        site_objects += 1 + sum(1 + len(g.get("properties") or {}) for g in d.get("gadgets") or [])
    return total + site_objects


def _naive(url: str, keys: list[str]) -> tuple[int, float]:
    """Fetch every issue one by one, as a simple script would: issue, comments, worklogs."""
    client = _client(url)
    started = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor

    def one(key: str) -> None:
        client.get_json(f"/rest/api/3/issue/{key}", fields="*all")
        client.get_json(f"/rest/api/3/issue/{key}/comment")
        client.get_json(f"/rest/api/3/issue/{key}/worklog")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, keys))
    return client.stats.requests, time.perf_counter() - started


def _backup_process_rss(url: str, repo: str) -> int:
    """Peak RSS (KiB) of one `keepstone backup` process run to its end."""
    env = {
        **os.environ,
        "KEEPSTONE_REPO_PASSWORD": "pw",
        "KEEPSTONE_JIRA_TOKEN": AUTH[1],
        "PYTHONPATH": str(ROOT),
        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),  # see docs/operations.md
    }
    args = ["--repo", repo, "--init", "--site", url, "--email", AUTH[0]]
    proc = subprocess.Popen(
        [sys.executable, "-m", "keepstone.cli", "backup", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = _peak_rss_kib(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"keepstone backup exited {proc.returncode}")
    return peak


def _rss_of_backup(issues_per_project: int, projects: int) -> tuple[int, int]:
    """Peak RSS (KiB) of a full `keepstone backup`, then of an incremental one after 1% of issues changed."""
    with (
        _site_process(
            projects=projects, issues_per_project=issues_per_project, seed=11, attachment_share=0.0
        ) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        full = _backup_process_rss(url, f"file://{tmp}/repo")
        requests.post(
            f"{url}/_sandbox/mutate", json={"share": 0.01, "seed": 6}, timeout=60
        ).raise_for_status()
        return full, _backup_process_rss(url, f"file://{tmp}/repo")


def run(quick: bool) -> dict[str, object]:
    per_project = 300 if quick else 2000
    rate = 100 if quick else 50
    out: dict[str, object] = {"issues": 2 * per_project, "rate_limit_per_s": rate, "latency_ms": 20}
    site = {
        "projects": 2,
        "issues_per_project": per_project,
        "seed": 21,
        "latency_ms": 20,
        "rate_limit": rate,
        "burst": rate,
        "corrupt_share": 0.0,
        "attachment_share": 0.1,
        "attachment_max_bytes": 200_000,
    }
    with _site_process(**site) as url, tempfile.TemporaryDirectory() as tmp:
        repo = Repository.init(open_storage(f"file://{tmp}/repo"), "pw")
        spec = BackupSpec.from_dict({})
        client = _client(url)
        started = time.perf_counter()
        full = run_backup(client, repo, spec)
        seconds = time.perf_counter() - started
        minimum = _minimum(repo, [p.snapshot_id for p in full.projects], 2)
        out["full_requests"] = full.requests
        out["full_requests_minimum"] = minimum
        out["full_requests_vs_minimum"] = round(full.requests / minimum, 3)
        out["full_seconds"] = round(seconds, 1)
        # What the site allowed in that time: its burst bucket, full at the start, plus its refill.
        out["rate_busy_share"] = round(full.requests / (site["burst"] + rate * seconds), 3)
        out["throttled_429s"] = requests.get(f"{url}/_sandbox/stats", timeout=30).json()["totals"][
            "rate_limited"
        ]
        full_new = sum(p.new_bytes for p in full.projects)

        requests.post(
            f"{url}/_sandbox/mutate", json={"share": 0.01, "seed": 5}, timeout=30
        ).raise_for_status()
        incremental = run_backup(_client(url), repo, spec)
        out["incremental_requests"] = incremental.requests
        out["incremental_requests_vs_full"] = round(incremental.requests / full.requests, 4)
        out["incremental_new_bytes_vs_full"] = round(
            sum(p.new_bytes for p in incremental.projects) / full_new, 4
        )

        projects = requests.get(f"{url}/_sandbox/site", timeout=30).json()["projects"]
        naive_requests, naive_seconds = _naive(url, [k for p in projects for k in p["issues"]])
        json_only = full.requests - sum(p.counts.get("attachments", 0) for p in full.projects)
        out["naive_requests"] = naive_requests
        out["naive_vs_engine_requests_without_attachments"] = round(naive_requests / json_only, 2)
        out["naive_seconds"] = round(naive_seconds, 1)
        out["naive_vs_engine_seconds"] = round(naive_seconds / seconds, 2)

    plain = {"projects": 2, "issues_per_project": per_project, "seed": 22, "attachment_share": 0.0}
    with _site_process(**plain) as url, tempfile.TemporaryDirectory() as tmp:
        repo = Repository.init(open_storage(f"file://{tmp}/repo"), "pw")
        run_backup(_client(url), repo, BackupSpec.from_dict({}))
        stored = _stored_bytes(Path(tmp) / "repo")
        raw = requests.get(f"{url}/_sandbox/stats", timeout=30).json()["totals"]["bytes"]
        out["raw_json_bytes"] = raw
        out["stored_bytes"] = stored
        out["stored_vs_raw_json"] = round(stored / raw, 3)

    small, large = (1000, 4000) if quick else (5000, 20000)
    (rss_small, incremental_small), (rss_large, incremental_large) = (
        _rss_of_backup(small, 2),
        _rss_of_backup(large, 2),
    )
    out["rss_kib_small_site"] = {"issues": 2 * small, "peak_rss_kib": rss_small}
    out["rss_kib_large_site"] = {"issues": 2 * large, "peak_rss_kib": rss_large}
    out["rss_large_vs_small"] = round(rss_large / rss_small, 3)
    out["incremental_rss_kib"] = {"small_site": incremental_small, "large_site": incremental_large}
    out["incremental_rss_large_vs_small"] = round(incremental_large / incremental_small, 3)
    return out
