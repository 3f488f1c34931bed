"""Storages as objects over real HTTP: CRUD, the service's rules for locations, the probe against a local
folder, Azurite and moto's S3 server (with IAM auth), plans' primary storage and replicas, runs on a
storage, and credentials that never come back out (answers, logs, the raw database file)."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from azure.storage.blob import BlobServiceClient
from botocore.config import Config as BotoConfig
from sqlalchemy import func, select

from backend import vault
from backend.db.models import StorageRecord
from backend.repository import Repository
from backend.storage import open_storage
from backend.storages import Target, open_target
from tests.backend.conftest import Backend, _postgres_url, make_backend, stop_backend
from tests.backend.test_api_hardening import field_names
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, free_port

# The storage servers of tests/storage as fixtures here too: `azurite` and `s3_server_with_auth`.
from tests.storage.servers import AZURITE_KEY, AuthS3, azurite_server, s3_auth_server  # noqa: F401

TENANT = "11111111-2222-4333-8444-555555555555"
OTHER = "99999999-2222-4333-8444-555555555555"
MISSING = "stg_aaaaaaaaaaaaaaaaaaaa"


@pytest.fixture
def backend(tmp_path, issuer, sandbox_site) -> Iterator[Backend]:
    """A backend that may speak plain http to 127.0.0.1 (Azurite, moto), with two installed tenants."""
    b = make_backend(tmp_path, issuer, storage_http_hosts="127.0.0.1")
    b.install(TENANT, sandbox_site.url)
    b.install(OTHER, sandbox_site.url)
    yield b
    stop_backend(b)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request, tmp_path, issuer, sandbox_site) -> Iterator[Backend]:
    """The same, on SQLite and on PostgreSQL (skipped with a reason when it is not reachable)."""
    url = _postgres_url() if request.param == "postgres" else None
    b = make_backend(tmp_path, issuer, url, storage_http_hosts="127.0.0.1")
    b.install(TENANT, sandbox_site.url)
    b.install(OTHER, sandbox_site.url)
    yield b
    stop_backend(b)


def storages_path(tenant: str = TENANT) -> str:
    return f"/api/v1/organisations/{tenant}/storages"


def create(b: Backend, body: dict, tenant: str = TENANT) -> dict:
    r = b.call("POST", storages_path(tenant), tenant, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def count(b: Backend) -> int:
    with b.app.extensions["keepstone"].db.session() as s:
        return s.scalar(select(func.count()).select_from(StorageRecord))


def azure_parts(conn: str) -> tuple[str, BlobServiceClient]:
    endpoint = re.search(r"BlobEndpoint=([^;]+)", conn).group(1)
    return endpoint, BlobServiceClient.from_connection_string(conn)


def azure_body(conn: str, container: str, key: str = AZURITE_KEY, **extra) -> dict:
    endpoint, _ = azure_parts(conn)
    return {
        "name": f"azure-{container}",
        "kind": "azure",
        "location": {
            "account_url": endpoint,
            "account_name": "devstoreaccount1",
            "container": container,
            "prefix": "keepstone/acme",
        },
        "credentials": {"account_key": key},
        "region": "azurite (loopback)",
        **extra,
    }


def s3_client(s3: AuthS3):
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
        config=BotoConfig(s3={"addressing_style": "path"}),
    )


def s3_body(s3: AuthS3, bucket: str, secret: str | None = None, endpoint: str | None = None) -> dict:
    return {
        "name": f"s3-{bucket}",
        "kind": "s3",
        "location": {"endpoint": endpoint or s3.endpoint, "bucket": bucket, "prefix": "acme"},
        "credentials": {
            "access_key_id": s3.access_key_id,
            "secret_access_key": secret or s3.secret_access_key,
        },
        "region": "eu-central (moto)",
    }


WRONG_KEY = "d3Jvbmcga2V5IGZvciBrZWVwc3RvbmUgdGVzdHM="
LOCAL = {"name": "Local", "kind": "local", "location": {"path": "primary"}, "region": "local disk B"}


# --- CRUD -------------------------------------------------------------------------------------------


def test_a_storage_is_created_read_listed_changed_and_deleted(any_db):
    b = any_db
    made = create(b, LOCAL)
    assert re.fullmatch(r"stg_[a-z2-7]{20}", made["id"])
    assert made["kind"] == "local" and made["location"] == {"path": "primary"}
    assert made["has_credentials"] is False and made["used_by"] == []
    assert made["immutability"] == {
        "mode": "none", "retain_days": None, "enforced": False, "reason": "immutability is off", "checked": None
    }  # fmt: skip
    assert b.call("GET", f"/api/v1/storages/{made['id']}", TENANT).json() == made
    assert [s["id"] for s in b.call("GET", storages_path(), TENANT).json()["items"]] == [made["id"]]
    assert b.call("GET", storages_path(OTHER), OTHER).json()["items"] == []
    r = b.call(
        "PATCH", f"/api/v1/storages/{made['id']}", TENANT, json={"name": "Renamed", "region": "eu-west"}
    )
    assert r.status_code == 200 and r.json()["name"] == "Renamed" and r.json()["region"] == "eu-west"
    assert b.call("POST", storages_path(), TENANT, json={**LOCAL, "name": "Renamed"}).status_code == 409
    r = b.call("DELETE", f"/api/v1/storages/{made['id']}", TENANT)
    assert r.status_code == 204, r.text
    assert b.call("GET", f"/api/v1/storages/{made['id']}", TENANT).status_code == 404
    assert count(b) == 0


def test_another_tenants_storage_answers_exactly_like_a_missing_one(any_db):
    b = any_db
    made = create(b, LOCAL)
    for method, suffix, body in (
        ("GET", "", None),
        ("PATCH", "", {"name": "mine now"}),
        ("DELETE", "", None),
        ("POST", "/test", None),
    ):
        theirs = b.call(method, f"/api/v1/storages/{made['id']}{suffix}", OTHER, json=body)
        missing = b.call(method, f"/api/v1/storages/{MISSING}{suffix}", OTHER, json=body)
        assert theirs.status_code == missing.status_code == 404, (method, suffix, theirs.text)
        assert theirs.json()["error"]["message"].replace(made["id"], "X") == missing.json()["error"][
            "message"
        ].replace(MISSING, "X")
    assert b.call("GET", f"/api/v1/storages/{made['id']}", TENANT).json() == made


# --- bad input: 422 naming the field, nothing stored or changed ---------------------------------------

S3_OK = {
    "name": "s3",
    "kind": "s3",
    "location": {"endpoint": "https://s3.example.com", "bucket": "acme-backups"},
    "credentials": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret-example"},
}


def s3_with(**location) -> dict:
    return {**S3_OK, "location": {**S3_OK["location"], **location}}


AZ_OK = {
    "name": "az",
    "kind": "azure",
    "location": {
        "account_url": "https://acme.blob.core.windows.net",
        "account_name": "acme",
        "container": "backups",
    },
    "credentials": {"account_key": "a2V5"},
}
BAD = [
    ({**LOCAL, "kind": "ftp"}, "kind"),
    ({**S3_OK, "location": {"endpoint": "https://s3.example.com"}}, "bucket"),
    ({**LOCAL, "location": {"path": "../../etc"}}, "path"),
    ({**LOCAL, "location": {"path": "/etc"}}, "path"),
    ({**LOCAL, "location": {"path": "a/../../b"}}, "path"),
    ({**LOCAL, "location": {"path": "a/./b"}}, "path"),
    ({**LOCAL, "location": {"path": "C:\\x"}}, "path"),
    ({**LOCAL, "location": "primary"}, "location"),
    (s3_with(endpoint="http://s3.example.com"), "endpoint"),
    (s3_with(endpoint="https://169.254.169.254"), "endpoint"),
    (s3_with(endpoint="https://10.0.0.8"), "endpoint"),
    (s3_with(endpoint="https://[::1]:9000"), "endpoint"),
    (s3_with(endpoint="https://localhost:9000"), "endpoint"),
    (s3_with(endpoint="https://2130706433"), "endpoint"),
    (s3_with(endpoint="https://1.0x7f"), "endpoint"),
    (s3_with(endpoint="https://minio:9000"), "endpoint"),
    (s3_with(endpoint="https://user:pw@s3.example.com"), "endpoint"),
    (s3_with(endpoint="ftp://s3.example.com"), "endpoint"),
    (s3_with(endpoint="https://s3.example.com/?x=1"), "endpoint"),
    (s3_with(bucket="Bad_Bucket"), "bucket"),
    (s3_with(prefix="../up"), "prefix"),
    ({**S3_OK, "credentials": None}, "credentials"),
    ({**S3_OK, "credentials": {"access_key_id": "AKIA"}}, "secret_access_key"),
    ({**S3_OK, "credentials": {**S3_OK["credentials"], "session": "x"}}, "session"),
    ({**AZ_OK, "location": {**AZ_OK["location"], "container": "Bad--Name"}}, "container"),
    (
        {**AZ_OK, "location": {**AZ_OK["location"], "account_url": "http://acme.blob.core.windows.net"}},
        "account_url",
    ),
    ({**AZ_OK, "credentials": {"account_key": "not base64!"}}, "account_key"),
    ({**AZ_OK, "credentials": {"account_key": "a2V5", "sas_token": "sv=1"}}, "sas_token"),
    ({**AZ_OK, "credentials": {}}, "account_key"),
    ({**LOCAL, "credentials": {"access_key_id": "x", "secret_access_key": "y"}}, "credentials"),
    ({**LOCAL, "immutability": {"mode": "governance", "retain_days": 7}}, "mode"),
    ({**S3_OK, "immutability": {"mode": "compliance"}}, "retain_days"),
    ({**S3_OK, "immutability": {"mode": "none", "retain_days": 3}}, "retain_days"),
    ({**S3_OK, "immutability": {"mode": "forever", "retain_days": 3}}, "mode"),
    ({**S3_OK, "immutability": {"mode": "compliance", "retain_days": 0}}, "retain_days"),
    ({**LOCAL, "name": ""}, "name"),
    ({**LOCAL, "region": "x" * 65}, "region"),
    ({**LOCAL, "colour": "blue"}, "colour"),
]


@pytest.mark.parametrize("body, field", BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD)])
def test_bad_storages_are_422_naming_the_field_and_nothing_is_stored_or_changed(backend, body, field):
    existing = create(backend, {**LOCAL, "name": "keep me"})
    r = backend.call("POST", storages_path(), TENANT, json=body)
    assert r.status_code == 422, r.text
    assert field in field_names(r.json()["error"]["fields"]), r.json()
    assert count(backend) == 1
    patch = {k: v for k, v in body.items() if k != "name"} if field != "name" else {"name": ""}
    r = backend.call("PATCH", f"/api/v1/storages/{existing['id']}", TENANT, json=patch)
    assert r.status_code == 422, (patch, r.text)
    assert field in field_names(r.json()["error"]["fields"]), r.json()
    assert backend.call("GET", f"/api/v1/storages/{existing['id']}", TENANT).json() == existing


def test_a_new_kind_needs_its_location_and_credentials(backend):
    existing = create(backend, LOCAL)
    r = backend.call("PATCH", f"/api/v1/storages/{existing['id']}", TENANT, json={"kind": "s3"})
    assert r.status_code == 422 and {"location", "credentials"} <= set(r.json()["error"]["fields"])
    r = backend.call(
        "PATCH",
        f"/api/v1/storages/{existing['id']}",
        TENANT,
        json={"kind": "s3", "location": S3_OK["location"]},
    )
    assert r.status_code == 422 and set(r.json()["error"]["fields"]) == {"credentials"}
    assert backend.call("GET", f"/api/v1/storages/{existing['id']}", TENANT).json() == existing
    r = backend.call(
        "PATCH",
        f"/api/v1/storages/{existing['id']}",
        TENANT,
        json={"kind": "s3", "location": S3_OK["location"], "credentials": S3_OK["credentials"]},
    )
    assert r.status_code == 200 and r.json()["kind"] == "s3" and r.json()["has_credentials"] is True
    assert r.json()["location"] == {**S3_OK["location"], "prefix": "", "signing_region": "us-east-1"}


def test_the_operator_decides_which_hosts_and_which_plain_http_hosts(tmp_path, issuer, sandbox_site):
    b = make_backend(tmp_path, issuer, storage_hosts="s3.example.com")
    try:
        b.install(TENANT, sandbox_site.url)
        r = b.call("POST", storages_path(), TENANT, json=s3_with(endpoint="https://other.example.com"))
        assert r.status_code == 422 and "KEEPSTONE_STORAGE_HOSTS" in str(r.json()["error"]["fields"])
        r = b.call("POST", storages_path(), TENANT, json=s3_with(endpoint="http://127.0.0.1:9000"))
        assert r.status_code == 422 and "endpoint" in field_names(r.json()["error"]["fields"])
        made = b.call("POST", storages_path(), TENANT, json=s3_with(endpoint="https://S3.example.com/"))
        assert made.status_code == 201, made.text
        assert made.json()["location"]["endpoint"] == "https://s3.example.com"
    finally:
        stop_backend(b)


def test_a_local_folder_stays_under_the_root_even_through_a_symlink(backend, tmp_path):
    root = backend.config.storage_root / TENANT
    root.mkdir(parents=True)
    (root / "out").symlink_to(tmp_path)
    r = backend.call("POST", storages_path(), TENANT, json={**LOCAL, "location": {"path": "out/x"}})
    assert r.status_code == 422 and "path" in field_names(r.json()["error"]["fields"]), r.text
    assert backend.config.storage_root == (tmp_path / "data" / "storages").resolve()


# --- the probe -------------------------------------------------------------------------------------


def probe(b: Backend, storage_id: str) -> dict:
    r = b.call("POST", f"/api/v1/storages/{storage_id}/test", TENANT)
    assert r.status_code == 200, r.text
    return r.json()


def statuses(result: dict) -> list[str]:
    return [s["status"] for s in result["steps"]]


def test_the_probe_passes_on_a_local_folder_and_leaves_nothing_behind(backend):
    made = create(backend, LOCAL)
    result = probe(backend, made["id"])
    assert result["ok"] is True and statuses(result) == ["ok"] * 5 + ["skipped"], result
    assert [s["step"] for s in result["steps"]] == [
        "connect",
        "write",
        "read",
        "list",
        "delete",
        "immutability",
    ]
    folder = backend.config.storage_root / TENANT / "primary"
    assert list((folder / "locks").iterdir()) == []


@pytest.mark.azurite
def test_the_probe_on_azurite_names_the_failing_step_and_why(backend, azurite):
    _, service = azure_parts(azurite)
    container = f"c{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    good = create(backend, azure_body(azurite, container))
    result = probe(backend, good["id"])
    assert result["ok"] is True and statuses(result) == ["ok"] * 5 + ["skipped"], result
    assert list(service.get_container_client(container).list_blobs()) == []

    wrong_key = create(backend, {**azure_body(azurite, container, key=WRONG_KEY), "name": "wrong key"})
    missing = create(backend, {**azure_body(azurite, "nosuchcontainer"), "name": "missing"})
    port = free_port()
    unreachable = create(
        backend,
        {
            **azure_body(azurite, container),
            "name": "nobody there",
            "location": {
                "account_url": f"http://127.0.0.1:{port}/devstoreaccount1",
                "account_name": "devstoreaccount1",
                "container": container,
            },
        },
    )
    expected = {
        wrong_key["id"]: ("wrong_credentials", "credentials"),
        missing["id"]: ("missing_container", "location.container"),
        unreachable["id"]: ("unreachable", "location.account_url"),
    }
    for storage_id, (reason, field) in expected.items():
        result = probe(backend, storage_id)
        assert result["ok"] is False and result["failed_step"] == "connect", result
        assert (result["reason"], result["field"]) == (reason, field), result
        assert statuses(result) == ["failed"] + ["skipped"] * 5 and result["message"]
    # Nothing was written anywhere, and no container was made.
    assert list(service.get_container_client(container).list_blobs()) == []
    assert "nosuchcontainer" not in [c.name for c in service.list_containers()]


@pytest.mark.s3
def test_the_probe_on_an_s3_server_names_the_failing_step_and_why(backend, s3_server_with_auth):
    s3 = s3_server_with_auth
    client = s3_client(s3)
    bucket = f"b{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    good = create(backend, s3_body(s3, bucket))
    result = probe(backend, good["id"])
    assert result["ok"] is True and statuses(result) == ["ok"] * 5 + ["skipped"], result
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    wrong = create(backend, {**s3_body(s3, bucket, secret="not-the-secret"), "name": "wrong"})
    missing = create(backend, {**s3_body(s3, "nosuchbucket"), "name": "missing"})
    port = free_port()
    gone = create(backend, {**s3_body(s3, bucket, endpoint=f"http://127.0.0.1:{port}"), "name": "gone"})
    expected = {
        wrong["id"]: ("wrong_credentials", "credentials"),
        missing["id"]: ("missing_container", "location.bucket"),
        gone["id"]: ("unreachable", "location.endpoint"),
    }
    for storage_id, (reason, field) in expected.items():
        result = probe(backend, storage_id)
        assert result["ok"] is False and result["failed_step"] == "connect", result
        assert (result["reason"], result["field"]) == (reason, field), result
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert "nosuchbucket" not in [b["Name"] for b in client.list_buckets()["Buckets"]]


@pytest.mark.s3
def test_the_probe_names_a_later_step_when_only_writing_is_refused(backend, s3_server_with_auth, tmp_path):
    """A key that may read the bucket but not write: connect passes, write fails with wrong_credentials."""
    s3 = s3_server_with_auth
    client = s3_client(s3)
    bucket = f"b{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    iam = boto3.client(
        "iam",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
    )
    user = f"reader{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    iam.put_user_policy(
        UserName=user,
        PolicyName="read",
        PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        '"Action": ["s3:List*", "s3:Get*", "s3:Head*"], "Resource": "*"}]}',
    )
    reader = AuthS3(s3.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    made = create(backend, {**s3_body(reader, bucket), "name": "reader"})
    result = probe(backend, made["id"])
    assert result["ok"] is False and result["failed_step"] == "write", result
    assert result["reason"] == "wrong_credentials" and statuses(result)[:2] == ["ok", "failed"]
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


# --- plans, runs, the panel ------------------------------------------------------------------------


def default_plan(b: Backend) -> dict:
    return next(p for p in b.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"])


def test_a_plan_without_a_storage_keeps_the_default_repository(backend):
    plan = default_plan(backend)
    assert plan["storage_id"] is None and plan["replica_ids"] == []
    assert plan["storage_url"] == backend.config.repository_url(TENANT)
    status = backend.call("GET", f"/api/v1/organisations/{TENANT}/status", TENANT).json()
    assert status["storage_region"] == backend.config.storage_region


def test_plans_name_storages_of_their_own_organisation_only(any_db):
    b = any_db
    mine = create(b, LOCAL)
    replica = create(b, {**LOCAL, "name": "Replica", "location": {"path": "replica"}})
    theirs = create(b, {**LOCAL, "name": "Theirs"}, tenant=OTHER)
    plan = default_plan(b)
    for body, field in (
        ({"storage_id": theirs["id"]}, "storage_id"),
        ({"storage_id": MISSING}, "storage_id"),
        ({"storage_id": "not-an-id"}, "storage_id"),
        ({"replica_ids": [theirs["id"]]}, "replica_ids"),
        ({"replica_ids": [replica["id"], replica["id"]]}, "replica_ids"),
        ({"storage_id": mine["id"], "replica_ids": [mine["id"]]}, "replica_ids"),
        ({"replica_ids": ["x"] * 9}, "replica_ids"),
    ):
        r = b.call("PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json=body)
        assert r.status_code == 422 and field in r.json()["error"]["fields"], (body, r.text)
    assert default_plan(b) == plan
    r = b.call(
        "PATCH",
        f"/api/v1/plans/{plan['id']}",
        TENANT,
        json={"storage_id": mine["id"], "replica_ids": [replica["id"]]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["storage_id"] == mine["id"] and r.json()["replica_ids"] == [replica["id"]]
    assert r.json()["storage_url"] == f"file://{b.config.storage_root / TENANT / 'primary'}"
    # The replica cannot become the primary while it is a replica; swapping both at once is fine.
    r = b.call("PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={"storage_id": replica["id"]})
    assert r.status_code == 422 and "replica_ids" in r.json()["error"]["fields"]
    r = b.call(
        "PATCH",
        f"/api/v1/plans/{plan['id']}",
        TENANT,
        json={"storage_id": replica["id"], "replica_ids": [mine["id"]]},
    )
    assert r.status_code == 200 and r.json()["replica_ids"] == [mine["id"]]
    created = b.call(
        "POST",
        f"/api/v1/organisations/{TENANT}/plans",
        TENANT,
        json={"name": "Second", "schedule": {"days": ["mon"], "hour": 1}, "storage_id": mine["id"]},
    )
    assert created.status_code == 201 and created.json()["storage_id"] == mine["id"], created.text


def test_a_storage_in_use_cannot_be_deleted_and_the_answer_names_the_plans(any_db):
    b = any_db
    primary = create(b, LOCAL)
    replica = create(b, {**LOCAL, "name": "Replica", "location": {"path": "replica"}})
    plan = default_plan(b)
    b.call(
        "PATCH",
        f"/api/v1/plans/{plan['id']}",
        TENANT,
        json={"storage_id": primary["id"], "replica_ids": [replica["id"]]},
    )
    for storage in (primary, replica):
        r = b.call("DELETE", f"/api/v1/storages/{storage['id']}", TENANT)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["fields"]["plans"] == [plan["id"]]
        assert plan["id"] in r.json()["error"]["message"] and "Default plan" in r.json()["error"]["message"]
        got = b.call("GET", f"/api/v1/storages/{storage['id']}", TENANT).json()
        assert got["used_by"] == [plan["id"]]
    b.call("PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={"storage_id": None, "replica_ids": []})
    for storage in (primary, replica):
        assert b.call("DELETE", f"/api/v1/storages/{storage['id']}", TENANT).status_code == 204


def set_account(b: Backend) -> None:
    r = b.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
    )
    assert r.status_code == 200, r.text


def run_default(b: Backend) -> tuple[dict, list[dict]]:
    started = b.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={})
    assert started.status_code == 202, started.text
    done = b.wait_for_run(TENANT, started.json()["id"])
    logs = b.call("GET", f"/api/v1/runs/{done['id']}/logs", TENANT, params={"limit": 1000}).json()["items"]
    return done, logs


@pytest.mark.s3
def test_a_run_writes_to_the_plans_primary_storage_and_copies_to_its_replica(backend, s3_server_with_auth):
    s3 = s3_server_with_auth
    bucket = f"b{uuid.uuid4().hex[:12]}"
    s3_client(s3).create_bucket(Bucket=bucket)
    set_account(backend)
    primary = create(backend, s3_body(s3, bucket))
    replica = create(backend, LOCAL)
    plan = default_plan(backend)
    r = backend.call(
        "PATCH",
        f"/api/v1/plans/{plan['id']}",
        TENANT,
        json={
            "storage_id": primary["id"],
            "replica_ids": [replica["id"]],
            "spec": {"data": {"attachments": False}},
        },
    )
    assert r.status_code == 200, r.text
    status = backend.call("GET", f"/api/v1/organisations/{TENANT}/status", TENANT).json()
    assert status["storage_region"] == "eu-central (moto)"
    done, logs = run_default(backend)
    assert done["state"] in ("succeeded", "warning"), done
    messages = [line["message"] for line in logs]
    assert any(f"writing to storage {primary['name']!r} ({primary['id']}, s3)" in m for m in messages)
    assert any(f"replica storage 'Local' ({replica['id']}, local): copied" in m for m in messages), messages
    # The snapshots are in the bucket, readable with the tenant's repository password, and copied to the
    # replica (tests/backend/test_replication.py tests replication in depth).
    storage = open_target(
        Target(
            primary["id"],
            "x",
            "s3",
            s3_body(s3, bucket)["location"] | {"signing_region": "us-east-1"},
            TENANT,
            s3_body(s3, bucket)["credentials"],
        ),
        backend.config,
    )
    repo = Repository.open(storage, vault.repository_password(backend.config.secret_key, TENANT))
    ids = {p["snapshot_id"] for p in done["projects"] if p["snapshot_id"]}
    assert ids and ids <= {s.id for s in repo.snapshots()}
    copied = Repository.open(
        open_storage(f"file://{backend.config.storage_root / TENANT / 'primary'}"),
        vault.repository_password(backend.config.secret_key, TENANT),
    )
    assert {s.meta["origin"] for s in copied.snapshots()} == ids
    assert not Path(backend.config.repository_url(TENANT).removeprefix("file://")).exists()


@pytest.mark.s3
def test_a_run_on_a_storage_that_refuses_its_credentials_fails_and_says_where(backend, s3_server_with_auth):
    s3 = s3_server_with_auth
    bucket = f"b{uuid.uuid4().hex[:12]}"
    s3_client(s3).create_bucket(Bucket=bucket)
    set_account(backend)
    wrong = create(backend, s3_body(s3, bucket, secret="not-the-secret"))
    plan = default_plan(backend)
    backend.call("PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={"storage_id": wrong["id"]})
    done, logs = run_default(backend)
    assert done["state"] == "failed" and wrong["id"] in done["error"] and "credentials" in done["error"], done
    assert any("could not start" in line["message"] and wrong["id"] in line["message"] for line in logs)


# --- secrets ---------------------------------------------------------------------------------------


@pytest.mark.azurite
@pytest.mark.s3
def test_credentials_appear_in_no_answer_log_line_or_database_byte(
    backend, azurite, s3_server_with_auth, caplog
):
    caplog.set_level(logging.DEBUG)
    for sdk in ("azure", "botocore", "boto3"):  # an in-process `keepstone` earlier may have quieted them
        caplog.set_level(logging.DEBUG, logger=sdk)
    s3 = s3_server_with_auth
    bucket = f"b{uuid.uuid4().hex[:12]}"
    s3_client(s3).create_bucket(Bucket=bucket)
    _, service = azure_parts(azurite)
    container = f"c{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    set_account(backend)
    bodies: list[str] = []

    def call(method: str, path: str, json: dict | None = None) -> dict:
        r = backend.call(method, path, TENANT, json=json)
        bodies.append(r.text)
        return r.json() if r.text else {}

    az = call("POST", storages_path(), azure_body(azurite, container))
    wrong_key = call(
        "POST",
        storages_path(),
        {**azure_body(azurite, container), "name": "wrong key", "credentials": {"account_key": WRONG_KEY}},
    )
    good = call("POST", storages_path(), s3_body(s3, bucket))
    wrong = call("POST", storages_path(), {**s3_body(s3, bucket, secret="wrong-secret-zz9"), "name": "wrong"})
    call("POST", storages_path(), {**s3_body(s3, bucket), "name": "bad", "location": {"bucket": "x"}})
    for item in (az, wrong_key, good, wrong):
        call("GET", f"/api/v1/storages/{item['id']}")
        call("POST", f"/api/v1/storages/{item['id']}/test")
    call("PATCH", f"/api/v1/storages/{good['id']}", {"credentials": s3_body(s3, bucket)["credentials"]})
    call("GET", storages_path())
    plan = default_plan(backend)
    call("PATCH", f"/api/v1/plans/{plan['id']}", {"storage_id": wrong["id"], "replica_ids": [az["id"]]})
    done, logs = run_default(backend)
    bodies += [str(done), str(logs)]
    call("GET", f"/api/v1/organisations/{TENANT}/plans")
    call("GET", f"/api/v1/organisations/{TENANT}/status")
    # Every credential is in no answer; the secret halves are in no log line either, even at debug level.
    # (An S3 access key id is an identifier: botocore's debug log shows the Authorization header's
    # Credential=..., as every request sends it in clear.)
    secret_parts = [AZURITE_KEY, WRONG_KEY, s3.secret_access_key, "wrong-secret-zz9"]
    secrets = [*secret_parts, s3.access_key_id]
    for secret in secrets:
        assert all(secret not in body for body in bodies), secret
    for secret in secret_parts:
        assert secret not in caplog.text, secret
    assert len(caplog.records) > 0 and "azure" in caplog.text
    database = Path(backend.config.database_url.removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    for secret in secrets:
        assert secret.encode() not in raw, secret
    assert az["id"].encode() in raw and b"devstoreaccount1" in raw  # the file was read for real


def test_sealed_credentials_are_bound_to_their_storage(backend):
    """Copying one storage's sealed credentials onto another makes them unreadable, not borrowed."""
    a = create(backend, {**S3_OK, "name": "a"})
    b = create(
        backend, {**S3_OK, "name": "b", "credentials": {"access_key_id": "B", "secret_access_key": "bb"}}
    )
    with backend.app.extensions["keepstone"].db.session() as s:
        rows = {r.public_id: r for r in s.scalars(select(StorageRecord))}
        rows[b["id"]].credentials_sealed = rows[a["id"]].credentials_sealed
        s.commit()
    result = probe(backend, b["id"])
    assert result["reason"] == "unreadable_credentials" and result["field"] == "credentials", result


