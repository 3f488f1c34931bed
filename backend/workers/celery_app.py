"""The Celery app of Keepstone's workers, configured from the environment for at-least-once delivery.

- KEEPSTONE_BROKER_URL: `redis://host:6379/0` or `amqp://user:pass@host:5672//` (default: local Redis).
- KEEPSTONE_QUEUE: the queue the web process sends to and workers consume (default `keepstone`).
- KEEPSTONE_VISIBILITY_TIMEOUT: seconds (Redis broker) before a message a worker took but never
  acknowledged is given to another worker; it must exceed the longest project task (default 6 hours).
  A task running longer is redelivered while it runs: its lease (backend/workers/lease.py) keeps the
  second delivery waiting, so nothing is done twice, but set it above your largest project anyway.
  On RabbitMQ a dead worker's connection closes and its messages return at once; RabbitMQ's own
  `consumer_timeout` (30 minutes by default) must exceed the longest project task too.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
DEFAULT_VISIBILITY_TIMEOUT = 6 * 3600


def queue_name() -> str:
    return os.environ.get("KEEPSTONE_QUEUE", "keepstone")


def visibility_timeout() -> int:
    return int(os.environ.get("KEEPSTONE_VISIBILITY_TIMEOUT", str(DEFAULT_VISIBILITY_TIMEOUT)))


def settings(broker_url: str) -> dict[str, Any]:
    """Celery settings: late acks, requeue when the worker dies, one message prefetched a process."""
    conf: dict[str, Any] = {
        "broker_url": broker_url,
        "task_acks_late": True,  # acknowledged after the task returns: a crash means redelivery
        "task_reject_on_worker_lost": True,  # a pool process killed mid-task: back to the queue
        "task_acks_on_failure_or_timeout": True,  # our tasks record their own failures in the database
        "worker_prefetch_multiplier": 1,  # a worker holds no message it is not working on
        "worker_cancel_long_running_tasks_on_connection_loss": True,  # they are redelivered anyway
        "broker_connection_retry_on_startup": True,
        "task_default_queue": queue_name(),
        "task_ignore_result": True,  # results live in the database
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,  # keepstone.logs formats every line
        "worker_redirect_stdouts": False,
    }
    if broker_url.startswith(("redis://", "rediss://")):
        vis = visibility_timeout()
        conf["broker_transport_options"] = {
            "visibility_timeout": vis,
            # how often a worker looks for messages whose visibility timed out (default: every ~100 s)
            "unacked_restore_interval": max(1, min(10, vis // 10)),
            "unacked_restore_throttle": 1,
        }
    return conf


def make_celery(broker_url: str | None = None) -> Celery:
    """A Celery app that knows Keepstone's tasks (backend.workers.tasks)."""
    url = broker_url or os.environ.get("KEEPSTONE_BROKER_URL") or DEFAULT_BROKER
    app = Celery("keepstone", include=["backend.workers.tasks"])
    app.conf.update(settings(url))
    return app
