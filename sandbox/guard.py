"""What stands in front of every API call: auth, latency, rate limits, quotas, injected faults, statistics."""

from __future__ import annotations

import base64
import math
import random
import re
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

from sandbox.v2 import refuse_v3_on_datacenter
from sandbox.web import JiraHTTPError, state

API_PREFIXES = ("/rest/",)
ANONYMOUS = {"/rest/api/3/serverInfo", "/rest/api/2/serverInfo"}


class RateLimiter:
    """A token bucket per credential plus an optional hourly points quota, answering like Jira's limits."""

    def __init__(self, rate: float, burst: int, hourly_points: int) -> None:
        self.rate = rate
        self.burst = burst or max(1, math.ceil(rate))
        self.hourly_points = hourly_points
        self.lock = threading.Lock()
        self.buckets: dict[str, tuple[float, float]] = {}
        self.quota: dict[str, tuple[int, int]] = {}

    def check(self, who: str, cost: int) -> dict[str, str] | None:
        """Take one request from `who`'s budget; return 429 headers when it is spent, else None."""
        now = time.monotonic()
        with self.lock:
            if self.hourly_points:
                hour = int(time.time() // 3600)
                used_hour, used = self.quota.get(who, (hour, 0))
                used = used if used_hour == hour else 0
                if used + cost > self.hourly_points:
                    reset = (hour + 1) * 3600
                    return self._headers(
                        int(reset - time.time()) + 1, 0, "jira-quota-tenant-based", reset, self.hourly_points
                    )
                self.quota[who] = (hour, used + cost)
            if not self.rate:
                return None
            tokens, last = self.buckets.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self.buckets[who] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                return self._headers(
                    max(1, math.ceil(wait)), 0, "jira-burst-based", time.time() + wait, self.burst
                )
            self.buckets[who] = (tokens - 1.0, now)
            g.rate_remaining = int(tokens - 1.0)
            return None

    @staticmethod
    def _headers(
        retry_after: int, remaining: int, reason: str, reset_epoch: float, limit: int
    ) -> dict[str, str]:
        return {
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": datetime.fromtimestamp(reset_epoch, UTC).strftime("%Y-%m-%dT%H:%MZ"),
            "RateLimit-Reason": reason,
        }


class Faults:
    """Injected failures: the next N calls matching a path pattern fail, plus a random transient rate."""

    def __init__(self, fault_rate: float, seed: int) -> None:
        self.fault_rate = fault_rate
        self.random = random.Random(seed)
        self.rules: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def add(self, path: str, status: int, count: int, retry_after: int | None, method: str | None) -> None:
        with self.lock:
            self.rules.append(
                {
                    "path": re.compile(path),
                    "status": status,
                    "count": count,
                    "retry_after": retry_after,
                    "method": method,
                }
            )

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def pick(self, method: str, path: str) -> JiraHTTPError | None:
        with self.lock:
            for rule in self.rules:
                if rule["count"] > 0 and rule["path"].search(path) and rule["method"] in (None, method):
                    rule["count"] -= 1
                    headers = (
                        {"Retry-After": str(rule["retry_after"])} if rule["retry_after"] is not None else {}
                    )
                    return JiraHTTPError(rule["status"], "Injected fault.", headers=headers)
            if self.fault_rate and self.random.random() < self.fault_rate:
                status = self.random.choice([500, 502, 503, 503])
                headers = {"Retry-After": "1"} if status == 503 and self.random.random() < 0.5 else {}
                return JiraHTTPError(
                    status, "Internal server error (simulated transient fault).", headers=headers
                )
        return None


class Stats:
    """Requests, statuses, 429s and bytes per endpoint (method + route)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.endpoints: dict[str, dict[str, Any]] = defaultdict(
                lambda: {"requests": 0, "status": defaultdict(int), "rate_limited": 0, "bytes": 0}
            )
            self.started = time.time()

    def record(self, endpoint: str, status: int, size: int) -> None:
        with self.lock:
            e = self.endpoints[endpoint]
            e["requests"] += 1
            e["status"][str(status)] += 1
            e["bytes"] += size
            if status == 429:
                e["rate_limited"] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            endpoints = {k: {**v, "status": dict(v["status"])} for k, v in self.endpoints.items()}
        totals = {
            "requests": sum(e["requests"] for e in endpoints.values()),
            "rate_limited": sum(e["rate_limited"] for e in endpoints.values()),
            "bytes": sum(e["bytes"] for e in endpoints.values()),
            "errors": sum(n for e in endpoints.values() for s, n in e["status"].items() if s >= "500"),
            "seconds": time.time() - self.started,
        }
        return {"endpoints": endpoints, "totals": totals}


def _authenticate() -> None:
    s = state()
    header = request.headers.get("Authorization", "")
    user = None
    if header.startswith("Basic "):
        try:
            email, _, token = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            email, token = "", ""
        user = next(
            (u for u in s.site.users.values() if u.token and u.email == email and u.token == token), None
        )
    elif header.startswith("Bearer ") and s.config.flavor == "datacenter":
        token = header[7:]
        user = next((u for u in s.site.users.values() if u.token and u.token == token), None)
    if user is None:
        raise JiraHTTPError(
            401,
            "Client must be authenticated to access this resource.",
            headers={"WWW-Authenticate": 'Basic realm="protected-area"'},
        )
    g.user = user


def install(app: Flask) -> None:
    """Put the guard in front of the app's API routes."""

    @app.before_request
    def guard() -> Response | None:
        g.started = time.monotonic()
        if not request.path.startswith(API_PREFIXES):
            return None
        s = state()
        if s.config.latency_ms:
            time.sleep(s.config.latency_ms / 1000)
        try:
            refuse_v3_on_datacenter()
            if request.path in ANONYMOUS:
                g.user = None
                return None
            _authenticate()
            cost = 1 if request.method == "GET" else 2
            headers = s.limiter.check(g.user.account_id, cost)
            if headers is not None:
                raise JiraHTTPError(429, "Rate limit exceeded.", headers=headers)
            fault = s.faults.pick(request.method, request.path)
            if fault is not None:
                raise fault
        except JiraHTTPError as e:
            return e.response()
        return None

    @app.after_request
    def account(response: Response) -> Response:
        if request.path.startswith(("/rest/", "/_media/")):
            rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
            size = response.content_length or 0
            state().stats.record(f"{request.method} {rule}", response.status_code, size)
            remaining = g.get("rate_remaining")
            if remaining is not None:
                limiter = state().limiter
                response.headers["X-RateLimit-Limit"] = str(limiter.burst)
                response.headers["X-RateLimit-Remaining"] = str(remaining)
                if remaining < max(1, limiter.burst // 5):
                    response.headers["X-RateLimit-NearLimit"] = "true"
        return response
