"""Notifications: email and webhook channels, their rules, and the outbox that delivers them.

- `rules.py`: which event a run's final state is, which channels a rule picks;
- `messages.py`: the message document (plan, state, reason, counts, link) and its renderings (email text,
  JSON, Slack, Teams);
- `signing.py`: the webhook signature (HMAC-SHA256 over timestamp and raw body) and its check;
- `channels.py`: the service's rules for a channel (recipients, webhook URLs it may contact, sealed secrets);
- `outbox.py`: enqueueing, in the caller's transaction (a run's final state, a test, the daily digest);
- `transports.py`: one try over SMTP or HTTP, answered as an Outcome (delivered, retry, or give up);
- `sender.py`: the background sender: claims due rows (safe with several processes), retries with bounded
  exponential backoff, marks a row delivered once.
Delivery is at least once: a try whose answer is lost is tried again with the same idempotency key.
Nothing here imports Flask views; the API and the UI call into it.
"""

from __future__ import annotations

from backend.notify.outbox import enqueue_run
from backend.notify.sender import Sender, init_app

__all__ = ["Sender", "enqueue_run", "init_app"]
