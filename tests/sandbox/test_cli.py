"""`keepstone sandbox` serves a site on the port it is given, with the accounts it is given."""

from __future__ import annotations

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
