"""One rate budget per Jira site and credential, shared by every thread of every process through Redis.

The state `LocalRateBudget` keeps in memory (tokens, pace, pause, the count of sends granted) lives in one
Redis hash per site and credential, changed only by one Lua script, so a grant is atomic across processes:
however many workers ask, the bucket never grants more than its pace allows. Learning stays where the
responses arrive: each process fits the refill rate from `X-RateLimit-Remaining` + the *site-wide* count of
grants (both on Redis's clock) and hands its latest pace to the script with its next request; the newest
fit wins. A 429 seen by any process sets a "paused until" key that every process's next grant waits for.

If Redis stops answering, this process falls back to a `LocalRateBudget` with one warning (a backup never
fails for the budget's sake) and tries Redis again every `retry_every` seconds.

Keys (`{...}` is a Redis Cluster hash tag: both keys of a site live on one shard):

- `keepstone:rate:{<host>:<hash>}`: hash `tokens updated rate rate_at fit_at seq hold_until last_decrease
  grown win_start win_count achieved`; its TTL is renewed on every grant (`ttl` seconds, one hour).
- `keepstone:rate:{<host>:<hash>}:paused`: the Redis time a 429's pause ends; expires with the pause.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from backend.jira.budget import LocalRateBudget, Ticket, fit_refill_rate

log = logging.getLogger(__name__)

PREFIX = "keepstone:rate:"

# KEYS: state hash, pause key. ARGV: op, ttl ms, proposed pace, proposal time, value (the Retry-After of
# "throttled"), fitted rate, now (tests only; else Redis TIME).
# op: "acquire" (take one send now or say how long to wait), "throttled" (a 429: pause and lower the pace),
# "near" (X-RateLimit-NearLimit without numbers: AIMD hold/step down), "start" (begin pacing at the rate
# achieved site-wide, at most the value, Jira's bucket size, a second, from an empty bucket: every
# process's requests in flight spend what Jira's holds).
# Every op first applies a proposal newer than the pace it has.
# Returns {granted 0/1, wait seconds, now, seq, pace} (numbers as strings: Redis truncates Lua floats).
SCRIPT = """
local op = ARGV[1]
local ttl = tonumber(ARGV[2])
local proposal = tonumber(ARGV[3])
local proposal_at = tonumber(ARGV[4])
local now
if ARGV[7] ~= '' then
  now = tonumber(ARGV[7])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local f = redis.call('HMGET', KEYS[1], 'tokens', 'updated', 'rate', 'rate_at', 'fit_at', 'seq',
  'hold_until', 'last_decrease', 'grown', 'win_start', 'win_count', 'achieved')
local tokens = tonumber(f[1]) or 1
local updated = tonumber(f[2]) or now
local rate = tonumber(f[3]) or 0
local rate_at = tonumber(f[4]) or -1
local fit_at = tonumber(f[5]) or -1e18
local seq = tonumber(f[6]) or 0
local hold_until = tonumber(f[7]) or -1e18
local last_decrease = tonumber(f[8]) or -1e18
local grown = tonumber(f[9]) or now
local win_start = tonumber(f[10]) or now
local win_count = tonumber(f[11]) or 0
local achieved = tonumber(f[12]) or 0
local paused = tonumber(redis.call('GET', KEYS[2]) or '0') or 0

local function fmt(x) return string.format('%.6f', x) end
local function achieved_now()
  local span = now - win_start
  if span >= 1 and win_count >= 2 then return win_count / span end
  if achieved > 0 then return achieved end
  if win_count >= 2 then return win_count / math.max(span, 0.25) end
  return 0
end
local function save()
  redis.call('HSET', KEYS[1], 'tokens', fmt(tokens), 'updated', fmt(updated), 'rate', fmt(rate),
    'rate_at', fmt(rate_at), 'fit_at', fmt(fit_at), 'seq', seq, 'hold_until', fmt(hold_until),
    'last_decrease', fmt(last_decrease), 'grown', fmt(grown), 'win_start', fmt(win_start),
    'win_count', win_count, 'achieved', fmt(achieved))
  redis.call('PEXPIRE', KEYS[1], ttl)
end

if proposal > 0 and proposal_at > rate_at then
  rate = proposal
  rate_at = proposal_at
  fit_at = math.max(fit_at, proposal_at)
end
if now - win_start >= 3 then
  if win_count >= 2 then achieved = win_count / (now - win_start) end
  win_start = now
  win_count = 0
end

