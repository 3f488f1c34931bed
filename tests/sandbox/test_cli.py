"""`keepstone sandbox` serves a site on the port it is given, with the accounts it is given."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import requests

from tests.conftest import free_port


def test_sandbox_command_serves_the_site_with_the_chosen_admin():
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "keepstone.cli",
        "sandbox",
        "--port",
        str(port),
        "--projects",
        "2",
        "--issues",
        "5",
        "--seed",
        "3",
        "--admin-email",
        "cli@example.com",
        "--admin-token",
        "cli-token",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = requests.get(
                    f"{url}/rest/api/3/myself", auth=("cli@example.com", "cli-token"), timeout=2
                )
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.1)
        assert resp.status_code == 200
        assert resp.json()["emailAddress"] == "cli@example.com"
        site = requests.get(f"{url}/_sandbox/site", timeout=5).json()
        assert len(site["projects"]) == 2
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "cli@example.com" in out and str(port) in out


def test_sandbox_on_a_busy_port_says_so_in_one_line_before_any_banner():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "keepstone.cli", "sandbox", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 1
    assert run.stdout == ""  # no banner, no credentials printed for a site that is not there
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "not free" in lines[0], run.stderr


def test_sandbox_with_a_bad_site_file_says_where_in_one_line(tmp_path):
    path = tmp_path / "site.json"
    path.write_text(
        json.dumps(
            {"projects": [{"key": "OPS", "name": "Ops", "issues": [{"summary": "x", "status": "Doing"}]}]}
        )
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "keepstone.cli",
            "sandbox",
            "--port",
            str(free_port()),
            "--site-file",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip() == (
        f"keepstone sandbox: {path}: projects[0].issues[0] (OPS-1): unknown status 'Doing' "
        "(To Do, In Progress, In Review, Done)"
    )
