"""The rate budget shared through Redis, against the real Redis on 127.0.0.1:6379 (no mocks).

The Lua bucket's arithmetic runs on a fake "now" handed to the script (exact counts, no sleeping); the
cross-process tests use real OS processes; the end-to-end test has three processes pace real requests
against one rate-limited sandbox site and reads the sandbox's own counts.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest
import redis
import requests

from backend.jira import JiraClient, JiraCredentials, LocalRateBudget
from backend.jira.budget import BUDGET_URL_ENV, budget_for
from backend.jira.shared_budget import SharedRateBudget, SharedTicket, redis_client, site_key
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT, free_port, start_sandbox
from tests.jira.shared_procs import REDIS_URL, SharedClock, hammer, throttle
from tests.jira.test_budget import BurstLimit, FakeClock, drive, drive_in_flight

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]


def _redis_or_skip() -> redis.Redis:
    client = redis_client(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.skip(f"Redis is not answering on 127.0.0.1:6379 ({e}); .ci/run starts it")
    return client


@pytest.fixture
def r() -> redis.Redis:
    return _redis_or_skip()


@pytest.fixture
def key(r: redis.Redis):
    """A budget key of this test's own, removed afterwards."""
    k = f"keepstone:rate:{{test-{uuid.uuid4().hex[:12]}}}"
    yield k
    r.delete(k, k + ":paused")


def primed(r: redis.Redis, key: str, clock, pace: float) -> SharedRateBudget:
    """A budget pacing at `pace`, its bucket empty at clock() (the first grant took the one token)."""
    budget = SharedRateBudget(r, key, clock=clock)
    budget.proposal = (pace, clock())
    ticket, _ = budget.try_acquire()
    assert isinstance(ticket, SharedTicket) and ticket.seq == 1
    return budget


# --- the Lua bucket -----------------------------------------------------------------------------------


def test_refill_and_burst_are_exact(r, key):
    clock = FakeClock()
    clock.now = 1000.0
    budget = primed(r, key, clock, pace=40.0)  # burst = pace / 4 = 10
    assert budget.try_acquire() == (None, pytest.approx(1 / 40))
    clock.now += 0.1  # 4 tokens
    assert sum(budget.try_acquire()[0] is not None for _ in range(10)) == 4
    clock.now += 60.0  # a long quiet spell fills the bucket to its burst, not beyond
    assert sum(budget.try_acquire()[0] is not None for _ in range(30)) == 10
    assert int(r.hget(key, "seq")) == 15
    assert 0 < r.pttl(key) <= 3600 * 1000  # the state expires an hour after the last grant


def test_an_older_fit_never_overrides_a_newer_one(r, key):
    clock = FakeClock()
    clock.now = 50.0
    budget = primed(r, key, clock, pace=40.0)
    budget.proposal = (400.0, 49.0)  # learnt from a response to an earlier grant: ignored
    budget.try_acquire()
    assert budget.rate == pytest.approx(40.0)
    budget.proposal = (20.0, 50.5)
    budget.try_acquire()
    assert budget.rate == pytest.approx(20.0)


@pytest.mark.parametrize("rate,burst", [(50, 50), (10, 100), (100, 20)])
def test_the_shared_bucket_keeps_a_simulated_site_busy_without_hitting_the_wall(r, key, rate, burst):
    """The fitted-rate path of LocalRateBudget, carried through Redis: the same figures on a fake clock."""
    clock = FakeClock()
    budget = SharedRateBudget(r, key, clock=clock, sleep=clock.sleep)
    server = BurstLimit(clock, rate, burst)
    drive(budget, server, clock, 60.0, numbers=True)
    allowed = burst + rate * 60.0
    assert server.served >= 0.93 * allowed
    assert server.refused <= 2
    assert budget.fitted == pytest.approx(rate, rel=0.1)


@pytest.mark.parametrize("rate,burst", [(10, 10), (50, 50)])
def test_a_cold_shared_start_with_requests_in_flight_spends_the_bucket_without_a_429(r, key, rate, burst):
    """The start pace of LocalRateBudget (at most one bucket a second), carried through the script."""
    clock = FakeClock()
    clock.now = 2000.0
    budget = SharedRateBudget(r, key, clock=clock, sleep=clock.sleep)
    server = BurstLimit(clock, rate, burst)
    drive_in_flight(budget, server, clock, 2030.0, in_flight=8)
    assert server.refused == 0
    assert server.served >= 0.97 * (burst + rate * 30.0)


def test_near_limit_alone_paces_through_redis(r, key):
    clock = FakeClock()
    budget = SharedRateBudget(r, key, clock=clock, sleep=clock.sleep)
    server = BurstLimit(clock, 50, 50)
    drive(budget, server, clock, 60.0, numbers=False)
    assert server.served >= 0.8 * (50 + 50 * 60.0)
    assert server.refused <= 10


