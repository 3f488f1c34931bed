"""The run's meter on its Jira traffic (backend/run_meter.py) against a rate-limited sandbox over HTTP, and
the run's traffic samples (backend/runs.py `_sampled`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from backend.jira import JiraClient, JiraCredentials
from backend.run_meter import MeteredBudget
from backend.runs import _sampled
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, start_sandbox


def test_the_meter_counts_every_request_and_each_429_jira_answers():
    with start_sandbox(projects=1, issues_per_project=3, seed=3, rate_limit=4, burst=1) as site:
        client = JiraClient(JiraCredentials(site.url, ADMIN_EMAIL, ADMIN_TOKEN), backoff_base=0.05)
        client.budget = meter = MeteredBudget(client.budget)
        own = JiraClient(client.credentials, budget=client.budget)  # a project's client shares the budget
        with ThreadPoolExecutor(6) as pool:  # a burst the site's bucket of one cannot take
            list(pool.map(lambda c: c.get_json("/rest/api/3/myself"), [client, own] * 6))
        reading = meter.reading()
        assert reading["requests"] == client.stats.requests + own.stats.requests >= 12
        assert reading["throttled"] == client.stats.throttled + own.stats.throttled
        assert reading["throttled"] > 0 and reading["throttling"] is True
        assert reading["rate"] > 0


def test_samples_are_two_seconds_apart_and_halved_past_300_points():
    reading = {"requests": 10, "throttled": 1}
    first = _sampled([], reading)
    assert len(first) == 1 and first[0][1:] == [10, 1]
    assert _sampled(first, {"requests": 11, "throttled": 1}) == first  # within 2 s: no new point
    old = [[t, t, 0] for t in range(0, 600, 2)]  # 300 points, the last long ago
    halved = _sampled(old, reading)
    assert len(halved) == 151 and halved[0] == old[0] and halved[-1][1:] == [10, 1]
    assert _sampled(first, {}) == first  # no meter (another executor): left as it is
