"""The connector's one validation error: every refused token or request becomes a TokenError.

TokenError(status=401)  bad, expired, forged or foreign token ("message" says which check failed)
TokenError(status=403)  valid token that may not do this (context token on a page, tenant not installed)
"""

from __future__ import annotations


class TokenError(Exception):
    """A token or request failed verification: {message}."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