def test_many_threads_never_take_more_than_the_bucket_grants(r, key):
    clock = FakeClock()
    clock.now = 10.0
    budget = primed(r, key, clock, pace=40.0)
    seqs: list[int] = []
    tried = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            ticket, _ = budget.try_acquire()
            with lock:
                tried[0] += 1
                if ticket is not None:
                    seqs.append(ticket.seq)

    pool = [threading.Thread(target=loop) for _ in range(16)]
    for t in pool:
        t.start()
    try:
        for _ in range(20):
            with lock:
                seen = tried[0]
            clock.now += 0.1  # 4 more tokens
            while True:  # let every thread try a few times at this time
                with lock:
                    if tried[0] - seen >= 64:
                        break
                time.sleep(0.001)
    finally:
        stop.set()
        for t in pool:
            t.join()
    assert sorted(seqs) == list(range(2, 2 + 80))  # exactly 4 per step, each seq granted once


def test_three_processes_never_take_more_than_the_bucket_grants(r, key):
    ctx = multiprocessing.get_context("spawn")
    now = ctx.Value("d", 10.0)
    attempts = ctx.Value("i", 0)
    stop = ctx.Event()
    results = ctx.Queue()
    primed(r, key, SharedClock(now), pace=40.0)
    procs = [ctx.Process(target=hammer, args=(key, now, attempts, stop, 3, results)) for _ in range(3)]
    for p in procs:
        p.start()
    try:
        deadline = time.monotonic() + 30
        while attempts.value < 30:  # all three are up and trying
            assert time.monotonic() < deadline, "the processes did not start"
            time.sleep(0.01)
        for _ in range(25):
            seen = attempts.value
            with now.get_lock():
                now.value += 0.1
            while attempts.value - seen < 90:
                assert time.monotonic() < deadline, "the processes stopped trying"
                time.sleep(0.001)
        stop.set()
        seqs = [s for _ in procs for s in results.get(timeout=20)]
    finally:
        stop.set()
        for p in procs:
            p.join(10)
    assert sorted(seqs) == list(range(2, 2 + 100))  # 25 steps x 4 tokens, none granted twice
    assert all(p.exitcode == 0 for p in procs)


# --- the shared pause ---------------------------------------------------------------------------------


def test_a_429_in_one_process_pauses_the_others(r, key):
    ctx = multiprocessing.get_context("spawn")
    mine = SharedRateBudget(r, key)
    assert mine.try_acquire()[0] is not None
    other = ctx.Process(target=throttle, args=(key, 5.0))
    other.start()
    other.join(30)
    assert other.exitcode == 0
    ticket, wait = mine.try_acquire()
    assert ticket is None
    assert 0 < wait <= 5.0  # Redis's clock: the other process's Retry-After, less what has passed
    assert 0 < r.pttl(key + ":paused") <= 5000  # the pause key goes away when the pause ends
    assert float(r.get(key + ":paused")) > float(r.hget(key, "updated")) - 1e-6


def test_the_pause_lasts_exactly_retry_after_on_the_shared_clock(r, key):
    clock = FakeClock()
    clock.now = 100.0
    budget = primed(r, key, clock, pace=40.0)
    budget.throttled(2.0)
    clock.now = 101.0
    assert budget.try_acquire() == (None, pytest.approx(1.0))
    clock.now = 102.5
    assert budget.try_acquire()[0] is not None
    assert budget.rate < 40.0  # and the pace came down


# --- configuration and fallback -----------------------------------------------------------------------


def test_without_the_url_every_client_keeps_a_budget_of_its_own(monkeypatch):
    monkeypatch.delenv(BUDGET_URL_ENV, raising=False)
    one = JiraClient(JiraCredentials("http://127.0.0.1:1", "a@example.com", "t"))
    two = JiraClient(JiraCredentials("http://127.0.0.1:1", "a@example.com", "t"))
    assert isinstance(one.budget, LocalRateBudget)
    assert one.budget is not two.budget


def test_with_the_url_clients_of_one_site_and_credential_share_one_budget(r, monkeypatch):
    monkeypatch.setenv(BUDGET_URL_ENV, REDIS_URL)
    site = f"http://127.0.0.1:{free_port()}"
    one = JiraClient(JiraCredentials(site, "a@example.com", "t"))
    two = JiraClient(JiraCredentials(site + "/", "a@example.com", "t"))
    other = JiraClient(JiraCredentials(site, "b@example.com", "t"))
    assert isinstance(one.budget, SharedRateBudget)
    assert one.budget is two.budget
    assert other.budget is not one.budget
    assert one.budget.key == site_key(site, "a@example.com")
    assert "a@example.com" not in one.budget.key  # the credential is hashed, never stored
    assert budget_for(site, "a@example.com") is one.budget


