"""The per-site request budget that every thread of a backup or restore shares.

Jira does not publish a site's rate, so the budget learns it. Two signals, best first:

- `X-RateLimit-Remaining` (with `X-RateLimit-Limit`) on successful responses. Jira's burst limit is a token
  bucket: tokens the server has granted so far = remaining + requests sent, a line whose slope is the refill
  rate. The budget fits that slope over the last seconds and paces at it, plus whatever the bucket holds
  above a reserve (spent over a couple of seconds): it keeps the site busy without hitting the wall.
- Without those headers, AIMD as TCP does it: a 429 sets the pace a little under the rate just achieved,
  `X-RateLimit-NearLimit` holds the pace (and lowers it gently while it persists), quiet seconds raise it.

A 429 always pauses *every* thread for exactly its Retry-After. `RateBudget` is the interface;
`LocalRateBudget` serves one process; `backend.jira.shared_budget.SharedRateBudget` keeps the same state in
Redis for every process of one site (`KEEPSTONE_RATE_BUDGET_URL`, see `budget_for`).
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

BUDGET_URL_ENV = "KEEPSTONE_RATE_BUDGET_URL"


@dataclass(frozen=True)
class Ticket:
    """One granted send: when, and how many sends the budget had granted before it."""

    at: float
    seq: int


class RateBudget(Protocol):
    def acquire(self) -> Ticket:
        """Block until one more request may be sent."""

    def throttled(self, retry_after: float | None) -> None:
        """Report a 429: pause every caller and lower the pace."""

    def observe(
        self, ticket: Ticket, remaining: int | None, near_limit: bool, limit: int | None = None
    ) -> None:
        """Learn from the rate-limit headers of the successful response to `ticket`'s request."""


