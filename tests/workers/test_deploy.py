"""The deploy files run as written (deploy/): the systemd units' commands and environments start a web process,
a scheduler and two workers on PostgreSQL and Redis; a plan made through the web process is fired by the
scheduler and backed up by the workers; /healthz and the compose file's worker health check answer.

What cannot run here is replaced at its edge only: /opt/keepstone/.venv/bin/keepstone by this venv's
`keepstone`, /var/lib/keepstone by a temporary folder, the ports by free ones, and the env file's
"change-me" and example.com values by this machine's services (the test fails when the env file gains a
value to set that it does not know). Docker and systemd themselves do not run here."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from keepstone.servers import stop_process_groups
from tests.backend.test_schedules import internal_plan_id, put_job
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT, free_port, start_sandbox
from tests.workers.conftest import REDIS_URL, SECRET, broker_url, postgres_url, wait_for

pytestmark = [pytest.mark.celery, pytest.mark.postgres]
DEPLOY = ROOT / "deploy"
TENANT = "77777777-2222-4333-8444-555555555555"
KEEPSTONE = "/opt/keepstone/.venv/bin/keepstone"
STATE = "/var/lib/keepstone"


def unit(name: str) -> dict[str, list[str]]:
    """The [Service] section of a systemd unit: each key with its values in order (keys may repeat)."""
    section, out = "", {}
    for raw in (DEPLOY / "systemd" / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def site_env(web_url: str, jwks_url: str, database_url: str, state: Path) -> dict[str, str]:
    """keepstone.env.example with this machine's values for every value it says to set."""
    example = env_file(DEPLOY / "keepstone.env.example")
    ours = {
        "KEEPSTONE_SECRET_KEY": SECRET,
        "KEEPSTONE_CONNECTOR_JWKS_URL": jwks_url,
        "KEEPSTONE_PUBLIC_URL": web_url,
        "KEEPSTONE_DATABASE_URL": database_url,
        "KEEPSTONE_BROKER_URL": REDIS_URL,
        "KEEPSTONE_RATE_BUDGET_URL": REDIS_URL,
        "KEEPSTONE_RATELIMIT_STORAGE_URL": REDIS_URL,
        "FLOWER_BASIC_AUTH": "admin:test",
    }
    to_set = {k for k, v in example.items() if "change-me" in v or "example.com" in v}
    assert to_set == set(ours), f"keepstone.env.example asks for {sorted(to_set)}"
    return {
        **example,
        **ours,
        "KEEPSTONE_QUEUE": f"keepstone-deploy-{uuid.uuid4().hex[:8]}",  # (tests share one Redis)
        "KEEPSTONE_SCHEDULER_SYNC_SECONDS": "1",  # (the scheduler looks at the job store every second)
        "KEEPSTONE_STATE": str(state),
    }


def service(name: str, env_values: dict[str, str], state: Path, instance: str = "", port: int = 0) -> dict:
    """argv, environment and folder of a unit, as systemd would start it (Environment= first, then the
    EnvironmentFile= over it, as systemd does)."""
    svc = unit(name)
    assert svc["EnvironmentFile"] == ["/etc/keepstone/keepstone.env"]
    assert svc["WorkingDirectory"] == [STATE] and STATE in svc["ReadWritePaths"][0]
    env = {}
    for line in svc.get("Environment", []):
        for item in shlex.split(line):
            key, _, value = item.partition("=")
            env[key] = value.replace(STATE, str(state))
    env.update({k: v for k, v in env_values.items() if k != "KEEPSTONE_STATE"})
    exec_start = svc["ExecStart"][0].replace("%i", instance).replace("%H", socket.gethostname())
    argv = shlex.split(exec_start)
    assert argv[0] == KEEPSTONE, argv
    argv = [sys.executable, "-m", "keepstone.cli", *argv[1:]]
    if "--port" in argv:
        argv[argv.index("--port") + 1] = str(port)
    return {"argv": argv, "env": {**os.environ, "PYTHONPATH": str(ROOT), **env}, "cwd": state}


