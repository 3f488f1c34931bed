"""One rate-limited site, requested by 1, 2 and 3 processes at once, sharing the budget vs not, side by side.

The site (a sandbox in a process of its own, 20 ms latency, a token bucket of `rate` a second) is asked by
worker processes that each send from 8 threads for the same number of seconds, through `JiraClient`:

- shared: `KEEPSTONE_RATE_BUDGET_URL` set, every process paces on the one Redis bucket of the site;
- local: each process with its own `LocalRateBudget` (what several workers without Redis would do).

For each, from the sandbox's own counts: requests served a second vs the limit, and 429s a minute and as a
share of requests, over the whole run and after a warm-up. Each run starts cold (the site's bucket full, no
budget state in Redis, every thread's first request in flight before anything is known), except a last
shared run of 3 processes that starts with the state the previous run left in Redis (a warm start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
import requests

from bench.bench_backup import AUTH, ROOT, _site_process

REDIS_URL = os.environ.get("KEEPSTONE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
THREADS = 8


def _worker(site_url: str, seconds: float, ready: Path, go: Path) -> dict[str, object]:
    """Send from THREADS threads for `seconds` after GO appears; the client's counts as a dict."""
    from backend.jira import JiraClient, JiraCredentials

    client = JiraClient(JiraCredentials(site_url, *AUTH), pool_size=THREADS, max_attempts=50)
    ready.with_suffix(".tmp").write_text(type(client.budget).__name__)
    ready.with_suffix(".tmp").replace(ready)  # whole or absent: the parent reads it at once
    while not go.exists():
        time.sleep(0.005)
    until = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < until:
            client.request("GET", "/rest/api/3/myself")

    pool = [threading.Thread(target=loop) for _ in range(THREADS)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {"requests": client.stats.requests, "throttled": client.stats.throttled}


def _one(
    url: str,
    procs: int,
    shared: bool,
    seconds: float,
    warmup: float,
    rate: int,
    burst: int,
    cold: bool = True,
) -> dict[str, object]:
    from backend.jira.shared_budget import site_key

    key = site_key(url, AUTH[0])
    r = redis.Redis.from_url(REDIS_URL)
    if shared and cold:
        r.delete(key, key + ":paused")
    time.sleep(burst / rate + 1.5)  # the site's bucket refills: every run starts from a full one
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("KEEPSTONE_RATE_BUDGET_URL", None)
    if shared:
        env["KEEPSTONE_RATE_BUDGET_URL"] = REDIS_URL
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        readies = [Path(tmp) / f"ready{i}" for i in range(procs)]
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.bench_shared_budget",
                    "worker",
                    url,
                    str(seconds),
                    str(r),
                    str(go),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for r in readies
        ]
        try:
            while not all(r.exists() for r in readies):
                if any(c.poll() is not None for c in children):
                    raise RuntimeError("a worker process died before it started")
                time.sleep(0.02)
            kinds = {r.read_text() for r in readies}
            expected = "SharedRateBudget" if shared else "LocalRateBudget"
            if kinds != {expected}:
                raise RuntimeError(f"workers paced on {kinds}, not {expected}")
            requests.post(f"{url}/_sandbox/stats/reset", timeout=30).raise_for_status()
            calls = _script_calls(r)
            go.write_text("go")
            time.sleep(warmup)
            warm = requests.get(f"{url}/_sandbox/stats", timeout=30).json()["totals"]
            for c in children:
                c.communicate(timeout=seconds + 120)
            calls = _script_calls(r) - calls
        finally:
            for c in children:
                if c.poll() is None:
                    c.kill()
    totals = requests.get(f"{url}/_sandbox/stats", timeout=30).json()["totals"]
    served = totals["requests"] - totals["rate_limited"]
    elapsed = totals["seconds"]
    allowed = burst + rate * elapsed  # what the site could have served in that time
    # After the warm-up: the cold start (every thread in flight before anything is known) left out.
    late_429 = totals["rate_limited"] - warm["rate_limited"]
    late_served = served - (warm["requests"] - warm["rate_limited"])
    late_seconds = elapsed - warm["seconds"]
    figures: dict[str, object] = {
        "requests_per_s": round(served / elapsed, 1),
        "vs_limit": round(served / allowed, 3),
        "429_per_min": round(totals["rate_limited"] / elapsed * 60, 1),
        "429_share": round(totals["rate_limited"] / max(1, totals["requests"]), 4),
        "warm_vs_limit": round(late_served / (rate * late_seconds), 3),
        "warm_429_per_min": round(late_429 / late_seconds * 60, 1),
    }
    if shared:  # what the budget cost Redis (EVALSHA calls of the whole server: other clients count too)
        figures["redis_calls_per_request"] = round(calls / max(1, totals["requests"]), 2)
        figures["redis_bytes_per_site"] = r.memory_usage(key) or 0
    return figures


def _script_calls(r: redis.Redis) -> int:
    stats = r.info("commandstats")
    return sum(int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha", "cmdstat_eval"))


def run(quick: bool) -> dict[str, object]:
    rate = 30 if quick else 40
    burst = rate
    seconds = 6.0 if quick else 20.0
    warmup = 2.0 if quick else 4.0
    out: dict[str, object] = {
        "rate_limit_per_s": rate,
        "burst": burst,
        "seconds_per_run": seconds,
        "warmup_seconds": warmup,
        "threads_per_process": THREADS,
    }
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as e:
        out["skipped"] = f"Redis does not answer at {REDIS_URL}: {e}"
        return out
    rows = []
    with _site_process(
        projects=1, issues_per_project=2, seed=3, latency_ms=20, rate_limit=rate, burst=burst
    ) as url:
        for procs in (1, 2, 3):
            for shared in (True, False):
                figures = _one(url, procs, shared, seconds, warmup, rate, burst)
                mode = "shared" if shared else "local"
                out[f"{procs}p_{mode}"] = figures
                rows.append((procs, mode, figures))
        # A second run of 3 processes straight after, the site's state still in Redis: a warm start.
        figures = _one(url, 3, True, seconds, warmup, rate, burst, cold=False)
        out["3p_shared_warm_start"] = figures
        rows.append((3, "shared, warm start", figures))
        from backend.jira.shared_budget import site_key

        key = site_key(url, AUTH[0])
        redis.Redis.from_url(REDIS_URL).delete(key, key + ":paused")
    print(
        f"  {'processes':>9} {'budget':>18} {'req/s':>6} {'vs limit':>8} {'429/min':>8} {'429 share':>9}"
        f" {'warm vs limit':>13} {'warm 429/min':>12}"
    )
    for procs, mode, f in rows:
        print(
            f"  {procs:>9} {mode:>18} {f['requests_per_s']:>6} {f['vs_limit']:>8} "
            f"{f['429_per_min']:>8} {f['429_share']:>9} {f['warm_vs_limit']:>13} {f['warm_429_per_min']:>12}"
        )
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        site, secs, ready_file, go_file = sys.argv[2:6]
        print(json.dumps(_worker(site, float(secs), Path(ready_file), Path(go_file))))
    else:
        sys.exit("usage: python -m bench shared_budget [--quick]")
