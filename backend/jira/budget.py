"""The per-site request budget that every thread of a backup or restore shares.

Jira does not publish a site's rate, so the budget learns it (AIMD, as TCP does): it starts unpaced (or
at a configured rate), a 429 pauses *every* thread for exactly its Retry-After and sets the pace a little
under the rate that was just achieved, quiet seconds raise the pace again, and X-RateLimit-NearLimit /
X-RateLimit-Remaining headers slow it before a 429 happens. `RateBudget` is the interface;
`LocalRateBudget` serves one process (a Redis implementation can serve many workers of one site).
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Protocol


class RateBudget(Protocol):
    def acquire(self) -> None:
        """Block until one more request may be sent."""

    def throttled(self, retry_after: float | None) -> None:
        """Report a 429: pause every caller and lower the pace."""

    def observe(self, remaining: int | None, near_limit: bool) -> None:
        """Learn from the rate-limit headers of a successful response."""


class LocalRateBudget:
    """A thread-safe adaptive token bucket with a shared pause."""

    WINDOW = 3.0  # seconds of send history used to measure the achieved rate

    def __init__(self, rate: float = 0.0, clock=time.monotonic, sleep=time.sleep) -> None:
        self.rate = float(rate)  # 0 = unpaced until the first 429
        self.clock = clock
        self.sleep = sleep
        self.tokens = 1.0
        self.updated = clock()
        self.paused_until = 0.0
        self.last_throttle = float("-inf")
        self.sent: collections.deque[float] = collections.deque()
        self.lock = threading.Lock()
        self.throttle_count = 0

    def _burst(self) -> float:
        return max(1.0, self.rate / 4)

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = self.clock()
                if now < self.paused_until:
                    wait = self.paused_until - now
                else:
                    if self.rate and now - self.last_throttle > 1.0:
                        # Additive increase: about 3% more each quiet second.
                        self.rate += self.rate * 0.03 * min(1.0, now - self.updated)
                    if not self.rate:
                        self._record(now)
                        return
                    self.tokens = min(self._burst(), self.tokens + (now - self.updated) * self.rate)
                    self.updated = now
                    if self.tokens >= 1.0:
                        self.tokens -= 1.0
                        self._record(now)
                        return
                    wait = (1.0 - self.tokens) / self.rate
            self.sleep(min(max(wait, 0.001), 1.0))

    def _record(self, now: float) -> None:
        self.sent.append(now)
        while self.sent and self.sent[0] < now - self.WINDOW:
            self.sent.popleft()

    def achieved_rate(self) -> float:
        """Requests per second sent over the last few seconds."""
        with self.lock:
            now = self.clock()
            recent = [t for t in self.sent if t >= now - self.WINDOW]
            if len(recent) < 2:
                return 0.0
            return len(recent) / max(now - recent[0], 0.25)

    def throttled(self, retry_after: float | None) -> None:
        achieved = self.achieved_rate()
        with self.lock:
            now = self.clock()
            self.throttle_count += 1
            if now - self.last_throttle > 0.5:  # one decrease per burst of 429s
                base = achieved or self.rate or 1.0
                self.rate = max(0.5, (min(self.rate, base) if self.rate else base) * 0.85)
            self.last_throttle = now
            if retry_after:
                self.paused_until = max(self.paused_until, now + retry_after)
            self.tokens = 0.0
            self.updated = max(now, self.paused_until)

    def observe(self, remaining: int | None, near_limit: bool) -> None:
        if not (near_limit or (remaining is not None and remaining <= 1)):
            return
        achieved = self.achieved_rate()
        with self.lock:
            if achieved and (not self.rate or self.rate > achieved):
                self.rate = achieved
            elif self.rate:
                self.rate *= 0.97
