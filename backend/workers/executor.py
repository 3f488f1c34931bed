"""The executor the web process uses with KEEPSTONE_EXECUTOR=celery: it only sends messages."""

from __future__ import annotations

from typing import Any

from celery import Celery

from backend.workers.celery_app import make_celery, queue_name

# RunService methods the executor is handed, and the task that does the same on a worker.
TASKS = {"execute": "keepstone.run.start"}


class CeleryRunExecutor:
    """Send a run to the workers: `submit(service.execute, run_id)` becomes `keepstone.run.start`."""

    def __init__(self, broker_url: str | None = None, app: Celery | None = None) -> None:
        self.app = app or make_celery(broker_url)

    def submit(self, fn, *args: Any) -> Any:
        name = TASKS.get(getattr(fn, "__name__", ""))
        if name is None:
            raise ValueError(f"no worker task does {getattr(fn, '__name__', fn)!r}")
        return self.send(name, *args)

    def send(self, name: str, *args: Any) -> Any:
        return self.app.send_task(name, args=list(args), queue=queue_name())

    def ping(self) -> str:
        """Say "ok" when the broker accepts a connection, else why not (for /healthz)."""
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            return "ok"
        except Exception as e:
            return f"unavailable: {type(e).__name__}"

    def shutdown(self) -> None:
        self.app.close()
