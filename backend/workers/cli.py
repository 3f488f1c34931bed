"""The `keepstone worker` command: a Celery worker that runs project tasks (KEEPSTONE_EXECUTOR=celery)."""

from __future__ import annotations

import argparse
import os
import socket
import sys


def add_commands(sub) -> None:
    """Add `keepstone worker` to the `keepstone` parser."""
    p = sub.add_parser(
        "worker",
        help="run backup tasks from the broker (KEEPSTONE_BROKER_URL) for `keepstone backend`",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=int(os.environ.get("KEEPSTONE_WORKER_CONCURRENCY", "2")),
        help="project tasks at once (default 2; each runs a few Jira requests in parallel)",
    )
    p.add_argument(
        "--pool",
        choices=("threads", "prefork", "solo"),
        default=os.environ.get("KEEPSTONE_WORKER_POOL", "threads"),
        help="threads (default: one process, the work is I/O), prefork (a process per task) or solo",
    )
    p.add_argument("--name", default="", help="the worker's name (default keepstone@<host>-<pid>)")
    p.set_defaults(func=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    from backend.config import Config
    from backend.workers.celery_app import queue_name

    if args.concurrency < 1:
        print("keepstone worker: --concurrency must be 1 or more", file=sys.stderr)
        return 2
    config = Config()
    problem = schema_problem(config.database_url)
    if problem:
        print(f"keepstone worker: {problem}", file=sys.stderr)
        return 1
    if not os.environ.get("KEEPSTONE_RATE_BUDGET_URL"):
        print(
            "keepstone worker: KEEPSTONE_RATE_BUDGET_URL is not set: each worker paces Jira alone "
            "(set it to the Redis URL so every worker shares each site's rate limit)",
            file=sys.stderr,
        )
    os.environ.setdefault("KEEPSTONE_BROKER_URL", config.broker_url)
    from backend.workers.tasks import app

    name = args.name or f"keepstone@{socket.gethostname()}-{os.getpid()}"
    print(f"Keepstone worker {name}: queue {queue_name()}, {args.concurrency} x {args.pool}", flush=True)
    app.worker_main(
        [
            "worker",
            f"--concurrency={args.concurrency}",
            f"--pool={args.pool}",
            f"--hostname={name}",
            f"--queues={queue_name()}",
            "--loglevel=INFO",
            "--without-mingle",  # nothing to sync at start-up: the database holds all state
            "--without-gossip",
        ]
    )
    return 0


def schema_problem(url: str) -> str:
    """Why this database cannot serve a worker yet ("" when it can): the backend migrates, not workers."""
    from alembic.config import Config as AlembicConfig
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import SQLAlchemyError

    from backend.db import MIGRATIONS, make_engine

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as e:
        return f"the database does not answer: {type(getattr(e, 'orig', None) or e).__name__}"
    finally:
        engine.dispose()
    if current != head:
        return (
            f"the database is at migration {current or 'none'}, not {head}: start `keepstone backend` "
            "once (it migrates), then the workers"
        )
    return ""
