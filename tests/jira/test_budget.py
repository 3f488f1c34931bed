"""The shared rate budget against a simulated Jira burst limit, on a fake clock (no sleeping, no timings).

The server here is the same token bucket Jira uses for burst limits: `rate` tokens a second, at most
`burst` held. Each test drives the budget as the client does (acquire, send, observe or throttled) and
looks at what the server saw: how close to its rate the budget kept it busy, and how many 429s it caused.
"""

from __future__ import annotations

import math

import pytest

from backend.jira import LocalRateBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class BurstLimit:
    """Jira's per-credential token bucket, answering with the headers Jira sends."""

    def __init__(self, clock: FakeClock, rate: float, burst: int) -> None:
        self.clock, self.rate, self.burst = clock, rate, burst
        self.tokens, self.updated = float(burst), clock()
        self.served = self.refused = 0

    def send(self) -> tuple[int, dict[str, str]]:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            self.refused += 1
            return 429, {"Retry-After": str(max(1, math.ceil((1 - self.tokens) / self.rate)))}
        self.tokens -= 1
        self.served += 1
        remaining = int(self.tokens)
        headers = {"X-RateLimit-Limit": str(self.burst), "X-RateLimit-Remaining": str(remaining)}
        if remaining < max(1, self.burst // 5):
            headers["X-RateLimit-NearLimit"] = "true"
        return 200, headers


def drive(budget: LocalRateBudget, server: BurstLimit, clock: FakeClock, seconds: float, numbers: bool):
    """Send as fast as the budget allows for `seconds`; each request takes a few milliseconds."""
    while clock() < seconds:
        ticket = budget.acquire()
        status, headers = server.send()
        clock.sleep(0.002)
        if status == 429:
            budget.throttled(float(headers["Retry-After"]))
            continue
        budget.observe(
            ticket,
            int(headers["X-RateLimit-Remaining"]) if numbers else None,
            headers.get("X-RateLimit-NearLimit") == "true",
            int(headers["X-RateLimit-Limit"]) if numbers else None,
        )


@pytest.mark.parametrize("rate,burst", [(50, 50), (10, 100), (100, 20), (400, 100)])
def test_remaining_headers_keep_the_site_busy_without_hitting_the_wall(rate, burst):
    clock = FakeClock()
    budget = LocalRateBudget(clock=clock, sleep=clock.sleep)
    server = BurstLimit(clock, rate, burst)
    drive(budget, server, clock, 60.0, numbers=True)
    allowed = burst + rate * 60.0  # the most the server could ever have served in that time
    assert server.served >= 0.93 * allowed
    assert server.refused <= 2
    assert budget.fitted == pytest.approx(rate, rel=0.1)


def test_near_limit_alone_still_paces_close_to_the_rate():
    clock = FakeClock()
    budget = LocalRateBudget(clock=clock, sleep=clock.sleep)
    server = BurstLimit(clock, 50, 50)
    drive(budget, server, clock, 60.0, numbers=False)
    assert server.served >= 0.8 * (50 + 50 * 60.0)
    assert server.refused <= 10
    assert budget.fitted is None


def test_a_429_pauses_every_caller_for_exactly_retry_after():
    clock = FakeClock()
    budget = LocalRateBudget(clock=clock, sleep=clock.sleep)
    budget.acquire()
    budget.throttled(2.0)
    ticket = budget.acquire()
    assert ticket.at >= 2.0
    assert budget.rate > 0  # it now paces instead of sending at will


def test_the_rate_found_survives_a_slower_server():
    """When the server's refill rate drops mid-run, the fitted rate follows it down."""
    clock = FakeClock()
    budget = LocalRateBudget(clock=clock, sleep=clock.sleep)
    server = BurstLimit(clock, 80, 40)
    drive(budget, server, clock, 20.0, numbers=True)
    server.rate = 20
    refused_before = server.refused
    drive(budget, server, clock, 60.0, numbers=True)
    assert budget.fitted == pytest.approx(20, rel=0.15)
    assert server.refused - refused_before <= 3
