"""Webhook signatures: HMAC-SHA256 with the channel's secret over "<timestamp>.<raw body>".

The timestamp is signed with the body, so a receiver that refuses old timestamps (five minutes) refuses a
replayed request; the idempotency key drops a repeat within that window.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE = "X-Keepstone-Signature"  # sha256=<hex>
TIMESTAMP = "X-Keepstone-Timestamp"  # seconds since 1970 (UTC) when this try was sent
DELIVERY = "X-Keepstone-Delivery"  # the message's idempotency key, the same on every try
IDEMPOTENCY = "Idempotency-Key"  # the same key under the header name many receivers know
EVENT = "X-Keepstone-Event"
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for this body sent at this time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        timestamp = int(headers.get(TIMESTAMP, ""))
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), headers.get(SIGNATURE, ""))
