"""Eight rate-limited sandbox sites backed up by 1, 2 and 4 `keepstone worker` processes, side by side.

Each site is a sandbox in a process of its own (one project of 1000 issues, 200 with --quick; 20 ms
latency; a token bucket of 20 requests a second, burst 20; small attachments so that most requests are
downloads). One backend (in this process, KEEPSTONE_EXECUTOR=celery, PostgreSQL, a Redis broker) starts
one run per site at once; 1, 2 or 4 workers of `--concurrency 2` project tasks each (bounded) do them,
pacing each site on its shared Redis budget (KEEPSTONE_RATE_BUDGET_URL). Every round starts cold: a new
database and repository (full backups), the budgets' Redis state removed, the sites' buckets full.

Figures per round: the time for all eight sites; requests served a second, all sites together, against
the sum of their limits (the same for the busy span: from the first project task to the last); 429s a
minute per site; and the time of 1 worker over 2 (one worker's two tasks are the bottleneck: 8 sites,
2 at a time), and the workers' CPU a request (on a loaded machine the workers' CPU, not the sites,
is what bounds the rate; each round also gives the sites' CPU a request and how busy the machine's cores
were). Then the same sites at half the limit with 4 workers, where two cores can serve the sum of the
limits. Then one site with six projects backed up by 3 workers at once, from a cold
budget and again warm: its 429 share and its served rate against its limit. Results also go to
bench/results/scale.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg
import redis
import requests

from bench.bench_backup import AUTH, ROOT, _site_process
from keepstone.servers import stop_process_groups

REDIS_URL = os.environ.get("KEEPSTONE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN = os.environ.get("KEEPSTONE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
SITES, RATE, LATENCY_MS, CONCURRENCY = 8, 20, 20, 2
SECRET = "bench-secret-key-" + "x" * 32


def _database() -> tuple[str, str]:
    name = f"keepstone_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _workers(n: int, env: dict[str, str], tmp: Path) -> list[subprocess.Popen]:
    procs, logs = [], []
    for i in range(n):
        log = tmp / f"worker{i}.jsonl"
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "keepstone.cli", "worker", f"--concurrency={CONCURRENCY}"],
                cwd=ROOT,
                env={**env, "KEEPSTONE_LOG_FILE": str(log)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + 120
    while not all(p.exists() and " ready." in p.read_text(errors="replace") for p in logs):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            stop_process_groups(procs)
            raise RuntimeError("a worker did not start")
        time.sleep(0.1)
    return procs


def _cpu(procs) -> float:
    """User + system CPU seconds of these processes (Popen or psutil)."""
    return sum(sum(psutil.Process(p.pid).cpu_times()[:2]) for p in procs)


def _site_processes() -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if "sandbox" in p.cmdline()]


def _round(site_urls: list[str], workers: int, rate: int, cold: bool = True) -> dict[str, object]:
    """Back every site up once with `workers` worker processes; the figures of that round.

    `cold`: the sites' budget state in Redis removed first (else a warm start: the pace the last round
    left, as for a site backed up again within the hour)."""
    from backend.app import create_app, shutdown
    from backend.config import Config
    from backend.db.models import Organisation, Run, WorkItem
    from backend.jira.shared_budget import site_key

    budget = redis.Redis.from_url(REDIS_URL)
    for url in site_urls if cold else []:
        key = site_key(url, AUTH[0])
        budget.delete(key, key + ":paused")
    queue = f"keepstone-bench-{uuid.uuid4().hex[:8]}"
    os.environ["KEEPSTONE_QUEUE"] = queue
    db_name, db_url = _database()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        config = Config(
            data_dir=tmp / "data",
            database_url=db_url,
            secret_key=SECRET,
            scheduler=False,
            executor="celery",
            broker_url=REDIS_URL,
            cookie_secure="auto",
        )
        app = create_app(config)
        svc = app.extensions["keepstone"]
        plans = _install(app, site_urls)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "KEEPSTONE_DATABASE_URL": db_url,
            "KEEPSTONE_SECRET_KEY": SECRET,
            "KEEPSTONE_DATA_DIR": str(tmp / "data"),
            "KEEPSTONE_BROKER_URL": REDIS_URL,
            "KEEPSTONE_QUEUE": queue,
            "KEEPSTONE_RATE_BUDGET_URL": REDIS_URL,
            "KEEPSTONE_LOG_LEVEL": "warning",
        }
        procs = _workers(workers, env, tmp)
        try:
            time.sleep(2.0)  # every site's bucket full again (burst / rate after the last round)
            for url in site_urls:
                requests.post(f"{url}/_sandbox/stats/reset", timeout=30).raise_for_status()
            worker_cpu0, site_cpu0 = _cpu(procs), _cpu(_site_processes())
            machine0 = psutil.cpu_times()
            t0 = time.monotonic()
            runs = [svc.runs.start(plan_id, "manual") for plan_id in plans]
            while True:
                with svc.db.session() as s:
                    states = [s.get(Run, r).state for r in runs]
                if all(state not in ("queued", "running") for state in states):
                    break
                time.sleep(0.2)
            elapsed = time.monotonic() - t0
            cpu = _cpu(procs) - worker_cpu0  # the round's work, not the workers' start (threads pool)
            site_cpu = _cpu(_site_processes()) - site_cpu0
            machine = psutil.cpu_times()
            idle = (machine.idle + machine.iowait) - (machine0.idle + machine0.iowait)
            machine_busy = 1 - idle / (elapsed * psutil.cpu_count())
            with svc.db.session() as s:
                rows = [s.get(Run, r) for r in runs]
                first = min(r.started for r in rows)
                last = max(r.finished for r in rows)
                run_seconds = [(r.finished - r.started).total_seconds() for r in rows]
                waited = [(r.started - r.created).total_seconds() for r in rows]
                holders = {i.holder.split(":")[1] for i in s.query(WorkItem) if i.holder}
                orgs = s.query(Organisation).count()
        finally:
            stop_process_groups(procs)
            shutdown(app)
            _drop(db_name)
    totals = [requests.get(f"{u}/_sandbox/stats", timeout=30).json()["totals"] for u in site_urls]
    served = sum(t["requests"] - t["rate_limited"] for t in totals)
    busy = (last - first).total_seconds()
    limits = rate * len(site_urls)
    per_site_429_min = [t["rate_limited"] / elapsed * 60 for t in totals]
    return {
        "workers": workers,
        "sites": orgs,
        "states": sorted(set(states)),
        "workers_that_worked": len(holders),
        "seconds": round(elapsed, 1),
        "requests": sum(t["requests"] for t in totals),
        "requests_per_s": round(served / elapsed, 1),
        "vs_sum_of_limits": round(served / (limits * elapsed), 3),
        "busy_vs_sum_of_limits": round(served / (limits * busy), 3),
        "429_per_site_per_min_max": round(max(per_site_429_min), 2),
        "429_per_site_per_min_mean": round(sum(per_site_429_min) / len(per_site_429_min), 2),
        "worker_cpu_ms_per_request": round(cpu * 1000 / max(1, sum(t["requests"] for t in totals)), 1),
        "site_cpu_ms_per_request": round(site_cpu * 1000 / max(1, sum(t["requests"] for t in totals)), 1),
        "machine_cpu_busy": round(machine_busy, 3),
        "run_seconds_mean": round(sum(run_seconds) / len(run_seconds), 1),
        "run_seconds_max": round(max(run_seconds), 1),
        "queued_seconds_mean": round(sum(waited) / len(waited), 1),
        "429_share": round(
            sum(t["rate_limited"] for t in totals) / max(1, sum(t["requests"] for t in totals)), 4
        ),
    }


def _install(app, site_urls: list[str]) -> list[int]:
    """One organisation a site, its default plan and the sandbox's credentials (sealed as the API does)."""
    from backend import vault
    from backend.api.organisations import default_plan
    from backend.db.models import JiraAccount, Organisation

    svc = app.extensions["keepstone"]
    plans = []
    with app.app_context():
        for i, url in enumerate(site_urls):
            cloud_id = str(uuid.uuid4())
            with svc.db.session() as s:
                org = Organisation(cloud_id=cloud_id, site_url=url, display_name=f"Site {i + 1}")
                plan = default_plan(org)
                s.add_all([org, plan])
                s.flush()
                sealed = vault.seal(svc.config.secret_key, AUTH[1], f"jira-token:{cloud_id}")
                s.add(JiraAccount(organisation_id=org.id, site_url=url, email=AUTH[0], token_sealed=sealed))
                s.commit()
                plans.append(plan.id)
    return plans


