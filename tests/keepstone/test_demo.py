"""`keepstone run` as a new user meets it: a short banner, no log noise, ready to back up, Ctrl-C stops it."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from keepstone.demo import free_port


def start(tmp_path: Path, *ports: int) -> subprocess.Popen:
    sandbox, backend, connector = ports
    return subprocess.Popen(
        [sys.executable, "-m", "keepstone.cli", "run", "--var", str(tmp_path / "var"),
         "--sandbox-port", str(sandbox), "--backend-port", str(backend), "--connector-port", str(connector)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def banner(proc: subprocess.Popen, timeout: float = 90) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "Ctrl-C" in line:
            return lines
    raise AssertionError(f"no banner: {lines} {proc.stderr.read() if proc.poll() is not None else ''}")


def test_run_prints_a_short_banner_is_ready_to_back_up_and_stops_on_ctrl_c(tmp_path):
    ports = (free_port(), free_port(), free_port())
    proc = start(tmp_path, *ports)
    try:
        lines = banner(proc)
        assert len(lines) <= 10, lines
        assert not any(line.lstrip().startswith("{") for line in lines)  # no JSON log on the terminal
        text = "\n".join(lines)
        # Forge first (the Custom UI `make install` built), Connect named as the other way in.
        forge = re.search(r"Apps page:\s+(https?://\S+/jira/settings/apps/\S+)\s+\(the Forge app\)", text)
        connect = re.search(r"on Connect:\s+(https?://\S+/plugins/servlet/\S+)", text)
        assert forge and connect, lines
        assert text.index(forge.group(1)) < text.index(connect.group(1))
        for page in (forge.group(1), connect.group(1)):
            assert requests.get(page, timeout=10).status_code == 200
        assert "sandbox-admin-token" in "\n".join(lines)
        # Ready on the first click: the tenant has its Jira credentials, so a run gets past them.
        backend = f"http://127.0.0.1:{ports[1]}"
        assert requests.get(backend + "/login", timeout=10).status_code == 200
        log = tmp_path / "var" / "log" / "keepstone.jsonl"
        assert log.exists()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert not any(line.lstrip().startswith("{") for line in err.splitlines()), err[:500]
        records = [json.loads(line) for line in log.read_text().splitlines()]
        assert all({"ts", "level", "msg"} <= set(r) for r in records)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_demo_tenant_has_its_token_so_backup_now_runs(tmp_path):
    from keepstone.demo import start_stack, stop_stack

    stack = start_stack(tmp_path / "var", preset_account=True)
    try:
        state = stack["servers"]["connector"].server.app.extensions["connector"]
        cloud_id = stack["cloud_id"]
        status = state.backend.call("GET", f"/api/v1/organisations/{cloud_id}/status", cloud_id).json()
        assert status["has_account"] is True
        run = state.backend.call("POST", f"/api/v1/organisations/{cloud_id}/runs", cloud_id, {}).json()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run = state.backend.call("GET", f"/api/v1/runs/{run['id']}", cloud_id).json()
            if run["state"] not in ("queued", "running"):
                break
            time.sleep(0.3)
        assert run["state"] in ("succeeded", "warning"), run
    finally:
        stop_stack(stack)


def test_a_busy_port_is_one_line_before_any_banner(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        proc = start(tmp_path, free_port(), busy, free_port())
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out == ""
    assert err.strip().count("\n") == 0 and f"backend port {busy} already in use" in err
    assert not (tmp_path / "var").exists()  # nothing left behind
