"""The shared rate budget against a simulated Jira burst limit, on a fake clock (no sleeping, no timings).

The server here is the same token bucket Jira uses for burst limits: `rate` tokens a second, at most
`burst` held. Each test drives the budget as the client does (acquire, send, observe or throttled) and
looks at what the server saw: how close to its rate the budget kept it busy, and how many 429s it caused.
"""

from __future__ import annotations

import heapq
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


def drive_in_flight(budget, server, clock: FakeClock, seconds: float, in_flight: int, latency: float = 0.04):
    """`in_flight` senders at once, each request `latency` seconds from send to answer (Jira counts it half
    way): what a backup's fetch and store threads do, simulated on the fake clock in event order."""
    take = getattr(budget, "try_acquire", None) or budget._try_acquire
    events = [(0.0, i, "ready", None) for i in range(in_flight)]
    heapq.heapify(events)
    order = in_flight
    while events:
        at, _, kind, data = heapq.heappop(events)
        if at > seconds:
            break
        clock.now = max(clock.now, at)
        order += 1
        if kind == "ready":
            ticket, wait = take()
            if ticket is None:
                heapq.heappush(events, (clock.now + min(max(wait, 0.001), 1.0), order, "ready", None))
            else:
                heapq.heappush(events, (clock.now + latency / 2, order, "arrive", ticket))
        elif kind == "arrive":
            heapq.heappush(events, (clock.now + latency / 2, order, "answer", (data, *server.send())))
        else:
            ticket, status, headers = data
            if status == 429:
                budget.throttled(float(headers["Retry-After"]))
            else:
                budget.observe(
                    ticket,
                    int(headers["X-RateLimit-Remaining"]),
                    headers.get("X-RateLimit-NearLimit") == "true",
                    int(headers["X-RateLimit-Limit"]),
                )
            heapq.heappush(events, (clock.now, order, "ready", None))


@pytest.mark.parametrize("rate,burst", [(10, 10), (20, 20), (50, 50)])
def test_a_cold_start_with_requests_in_flight_spends_the_bucket_without_a_429(rate, burst):
    """Eight requests in flight: unpaced, they reach 200 requests a second; pacing must not go on at that
    rate once half the bucket is spent (it did: 2-6 429s at the start of every cold run)."""
    clock = FakeClock()
    budget = LocalRateBudget(clock=clock, sleep=clock.sleep)
    server = BurstLimit(clock, rate, burst)
    drive_in_flight(budget, server, clock, 30.0, in_flight=8)
    assert server.refused == 0
    assert server.served >= 0.97 * (burst + rate * 30.0)


def test_a_cold_start_still_finds_a_refill_rate_far_above_the_bucket():
    """Starting at one bucket a second, a site refilling five buckets a second is found within seconds."""
    clock = FakeClock()
    budget = LocalRateBudget(clock=clock, sleep=clock.sleep)
    server = BurstLimit(clock, 100, 20)
    drive_in_flight(budget, server, clock, 60.0, in_flight=8)
    assert server.refused == 0
    assert server.served >= 0.93 * (20 + 100 * 60.0)