def run(quick: bool) -> dict[str, object]:
    issues = 200 if quick else 1000
    out: dict[str, object] = {
        "sites": SITES,
        "issues_per_site": issues,
        "rate_limit_per_s": RATE,
        "latency_ms": LATENCY_MS,
        "tasks_per_worker": CONCURRENCY,
    }
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            pass
    except (redis.RedisError, psycopg.Error) as e:
        out["skipped"] = f"needs Redis ({REDIS_URL}) and PostgreSQL ({PG_ADMIN}): {e}"
        return out
    site = {
        "latency_ms": LATENCY_MS,
        "rate_limit": RATE,
        "burst": RATE,
        "attachment_share": 0.3,
        "attachment_max_bytes": 4096,
        "corrupt_share": 0.0,
    }
    before = os.environ.get("KEEPSTONE_QUEUE")
    try:
        with ExitStack() as stack:
            urls = [
                stack.enter_context(_site_process(projects=1, issues_per_project=issues, seed=40 + i, **site))
                for i in range(SITES)
            ]
            rounds = {}
            for n in (1, 2, 4):
                rounds[n] = _round(urls, n, RATE)
                out[f"{n}_workers"] = rounds[n]
                print(f"  {n} workers: {rounds[n]}", flush=True)
        out["time_1_vs_2_workers"] = round(rounds[1]["seconds"] / rounds[2]["seconds"], 2)
        out["time_1_vs_4_workers"] = round(rounds[1]["seconds"] / rounds[4]["seconds"], 2)
        # The same eight sites at half the limit, 4 workers: the sum of the limits is then what two cores
        # can serve (sites and workers together), so the figure shows how busy the workers keep every
        # site's budget, not how many requests the machine can parse.
        with ExitStack() as stack:
            half = {**site, "rate_limit": RATE // 2, "burst": RATE // 2}
            urls = [
                stack.enter_context(_site_process(projects=1, issues_per_project=issues, seed=40 + i, **half))
                for i in range(SITES)
            ]
            out["4_workers_half_limit"] = _round(urls, 4, RATE // 2)
            print(f"  4 workers, {RATE // 2} req/s a site: {out['4_workers_half_limit']}", flush=True)
        # One site, six projects, three workers (six project tasks) at once on its one budget.
        with _site_process(projects=6, issues_per_project=max(40, issues // 6), seed=60, **site) as url:
            out["one_site_3_workers"] = _round([url], 3, RATE)
            out["one_site_3_workers_warm_start"] = _round([url], 3, RATE, cold=False)
    finally:
        if before is None:
            os.environ.pop("KEEPSTONE_QUEUE", None)
        else:
            os.environ["KEEPSTONE_QUEUE"] = before
    out["measured"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"quick": quick, **out}, indent=2) + "\n")
    return out


if __name__ == "__main__":
    sys.exit("usage: python -m bench scale [--quick]")
