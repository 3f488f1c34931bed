"""Retry delays: within their bounds, and drawn without touching the global `random` state (a retry in a
background thread shifted it, which Hypothesis reported as random use inside a strategy)."""

from __future__ import annotations

import random

from keepstone.backoff import full_jitter, spread


def test_delays_stay_in_their_bounds_and_leave_the_global_random_state_alone():
    random.seed(7)
    before = random.getstate()
    firsts = [full_jitter(1, 0.5, 30) for _ in range(200)]
    capped = [full_jitter(12, 0.5, 30) for _ in range(200)]
    spreads = [spread(10.0) for _ in range(200)]
    assert random.getstate() == before
    assert all(0 <= d <= 0.5 for d in firsts) and max(firsts) > 0.25  # base * 2**0, jittered over all of it
    assert all(0 <= d <= 30 for d in capped) and max(capped) > 15  # 0.5 * 2**11 = 1024, capped at 30
    assert all(8.5 <= d <= 10.0 for d in spreads) and len(set(spreads)) > 100
