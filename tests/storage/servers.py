"""Storage servers as fixtures, real where they can run here (Azurite from npm, moto's S3 server).

Shared by tests/storage (through its conftest) and by the backend's storage tests, which import them;
pytest knows them by the `name` they are declared with (`azurite`, `s3_server`, `s3_server_with_auth`).
`s3_server_with_auth` is a moto server that checks credentials (IAM), for tests of wrong keys.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, free_port

AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _wait_for(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer at {url}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="session", name="azurite")
def azurite_server(tmp_path_factory) -> Iterator[str]:
    """An Azurite blob server on a free loopback port; yields its connection string."""
    if not AZURITE.exists():
        pytest.skip("Azurite is not installed (run `make install`; it needs npm)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--silent",
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
        ],
        stdout=(workdir / "azurite.log").open("wb"),
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/devstoreaccount1?comp=list", proc, "Azurite")
        yield (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on a free loopback port; yields its endpoint URL."""
    exe = shutil.which("moto_server") or str(Path(os.sys.executable).parent / "moto_server")
    if not Path(exe).exists():
        pytest.skip("moto_server is not installed")
    port = free_port()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "MOTO_CALL_RESET_API": "false",
    }
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/", proc, "moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


@pytest.fixture
def aws_keys(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


@dataclass(frozen=True)
class AuthS3:
    endpoint: str
    access_key_id: str
    secret_access_key: str


@pytest.fixture(scope="session", name="s3_server_with_auth")
def s3_auth_server() -> Iterator[AuthS3]:
    """A moto S3 server that checks signatures and keys: one IAM user with an access key allowed everything.

    moto authenticates every request after INITIAL_NO_AUTH_ACTION_COUNT actions; the first three make the
    user, its key and its policy.
    """
    import boto3

    # This interpreter's moto (a moto_server elsewhere on PATH may be another version, whose signature
    # check refuses query strings with a "/").
    exe = str(Path(os.sys.executable).parent / "moto_server")
    if not Path(exe).exists():
        pytest.skip("moto_server is not installed")
    port = free_port()
    env = {
        **os.environ,
        "INITIAL_NO_AUTH_ACTION_COUNT": "3",
        "MOTO_CALL_RESET_API": "false",
    }
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(f"{url}/moto-api/", proc, "moto_server")  # moto's own page: not an authenticated action
        iam = boto3.client(
            "iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        iam.create_user(UserName="keepstone")
        key = iam.create_access_key(UserName="keepstone")["AccessKey"]
        iam.put_user_policy(
            UserName="keepstone",
            PolicyName="all",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        yield AuthS3(url, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        _stop(proc)
