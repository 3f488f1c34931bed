"""Worker fixtures: PostgreSQL, a real broker (Redis or RabbitMQ), the backend sending to it, and real
`keepstone worker` processes (each in a session of its own, so SIGKILL takes the whole worker)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis

from backend.db import Database
from backend.db.models import WorkItem
from tests.backend.conftest import PG_ADMIN, Backend, make_backend, stop_backend
from tests.backend.conftest import issuer as issuer  # the fixture, for these tests too
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT

TENANT = "99999999-2222-4333-8444-555555555555"
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
SECRET = "test-secret-key-" + "x" * 32


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def broker_url(kind: str) -> str:
    if kind == "redis":
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        except redis.RedisError as e:
            pytest.skip(f"Redis is not reachable on 127.0.0.1:6379: {e}")
        return REDIS_URL
    if not _reachable(5672):
        pytest.skip("RabbitMQ is not reachable on 127.0.0.1:5672")
    return AMQP_URL


def postgres_url() -> str:
    name = f"keepstone_workers_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as e:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432: {e}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path

    def ready(self) -> bool:
        return self.log.exists() and " ready." in self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and every process of its session (as a machine that died)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


@dataclass
class Cluster:
    """The backend (in this process, executor celery) and the workers it sends to."""

    backend: Backend
    env: dict[str, str]
    tmp: Path
    workers: list[Worker] = field(default_factory=list)

    @property
    def db(self) -> Database:
        return self.backend.app.extensions["keepstone"].db

    def start_workers(self, n: int, concurrency: int = 1, pool: str = "threads") -> list[Worker]:
        started = []
        for _ in range(n):
            i = len(self.workers)
            log = self.tmp / f"worker{i}.jsonl"
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "keepstone.cli",
                    "worker",
                    f"--concurrency={concurrency}",
                    f"--pool={pool}",
                ],
                cwd=ROOT,
                env={**self.env, "KEEPSTONE_LOG_FILE": str(log)},
                stdout=subprocess.DEVNULL,
                stderr=(self.tmp / f"worker{i}.err").open("w"),
                start_new_session=True,
            )
            w = Worker(proc, log)
            self.workers.append(w)
            started.append(w)
        deadline = time.monotonic() + 60
        while not all(w.ready() for w in started):
            for w in started:
                if w.proc.poll() is not None:
                    raise AssertionError(f"a worker exited: {w.log.with_suffix('.err').read_text()}")
            assert time.monotonic() < deadline, "the workers did not get ready"
            time.sleep(0.1)
        return started

    def start_run(self) -> int:
        r = self.backend.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={})
        assert r.status_code == 202, r.text
        return r.json()["id"]

    def run(self, run_id: int) -> dict:
        return self.backend.call("GET", f"/api/v1/runs/{run_id}", TENANT).json()

    def logs(self, run_id: int) -> list[str]:
        got = self.backend.call("GET", f"/api/v1/runs/{run_id}/logs", TENANT, params={"limit": 1000})
        return [line["message"] for line in got.json()["items"]]

    def items(self) -> list[WorkItem]:
        with self.db.session() as s:
            return list(s.query(WorkItem).order_by(WorkItem.project))

    def stop(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.kill()


def make_cluster(tmp_path: Path, issuer, site_url: str, broker: str, **env: str) -> Cluster:
    queue = f"keepstone-test-{uuid.uuid4().hex[:10]}"
    os.environ["KEEPSTONE_QUEUE"] = queue  # (this process sends to it; restored by the fixture)
    pg = postgres_url()
    backend = make_backend(tmp_path, issuer, pg, executor="celery", broker_url=broker)
    backend.install(TENANT, site_url)
    r = backend.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
    )
    assert r.status_code == 200, r.text
    worker_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KEEPSTONE_DATABASE_URL": pg,
        "KEEPSTONE_SECRET_KEY": SECRET,
        "KEEPSTONE_DATA_DIR": str(tmp_path / "data"),
        "KEEPSTONE_BROKER_URL": broker,
        "KEEPSTONE_QUEUE": queue,
        "KEEPSTONE_RATE_BUDGET_URL": REDIS_URL,
        "KEEPSTONE_EXECUTOR": "celery",
        "KEEPSTONE_LOG_LEVEL": "info",
        **env,
    }
    return Cluster(backend, worker_env, tmp_path)


@pytest.fixture
def cluster_factory(tmp_path, issuer) -> Iterator:
    made: list[Cluster] = []
    before = os.environ.get("KEEPSTONE_QUEUE")

    def make(site_url: str, broker: str = "redis", **env: str) -> Cluster:
        c = make_cluster(tmp_path, issuer, site_url, broker_url(broker), **env)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()
        stop_backend(c.backend)
    if before is None:
        os.environ.pop("KEEPSTONE_QUEUE", None)
    else:
        os.environ["KEEPSTONE_QUEUE"] = before


def wait_for(predicate, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
