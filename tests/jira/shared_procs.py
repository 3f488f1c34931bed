"""What the other processes of tests/jira/test_shared_budget.py run (importable by multiprocessing's spawn).

`python -m tests.jira.shared_procs SITE_URL REQUESTS THREADS READY_FILE GO_FILE` sends REQUESTS paced
requests through `JiraClient` (whatever budget `KEEPSTONE_RATE_BUDGET_URL` selects), from THREADS threads,
once GO_FILE exists, and prints the client's counts as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN_EMAIL = "admin@example.com"
ADMIN_TOKEN = "sandbox-admin-token"


class SharedClock:
    """A fake "now" every process reads from one multiprocessing.Value."""

    def __init__(self, value) -> None:
        self.value = value

    def __call__(self) -> float:
        return float(self.value.value)


def hammer(key: str, now, attempts, stop, threads: int, results) -> None:
    """Try to take sends as fast as possible at the shared fake time; report the seqs granted."""
    from backend.jira.shared_budget import SharedRateBudget, redis_client

    budget = SharedRateBudget(redis_client(REDIS_URL), key, clock=SharedClock(now))
    got: list[int] = []
    lock = threading.Lock()

    def loop() -> None:
        while not stop.is_set():
            ticket, _ = budget.try_acquire()
            with attempts.get_lock():
                attempts.value += 1
            if ticket is not None:
                with lock:
                    got.append(ticket.seq)

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    results.put(got)


def throttle(key: str, retry_after: float) -> None:
    """Report one 429 to the shared budget (real Redis time), then exit."""
    from backend.jira.shared_budget import SharedRateBudget, redis_client

    SharedRateBudget(redis_client(REDIS_URL), key).throttled(retry_after)


def paced_requests(site_url: str, total: int, threads: int, ready: Path, go: Path) -> dict[str, int]:
    from backend.jira import JiraClient, JiraCredentials

    client = JiraClient(JiraCredentials(site_url, ADMIN_EMAIL, ADMIN_TOKEN), max_attempts=20)
    left = [total]
    lock = threading.Lock()
    ready.with_suffix(".tmp").write_text(type(client.budget).__name__)
    ready.with_suffix(".tmp").replace(ready)  # whole or absent: the parent reads it at once
    deadline = time.monotonic() + 30
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go signal")
        time.sleep(0.01)

    def loop() -> None:
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            client.request("GET", "/rest/api/3/myself")

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {
        "requests": client.stats.requests,
        "throttled": client.stats.throttled,
        "budget": type(client.budget).__name__,
    }


if __name__ == "__main__":
    url, n, threads, ready_file, go_file = sys.argv[1:6]
    print(json.dumps(paced_requests(url, int(n), int(threads), Path(ready_file), Path(go_file))))