class OwnRedis:
    """A redis-server of the test's own on a free port, to stop and start (the shared one stays up)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_redis():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


def test_a_forked_child_gets_budgets_of_its_own(r, monkeypatch):
    """A prefork worker must not inherit the parent's budget objects (their locks may be held)."""
    monkeypatch.setenv(BUDGET_URL_ENV, REDIS_URL)
    site = f"http://127.0.0.1:{free_port()}"
    parent = budget_for(site, "fork@example.com")
    assert budget_for(site, "fork@example.com") is parent
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            child = budget_for(site, "fork@example.com")
            ticket, _ = child.try_acquire()
            ok = child is not parent and child.key == parent.key and isinstance(ticket, SharedTicket)
            os.write(writer, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(reader, 1) == b"1"
    r.delete(parent.key, parent.pause_key)


def test_losing_redis_falls_back_to_the_local_budget_with_one_warning(own_redis, caplog):
    timer = FakeClock()
    budget = SharedRateBudget(redis_client(own_redis.url), "keepstone:rate:{fallback}", monotonic=timer)
    assert isinstance(budget.acquire(), SharedTicket)
    own_redis.stop()
    with caplog.at_level(logging.INFO, logger="backend.jira.shared_budget"):
        tickets = [budget.acquire() for _ in range(20)]
        budget.observe(tickets[0], 10, False, 20)
        budget.throttled(None)
        timer.now += 31  # Redis is tried again every 30 s: still down, still no second warning
        tickets.append(budget.acquire())
        assert not any(isinstance(t, SharedTicket) for t in tickets)
        warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
        assert len(warnings) == 1 and "Redis does not answer" in warnings[0].getMessage()
        own_redis.start()
        assert not isinstance(budget.acquire(), SharedTicket)  # the failed retry restarted the 30 s
        timer.now += 31
        assert isinstance(budget.acquire(), SharedTicket)
        assert any("answers again" in rec.getMessage() for rec in caplog.records)


def test_a_backup_client_rides_out_redis_going_away(own_redis, caplog):
    """Threads of a client pacing through the shared budget; Redis dies half way; every request succeeds."""
    with start_sandbox(projects=1, issues_per_project=2, seed=3, rate_limit=200, burst=50) as site:
        budget = SharedRateBudget(redis_client(own_redis.url), site_key(site.url, ADMIN_EMAIL))
        client = JiraClient(JiraCredentials(site.url, ADMIN_EMAIL, ADMIN_TOKEN), budget=budget)
        done: list[int] = []
        errors: list[BaseException] = []

        def loop() -> None:
            try:
                for _ in range(30):
                    client.request("GET", "/rest/api/3/myself")
                    done.append(1)
            except BaseException as e:
                errors.append(e)

        with caplog.at_level(logging.WARNING, logger="backend.jira.shared_budget"):
            pool = [threading.Thread(target=loop) for _ in range(4)]
            for t in pool:
                t.start()
            while len(done) < 40 and not errors:
                time.sleep(0.005)
            own_redis.stop()
            for t in pool:
                t.join(30)
        assert not errors
        assert len(done) == 120
        assert budget.down_since is not None
        assert len([rec for rec in caplog.records if rec.levelno == logging.WARNING]) == 1


# --- end to end ---------------------------------------------------------------------------------------


@pytest.mark.pacing
def test_three_processes_share_one_sites_limit(r, tmp_path):
    """Three processes pace real requests through JiraClient at one 25 req/s site: few 429s, site kept busy."""
    rate, burst, per_process = 25, 25, 130
    with start_sandbox(projects=1, issues_per_project=2, seed=5, rate_limit=rate, burst=burst) as site:
        r.delete(site_key(site.url, ADMIN_EMAIL), site_key(site.url, ADMIN_EMAIL) + ":paused")
        env = {**os.environ, BUDGET_URL_ENV: REDIS_URL, "PYTHONPATH": str(ROOT)}
        go = tmp_path / "go"
        readies = [tmp_path / f"ready{i}" for i in range(3)]
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.jira.shared_procs",
                    site.url,
                    str(per_process),
                    "4",
                    str(ready),
                    str(go),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for ready in readies
        ]
        try:
            deadline = time.monotonic() + 30
            while not all(p.exists() for p in readies):
                assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
                time.sleep(0.05)
            assert {p.read_text() for p in readies} == {"SharedRateBudget"}
            requests.post(f"{site.url}/_sandbox/stats/reset", timeout=10).raise_for_status()
            go.write_text("go")
            outs = [json.loads(p.communicate(timeout=40)[0]) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            r.delete(site_key(site.url, ADMIN_EMAIL), site_key(site.url, ADMIN_EMAIL) + ":paused")
        totals = requests.get(f"{site.url}/_sandbox/stats", timeout=10).json()["totals"]
    served = totals["requests"] - totals["rate_limited"]
    assert served == 3 * per_process
    assert sum(o["requests"] for o in outs) == totals["requests"]
    assert totals["rate_limited"] <= 0.01 * totals["requests"]
    # Together they kept the site busy: served close to what the limit allowed while they ran.
    assert served >= 0.8 * (burst + rate * totals["seconds"])
