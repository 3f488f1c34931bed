"""Runs on Celery workers (`KEEPSTONE_EXECUTOR=celery`): each project task of a run is a message.

A run is three kinds of task, each delivered at least once (late acks, a visibility timeout above the
longest project task, prefetch 1) and each idempotent, so a redelivery after a worker died changes
nothing that was already done:

- `keepstone.run.start(run_id)`: select the projects, read the site-wide objects once, write one
  `work_items` row per project (and the run's `work_runs` row) in one transaction, send one project task
  per item not done;
- `keepstone.run.project(run_id, key)`: take the item's lease (`lease.py`), back the project up under it
  (a heartbeat renews the lease and carries a cancel from the database), set the commit marker, record
  the result; the task that finds every item done sends
- `keepstone.run.finish(run_id)`: rotation, replication and the run's final state, once.

Modules: `celery_app.py` (the Celery app and its delivery settings), `executor.py` (what the web process
uses to send), `lease.py` (claim, heartbeat, commit marker), `steps.py` (the three steps), `tasks.py`
(the Celery tasks around them), `cli.py` (`keepstone worker`).
"""