if op == 'throttled' then
  local retry_after = tonumber(ARGV[5])
  local fitted = tonumber(ARGV[6])
  if now - last_decrease > 0.5 then
    if fitted > 0 then
      rate = math.max(0.5, fitted * 0.95)
    else
      local base = achieved_now()
      if base <= 0 then base = rate end
      if base <= 0 then base = 1 end
      if rate > 0 then base = math.min(rate, base) end
      rate = math.max(0.5, base * 0.85)
    end
    last_decrease = now
    rate_at = now
  end
  if retry_after > 0 and now + retry_after > paused then
    paused = now + retry_after
    redis.call('SET', KEYS[2], fmt(paused), 'PX', math.max(1, math.ceil(retry_after * 1000)))
  end
  tokens = 0
  updated = math.max(now, paused)
  hold_until = updated + 1
  save()
  return {0, fmt(math.max(0, paused - now)), fmt(now), seq, fmt(rate)}
elseif op == 'near' then
  hold_until = now + 1
  local got = achieved_now()
  if rate <= 0 then
    rate = math.max(1, got)
    last_decrease = now
  elseif now - last_decrease >= 1 then
    if got <= 0 then got = rate end
    rate = math.max(0.5, math.min(rate, got) * 0.9)
    last_decrease = now
  end
  save()
  return {0, '0', fmt(now), seq, fmt(rate)}
elseif op == 'start' then
  if rate <= 0 then
    -- the rate sent so far, at most one bucket (ARGV[5], X-RateLimit-Limit) a second: budget.start_pace
    local got = achieved_now()
    local cap = tonumber(ARGV[5]) or 0
    if cap > 0 and (got <= 0 or got > cap) then got = cap end
    rate = math.max(1, got)
  end
  save()
  return {0, '0', fmt(now), seq, fmt(rate)}
end

-- acquire
if now < paused then
  save()
  return {0, fmt(paused - now), fmt(now), seq, fmt(rate)}
end
if rate > 0 and now >= hold_until and now - fit_at > 3 then
  rate = rate + rate * 0.05 * math.min(1, math.max(0, now - grown))
end
grown = now
if rate > 0 then
  local burst = math.max(1, rate / 4)
  tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
  updated = math.max(updated, now)
  if tokens < 1 then
    save()
    return {0, fmt((1 - tokens) / rate), fmt(now), seq, fmt(rate)}
  end
  tokens = tokens - 1
else
  tokens = 0  -- unpaced: the server's bucket is being spent; pacing, once it starts, starts empty
  updated = now
end
seq = seq + 1
win_count = win_count + 1
save()
return {1, '0', fmt(now), seq, fmt(rate)}
"""


@dataclass(frozen=True)
class SharedTicket(Ticket):
    """A send the shared bucket granted: `at` on Redis's clock, `seq` counted over every process."""


def site_key(site_url: str, credential: str) -> str:
    """The state key of a site and credential: the host (readable in `redis-cli`) and a hash of both."""
    host = urlsplit(site_url).netloc or site_url
    digest = hashlib.sha256(f"{site_url.rstrip('/')}\0{credential}".encode()).hexdigest()[:16]
    return f"{PREFIX}{{{host}:{digest}}}"


