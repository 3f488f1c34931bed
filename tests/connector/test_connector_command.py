"""`keepstone connector --port P` serves the descriptor and the JWKS on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests

from tests.conftest import free_port


def test_connector_command_serves_descriptor_and_jwks(tmp_path):
    port = free_port()
    env = {**os.environ, "KEEPSTONE_CONNECTOR_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keepstone.cli", "connector", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        descriptor = requests.get(url + "/atlassian-connect.json", timeout=5).json()
        assert descriptor["baseUrl"] == url
        keys = requests.get(url + "/.well-known/jwks.json", timeout=5).json()["keys"]
        assert keys and keys[0]["alg"] == "RS256" and "d" not in keys[0]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
