"""A run's meter on its Jira traffic: the site's rate budget wrapped, counting each request it lets go
and each 429 Jira answers, so that the run's live progress can say how fast it goes and whether Jira
is throttling it.

Every client of a run shares one budget (the per-project clients take the run client's, see
backend/backup/run.py `project_client`), so wrapping that one budget sees all of the run's requests in
this process. It changes nothing of the pacing: every call goes on to the real budget.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

WINDOW = 10.0  # seconds over which the current request rate is measured
RECENT = 30.0  # a 429 within this many seconds counts as "Jira is throttling now"


class MeteredBudget:
    """A RateBudget that counts sends and 429s on their way to the real one."""

    def __init__(self, inner: Any, clock=time.monotonic) -> None:
        self.inner = inner
        self.clock = clock
        self.sent = 0
        self.throttles = 0
        self.last_throttle: float | None = None
        self.times: deque[float] = deque()
        self.lock = threading.Lock()

    def acquire(self) -> Any:
        ticket = self.inner.acquire()
        now = self.clock()
        with self.lock:
            self.sent += 1
            self.times.append(now)
            while self.times and self.times[0] < now - WINDOW:
                self.times.popleft()
        return ticket

    def throttled(self, retry_after: float | None) -> None:
        with self.lock:
            self.throttles += 1
            self.last_throttle = self.clock()
        self.inner.throttled(retry_after)

    def observe(self, *args: Any, **kwargs: Any) -> None:
        self.inner.observe(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # anything else a budget offers (rate, pause state)
        return getattr(self.inner, name)

    def reading(self) -> dict[str, Any]:
        """What the progress records: requests so far, 429s, the rate now, whether throttled lately."""
        now = self.clock()
        with self.lock:
            recent = sum(1 for t in self.times if t >= now - WINDOW)
            throttling = self.last_throttle is not None and now - self.last_throttle <= RECENT
            return {
                "requests": self.sent,
                "throttled": self.throttles,
                "rate": round(recent / WINDOW, 1),
                "throttling": throttling,
            }