class SharedRateBudget:
    """`RateBudget` whose bucket, pace and pause live in Redis; falls back to a local budget without it."""

    WINDOW = LocalRateBudget.WINDOW
    SAMPLE = LocalRateBudget.SAMPLE
    RESERVE = LocalRateBudget.RESERVE
    DRAIN = LocalRateBudget.DRAIN

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        *,
        ttl: float = 3600.0,
        retry_every: float = 30.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        local: LocalRateBudget | None = None,
    ) -> None:
        self.redis = client
        self.key = key
        self.pause_key = key + ":paused"
        self.ttl_ms = int(ttl * 1000)
        self.retry_every = retry_every
        self.clock = clock  # tests only: a fake "now" handed to the script instead of Redis TIME
        self.sleep = sleep
        self.monotonic = monotonic
        self.local = local or LocalRateBudget()
        self.script = client.register_script(SCRIPT)
        self.lock = threading.Lock()
        self.gate = threading.Lock()
        self.supply: collections.deque[tuple[float, int]] = collections.deque()
        self.fitted: float | None = None
        self.proposal: tuple[float, float] | None = None  # (pace, Redis time of the ticket it is from)
        self.start_pacing = False
        self.rate = 0.0  # the site-wide pace the script last answered with
        self.last_seq = 0  # the site-wide count of grants the script last answered with
        self.down_since: float | None = None  # monotonic time Redis stopped answering (None: shared)

    # --- RateBudget ---------------------------------------------------------------------------------

    def acquire(self) -> Ticket:
        # One thread of this process asks Redis at a time, the others queue here: a token coming due wakes
        # one caller per process, not every waiting thread (a few script calls per request, not dozens).
        with self.gate:
            while True:
                reply = self._run("acquire")
                if reply is None:
                    break
                granted, wait, now, seq = reply
                if granted:
                    return SharedTicket(now, seq)
                self.sleep(min(max(wait, 0.001), 1.0))
        return self.local.acquire()

    def try_acquire(self) -> tuple[Ticket | None, float]:
        """One grant attempt without waiting: the ticket, or None and the seconds to wait (tests, tools)."""
        reply = self._run("acquire")
        if reply is None:
            return self.local._try_acquire()
        granted, wait, now, seq = reply
        return (SharedTicket(now, seq), 0.0) if granted else (None, wait)

    def throttled(self, retry_after: float | None) -> None:
        if self._run("throttled", value=retry_after or 0.0) is None:
            self.local.throttled(retry_after)

    def observe(
        self, ticket: Ticket, remaining: int | None, near_limit: bool, limit: int | None = None
    ) -> None:
        if not isinstance(ticket, SharedTicket):
            self.local.observe(ticket, remaining, near_limit, limit)  # granted while Redis was away
            return
        if remaining is not None and limit:
            with self.lock:
                if not self.supply or ticket.at - self.supply[-1][0] >= self.SAMPLE:
                    self.supply.append((ticket.at, remaining + ticket.seq))
                    while self.supply and self.supply[0][0] < ticket.at - self.WINDOW:
                        self.supply.popleft()
                    self.fitted = fit_refill_rate(self.supply)
                if self.fitted is not None:
                    surplus = (remaining - limit * self.RESERVE) / self.DRAIN
                    pace = max(0.5, self.fitted + surplus)
                    if self.proposal is None or ticket.at >= self.proposal[1]:
                        self.proposal = (pace, ticket.at)  # sent with the next grant: no extra round trip
                elif not self.rate and remaining - (self.last_seq - ticket.seq) <= limit * 0.5:
                    # Unpaced: what Jira's bucket held, less the sends granted since (in flight, or
                    # already counted by Jira): pace before every thread's next request hits the wall.
                    self.start_pacing = True
            if self.start_pacing:
                self._run("start", value=float(limit))
        elif near_limit or (remaining is not None and remaining <= 1):
            self._run("near")

    # --- Redis --------------------------------------------------------------------------------------

    def _run(self, op: str, value: float = 0.0) -> tuple[bool, float, float, int] | None:
        """Run the script; None when Redis does not answer (then this process paces on its own)."""
        if self.down_since is not None and self.monotonic() - self.down_since < self.retry_every:
            return None
        with self.lock:
            proposal, self.proposal = self.proposal, None
            if op == "start":
                self.start_pacing = False
            fitted = self.fitted or 0.0
        pace, at = proposal or (0.0, 0.0)
        now = "" if self.clock is None else repr(float(self.clock()))
        try:
            granted, wait, now_s, seq, rate = self.script(
                keys=[self.key, self.pause_key],
                args=[op, self.ttl_ms, repr(pace), repr(at), repr(float(value)), repr(fitted), now],
            )
        except redis.RedisError as e:
            self._lost(e)
            return None
        if self.down_since is not None:
            self.down_since = None
            log.info("rate budget: Redis answers again; pacing with every process of the site")
        self.rate = float(rate)
        self.last_seq = max(self.last_seq, int(seq))
        return bool(int(granted)), float(wait), float(now_s), int(seq)

    def _lost(self, error: Exception) -> None:
        with self.lock:
            first = self.down_since is None
            self.down_since = self.monotonic()
            if first and self.rate and not self.local.rate:
                self.local.rate = self.rate  # start from the site's last pace; its own fit takes over
        if first:
            log.warning(
                "rate budget: Redis does not answer (%s); this process paces on its own until it does",
                error,
                extra={"budget_key": self.key},
            )


_clients: dict[str, redis.Redis] = {}
_budgets: dict[tuple[str, str], SharedRateBudget] = {}
_registry_lock = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child (a prefork worker) starts with budgets of its own: the parent's locks may be held."""
    global _registry_lock
    _registry_lock = threading.Lock()
    _budgets.clear()
    _clients.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def redis_client(url: str) -> redis.Redis:
    """A Redis client that fails fast (1 s, one retry): a budget must not hold up a backup."""
    return redis.Redis.from_url(
        url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


def shared_budget(url: str, site_url: str, credential: str) -> SharedRateBudget:
    """The process's one shared budget for this Redis, site and credential (its clients all use it)."""
    key = site_key(site_url, credential)
    with _registry_lock:
        budget = _budgets.get((url, key))
        if budget is None:
            client = _clients.get(url)
            if client is None:
                client = _clients[url] = redis_client(url)
            budget = _budgets[(url, key)] = SharedRateBudget(client, key)
        return budget