class LocalRateBudget:
    """A thread-safe adaptive token bucket with a shared pause."""

    WINDOW = 3.0  # seconds of history for the achieved rate and the refill-rate fit
    SAMPLE = 0.01  # seconds between two points of the refill-rate fit
    RESERVE = 0.25  # share of the server's bucket kept in hand
    DRAIN = 2.0  # seconds over which tokens above the reserve are spent
    GROWTH = 0.05  # AIMD: relative increase per quiet second
    HOLD = 1.0  # AIMD: seconds without increase after a near-limit signal
    NEAR_STEP = 0.9  # AIMD: decrease per second while the near-limit signal lasts

    def __init__(self, rate: float = 0.0, clock=time.monotonic, sleep=time.sleep) -> None:
        self.rate = float(rate)  # 0 = unpaced until the first signal
        self.clock = clock
        self.sleep = sleep
        now = clock()
        self.tokens = 1.0
        self.updated = now
        self.grown = now
        self.paused_until = 0.0
        self.hold_until = float("-inf")
        self.last_decrease = float("-inf")
        self.seq = 0
        self.sent: collections.deque[float] = collections.deque()
        self.supply: collections.deque[tuple[float, int]] = collections.deque()  # (sent at, remaining+seq)
        self.fitted: float | None = None  # the refill rate fitted from the supply line, when it can be
        self.lock = threading.Lock()

    # --- sending ----------------------------------------------------------------------------------

    def acquire(self) -> Ticket:
        while True:
            ticket, wait = self._try_acquire()
            if ticket is not None:
                return ticket
            self.sleep(min(max(wait, 0.001), 1.0))

    def _try_acquire(self) -> tuple[Ticket | None, float]:
        """Take a send now if the pace allows it; else say how long to wait."""
        with self.lock:
            now = self.clock()
            if now < self.paused_until:
                return None, self.paused_until - now
            if self.rate and now >= self.hold_until and self.fitted is None:
                # AIMD increase (only while the server tells us nothing better).
                self.rate += self.rate * self.GROWTH * min(1.0, now - self.grown)
            self.grown = now
            if self.rate:
                self.tokens = min(self._burst(), self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens < 1.0:
                    return None, (1.0 - self.tokens) / self.rate
                self.tokens -= 1.0
            self.seq += 1
            self.sent.append(now)
            while self.sent and self.sent[0] < now - self.WINDOW:
                self.sent.popleft()
            return Ticket(now, self.seq), 0.0

    def _burst(self) -> float:
        return max(1.0, self.rate / 4)

    def _achieved(self, now: float) -> float:
        recent = [t for t in self.sent if t >= now - self.WINDOW]
        if len(recent) < 2:
            return 0.0
        return len(recent) / max(now - recent[0], 0.25)

    # --- learning ---------------------------------------------------------------------------------

    def throttled(self, retry_after: float | None) -> None:
        with self.lock:
            now = self.clock()
            if now - self.last_decrease > 0.5:  # one decrease per burst of 429s
                if self.fitted:
                    self.rate = max(0.5, self.fitted * 0.95)
                else:
                    base = self._achieved(now) or self.rate or 1.0
                    self.rate = max(0.5, (min(self.rate, base) if self.rate else base) * 0.85)
                self.last_decrease = now
            if retry_after:
                self.paused_until = max(self.paused_until, now + retry_after)
            self.tokens = 0.0
            self.updated = max(now, self.paused_until)
            self.hold_until = self.updated + self.HOLD

    def observe(
        self, ticket: Ticket, remaining: int | None, near_limit: bool, limit: int | None = None
    ) -> None:
        with self.lock:
            if remaining is not None and limit:
                self._observe_bucket(ticket, remaining, limit)
            elif near_limit or (remaining is not None and remaining <= 1):
                self._near_limit()

    def _observe_bucket(self, ticket: Ticket, remaining: int, limit: int) -> None:
        """Pace at the fitted refill rate plus the tokens held above the reserve."""
        if not self.supply or ticket.at - self.supply[-1][0] >= self.SAMPLE:
            # At most one point per SAMPLE seconds: the fit costs the same at 20 or 2000 requests a second.
            self.supply.append((ticket.at, remaining + ticket.seq))
            while self.supply and self.supply[0][0] < ticket.at - self.WINDOW:
                self.supply.popleft()
            self.fitted = self._refill_rate()
        if self.fitted is not None:
            surplus = (remaining - limit * self.RESERVE) / self.DRAIN
            self.rate = max(0.5, self.fitted + surplus)
        elif not self.rate and remaining <= limit * 0.5:
            self.rate = start_pace(self._achieved(self.clock()), limit)  # start pacing before the wall

    def _refill_rate(self) -> float | None:
        return fit_refill_rate(self.supply)

    def _near_limit(self) -> None:
        """AIMD without numbers: stop growing, and step under the rate achieved while the signal lasts."""
        now = self.clock()
        self.hold_until = now + self.HOLD
        achieved = self._achieved(now)
        if not self.rate:
            self.rate = max(1.0, achieved)
            self.last_decrease = now
        elif now - self.last_decrease >= 1.0:
            self.rate = max(0.5, min(self.rate, achieved or self.rate) * self.NEAR_STEP)
            self.last_decrease = now


def start_pace(achieved: float, limit: int) -> float:
    """The pace an unpaced budget starts at when half of Jira's bucket is spent, before any fit: the rate
    sent so far, but at most one bucket a second. Sending unpaced, eight threads at 40 ms reach 200
    requests a second; pacing on at that rate spent the other half before the refill rate was fitted, and
    every cold run began with a few 429s (tests/jira/test_budget.py, requests in flight); from here the fit
    and the bucket's surplus raise the pace."""
    return max(1.0, min(achieved, float(limit)) if achieved else float(limit))


def fit_refill_rate(points: Iterable[tuple[float, int]]) -> float | None:
    """The least-squares slope of granted tokens over time, once the window spans half a second."""
    points = list(points)
    if len(points) < 8 or points[-1][0] - points[0][0] < 0.5:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_g = sum(g for _, g in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var <= 0:
        return None
    slope = sum((t - mean_t) * (g - mean_g) for t, g in points) / var
    return slope if slope > 0 else None


def budget_for(site_url: str, email: str = "") -> RateBudget:
    """The budget a new client of this site and credential paces on.

    Without `KEEPSTONE_RATE_BUDGET_URL` (the embedded default) a budget of the client's own; with a
    `redis://` URL the one budget every process of this site and credential shares through Redis.
    """
    url = os.environ.get(BUDGET_URL_ENV, "").strip()
    if not url:
        return LocalRateBudget()
    from backend.jira.shared_budget import shared_budget

    return shared_budget(url, site_url, email)
