"""Retry delays with jitter, from a random generator of Keepstone's own: threads that back off leave the
global `random` state alone (a seeded program's, or a Hypothesis test's, sequence is not shifted by a
retry in a background thread)."""

from __future__ import annotations

import random

_RNG = random.Random()


def full_jitter(attempt: int, base: float, cap: float) -> float:
    """Seconds before try `attempt + 1`: uniform in [0, min(cap, base * 2**(attempt - 1))] ("full jitter")."""
    return _RNG.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def spread(delay: float, share: float = 0.15) -> float:
    """`delay` shortened by up to `share` at random, so that many retries due together spread out."""
    return delay * _RNG.uniform(1 - share, 1.0)
