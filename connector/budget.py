"""A token bucket for calls to Atlassian's key servers, shared by every kid a caller can make up."""

from __future__ import annotations

import time


class FetchBudget:
    """A token bucket shared by every kid: at most `burst` fetches at once, `rate` more per second."""

    def __init__(self, burst: int, rate: float) -> None:
        self.burst, self.rate = max(1, burst), max(0.0, rate)
        self._tokens = float(self.burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        """Spend one fetch if the budget has one (call under the owner's lock)."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