def start(spec: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        spec["argv"],
        env=spec["env"],
        cwd=spec["cwd"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_the_systemd_units_run_web_scheduler_and_workers_that_back_a_scheduled_plan_up(tmp_path, issuer):
    broker_url("redis")  # skips without Redis
    site = start_sandbox(projects=3, issues_per_project=10, seed=12, attachment_share=0.0)
    database_url = postgres_url()
    state = tmp_path / "state"
    state.mkdir()
    web_port, scheduler_port = free_port(), free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    values = site_env(web_url, issuer.jwks_url, database_url, state)
    procs: list[subprocess.Popen] = []
    try:
        web = start(service("keepstone-web.service", values, state, port=web_port), tmp_path / "web.log")
        procs.append(web)
        health = wait_for(lambda: _get(web_url + "/healthz"), 60, "the web process's /healthz")
        assert (health.status_code, health.json()) == (
            200,
            {"status": "ok", "database": "ok", "broker": "ok"},
        )

        def call(method: str, path: str, **kw) -> requests.Response:
            return requests.request(method, web_url + path, headers=issuer.headers(TENANT), timeout=30, **kw)

        r = call(
            "PUT",
            f"/api/v1/organisations/{TENANT}",
            json={"site_url": site.url, "display_name": "Acme"},
        )
        assert r.status_code == 201, r.text
        r = call(
            "PUT",
            f"/api/v1/organisations/{TENANT}/account",
            json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
        )
        assert r.status_code == 200, r.text
        every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        r = call(
            "POST",
            f"/api/v1/organisations/{TENANT}/plans",
            json={
                "name": "nightly",
                "schedule": {"days": every_day, "hour": 2},
                "spec": {"projects": {"mode": "all"}},
            },
        )
        assert r.status_code == 201, r.text
        plan = r.json()
        pk = internal_plan_id(database_url, plan["id"])

        names = [f"keepstone-{i}@{socket.gethostname()}" for i in (1, 2)]
        workers = [service("keepstone-worker@.service", values, state, instance=str(i)) for i in (1, 2)]
        for i, spec in enumerate(workers):
            assert spec["argv"][spec["argv"].index("--name") + 1] == names[i]
            procs.append(start(spec, tmp_path / f"worker{i + 1}.log"))
        # The compose file's worker health check, by each worker's name from its unit
        check = compose()["services"]["worker"]["healthcheck"]["test"]
        assert check[0] == "CMD-SHELL" and "inspect ping" in check[1], check
        for name in names:
            ping = (
                check[1]
                .replace("celery", f"{sys.executable} -m celery", 1)
                .replace("keepstone@$$HOSTNAME", name)
            )
            wait_for(
                lambda cmd=ping: (
                    subprocess.run(
                        cmd, shell=True, cwd=ROOT, env=workers[0]["env"], capture_output=True, timeout=30
                    ).returncode
                    == 0
                ),
                90,
                f"celery inspect ping of {name}",
                every=1,
            )

        # The scheduler finds the plan that the web process wrote (the web runs no scheduler, so the plan
        # has no job yet); then the slot is brought forward to a few seconds from now, as if 02:00 had come.
        spec = service("keepstone-scheduler.service", values, state, port=scheduler_port)
        procs.append(start(spec, tmp_path / "scheduler.log"))
        wait_for(lambda: _job_exists(database_url, pk), 60, "the scheduler's job of the plan")
        put_job(database_url, pk, _soon())
        runs = wait_for(lambda: _runs(call, plan["id"]), 90, "the scheduled run")
        assert len(runs) == 1 and runs[0]["trigger"] == "schedule", runs
        done = wait_for(
            lambda: (
                (r := call("GET", f"/api/v1/runs/{runs[0]['id']}").json())["state"]
                not in ("queued", "running")
                and r
            ),
            120,
            "the run's end",
        )
        logs = [line["message"] for line in call("GET", f"/api/v1/runs/{runs[0]['id']}/logs").json()["items"]]
        assert done["state"] == "succeeded", (done["state"], done["error"], logs)
        assert [p["status"] for p in done["projects"]] == ["ok"] * 3, done["projects"]
        # Local-folder repositories live under the units' state folder (ReadWritePaths), nowhere else
        assert any((state / "repositories").rglob("*")), "no repository under the state folder"
        assert not (ROOT / "var" / "backend" / "repositories" / TENANT).exists()
    finally:
        stop_process_groups(procs)
        site.stop()


def _get(url: str):
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:
        return None


def _soon():
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(seconds=3)


def _job_exists(database_url: str, plan_pk: int) -> bool:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            if not inspect(conn).has_table("apscheduler_jobs"):  # (the scheduler makes it at its start)
                return False
            return bool(
                conn.execute(
                    text("SELECT 1 FROM apscheduler_jobs WHERE id = :id"), {"id": f"plan-{plan_pk}"}
                ).first()
            )
    finally:
        engine.dispose()


def _runs(call, plan_id: str) -> list[dict]:
    r = call("GET", f"/api/v1/organisations/{TENANT}/runs")
    return [run for run in r.json()["items"] if run.get("plan_id") == plan_id]


def test_the_compose_files_commands_are_keepstones_and_its_processes_share_one_environment():
    """Every Keepstone service's command parses with `keepstone`'s own parser, and the web process runs no
    scheduler while the scheduler does, all on the same database, broker and budget."""
    from keepstone.cli import build_parser

    services = compose()["services"]
    parser = build_parser()
    ours = {name: svc for name, svc in services.items() if svc.get("image") == "keepstone"}
    assert set(ours) == {"web", "scheduler", "worker"}
    envs = {}
    for name, svc in ours.items():
        args = parser.parse_args(svc["command"])
        assert args.func is not None
        envs[name] = svc["environment"]
    shared = (
        "KEEPSTONE_DATABASE_URL",
        "KEEPSTONE_BROKER_URL",
        "KEEPSTONE_RATE_BUDGET_URL",
        "KEEPSTONE_EXECUTOR",
    )
    for key in shared:
        assert len({envs[name].get(key) for name in ours}) == 1, key
    assert envs["web"]["KEEPSTONE_SCHEDULER"] == "off"
    assert envs["scheduler"].get("KEEPSTONE_SCHEDULER", "on") != "off"
    assert envs["worker"]["KEEPSTONE_EXECUTOR"] == "celery"
