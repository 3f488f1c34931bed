"""Flower as deploy/docker-compose.yml runs it (its command, basic auth from FLOWER_BASIC_AUTH) watches real
workers: it lists them by name, shows a run's tasks with their states, and refuses a request without the
sign-in. docs/operations.md ("Flower") says what it is for."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import requests
import yaml

from tests.conftest import ROOT, free_port, start_sandbox
from tests.workers.conftest import REDIS_URL, wait_for
from tests.workers.test_workers import finished

pytestmark = [pytest.mark.celery]
AUTH = ("admin", "flower-test")


def flower_command(port: int) -> list[str]:
    """The compose file's Flower command, on this machine's Redis and a free local port."""
    svc = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())["services"]["flower"]
    argv = list(svc["command"])
    assert argv[0] == "celery" and "flower" in argv, argv
    argv = [sys.executable, "-m", "celery", *argv[1:]]
    argv = [f"--broker={REDIS_URL}" if a.startswith("--broker=") else a for a in argv]
    argv = [f"--port={port}" if a.startswith("--port=") else a for a in argv]
    return [*argv, "--address=127.0.0.1"]


def test_flower_from_the_compose_file_lists_the_workers_and_a_runs_tasks(cluster_factory, tmp_path):
    with start_sandbox(projects=2, issues_per_project=8, seed=21, attachment_share=0.0) as site:
        c = cluster_factory(site.url, "redis")
        port = free_port()
        flower = subprocess.Popen(
            flower_command(port),
            cwd=ROOT,
            env={**os.environ, "FLOWER_BASIC_AUTH": ":".join(AUTH)},
            stdout=(tmp_path / "flower.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"

            def get(path: str, auth=AUTH):
                try:
                    return requests.get(url + path, auth=auth, timeout=10)
                except requests.RequestException:
                    return None

            wait_for(lambda: get("/healthcheck"), 60, "Flower's start")
            (worker,) = c.start_workers(1)
            # Other tests' workers share this Redis: Flower lists them too, so look for this one by name
            name = f"keepstone@{socket.gethostname()}-{worker.proc.pid}"
            wait_for(
                lambda: (
                    (r := get("/api/workers?refresh=1")) is not None
                    and r.status_code == 200
                    and name in r.json()
                ),
                60,
                "the worker in Flower",
            )
            assert get("/api/workers", auth=None).status_code == 401
            assert get("/api/workers", auth=("admin", "wrong")).status_code == 401

            # Flower turns the workers' task events on (docs/operations.md): tasks before that go unseen
            err = worker.log.with_suffix(".err")
            wait_for(lambda: "Events of group {task} enabled" in err.read_text(), 30, "task events on")

            run_id = c.start_run()
            assert finished(c, run_id)["state"] == "succeeded"

            def project_tasks():
                r = get(f"/api/tasks?workername={name}&taskname=keepstone.run.project")
                tasks = [t for t in r.json().values() if t["worker"] == name] if r else []
                return len(tasks) == 2 and all(t["state"] == "SUCCESS" for t in tasks) and tasks

            tasks = wait_for(project_tasks, 30, "the run's project tasks in Flower")
            # Task arguments are run ids and project keys, never credentials (docs/operations.md)
            assert all("token" not in (t.get("args") or "") + (t.get("kwargs") or "") for t in tasks)
        finally:
            flower.terminate()
            flower.wait(10)