def test_a_database_from_before_storages_migrates_and_its_plans_keep_their_repository(tmp_path, issuer):
    """A 0003 database with a tenant and a plan: after 0004 the plan has no storage and the same URL."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import create_engine, text

    from backend.db import MIGRATIONS

    url = f"sqlite:///{tmp_path}/old.db"
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0003")
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO organisations (cloud_id, site_url, display_name, time_zone, state, created) "
                "VALUES (:t, 'https://acme.example.com', 'Acme', 'UTC', 'active', '2026-01-01 00:00:00')"
            ),
            {"t": TENANT},
        )
        c.execute(
            text(
                "INSERT INTO plans (public_id, organisation_id, name, is_default, enabled, spec, schedule, "
                "rotation, storage_url, created) VALUES ('pln_aaaaaaaaaaaaaaaaaaab', 1, 'Old', 1, 1, '{}', "
                '\'{"days": ["mon"], "hour": 2}\', \'{"scheme": "unlimited"}\', \'file:///old/repo\', '
                "'2026-01-01 00:00:00')"
            )
        )
    engine.dispose()
    b = make_backend(tmp_path, issuer, database_url=url)
    try:
        plans = b.call("GET", f"/api/v1/organisations/{TENANT}/plans", TENANT).json()["items"]
        assert [(p["id"], p["storage_id"], p["replica_ids"], p["storage_url"]) for p in plans] == [
            ("pln_aaaaaaaaaaaaaaaaaaab", None, [], "file:///old/repo")
        ]
        made = create(b, LOCAL)
        r = b.call("PATCH", "/api/v1/plans/pln_aaaaaaaaaaaaaaaaaaab", TENANT, json={"storage_id": made["id"]})
        assert r.status_code == 200 and r.json()["storage_id"] == made["id"], r.text
    finally:
        stop_backend(b)
