"""Immutable storages against the real servers: S3 Object Lock on moto, Azure immutability on Azurite."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import boto3
import pytest

from backend.storage import NotFound, PermanentError, RetentionLocked, open_storage
from backend.storage.azure import AzureBlobStorage
from backend.storage.immutability import Retention
from backend.storage.s3 import S3Storage

PACK = "ab" + "0" * 62


def s3(endpoint: str, bucket: str, retention: Retention | None, create: bool = True) -> S3Storage:
    return S3Storage(
        bucket, "repo", endpoint_url=endpoint, access_key="test", secret_key="test", create=create,
        retention=retention,
    )  # fmt: skip


def raw(endpoint: str):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )


def bucket() -> str:
    return f"lock{uuid.uuid4().hex[:12]}"


@pytest.mark.s3
def test_compliance_object_cannot_be_deleted_or_overwritten(s3_server):
    storage = s3(s3_server, bucket(), Retention("compliance", timedelta(days=1)))
    assert storage.lock_problem == ""
    storage.save("data", PACK, b"sealed pack")
    storage.save("data", PACK, b"sealed pack")  # the same bytes again (a resumed copy): fine

    with pytest.raises(RetentionLocked) as refused:
        storage.remove("data", PACK)
    assert f"data/{PACK}" in str(refused.value) and "compliance retention until" in str(refused.value)
    assert refused.value.until > datetime.now(UTC) + timedelta(hours=23)
    with pytest.raises(RetentionLocked, match="never overwritten"):
        storage.save("data", PACK, b"other bytes")

    assert storage.load("data", PACK) == b"sealed pack"
    assert storage.retained_until("data", PACK) == refused.value.until
    versions = raw(s3_server).list_object_versions(Bucket=storage.bucket)
    assert len(versions["Versions"]) == 1 and not versions.get("DeleteMarkers")  # no hidden delete marker


@pytest.mark.s3
def test_governance_is_bypassed_only_when_the_admin_asks_and_compliance_never(s3_server):
    name = bucket()
    storage = s3(s3_server, name, Retention("governance", timedelta(days=1)))
    storage.save("snapshots", "s" * 64, b"snapshot")
    with pytest.raises(RetentionLocked, match="governance retention"):
        storage.remove("snapshots", "s" * 64)

    admin = s3(s3_server, name, Retention("governance", timedelta(days=1), bypass_governance=True))
    assert admin.retained_until("snapshots", "s" * 64) is None
    admin.remove("snapshots", "s" * 64)
    with pytest.raises(NotFound):
        storage.stat("snapshots", "s" * 64)
    assert not raw(s3_server).list_object_versions(Bucket=name).get("Versions")

    with pytest.raises(ValueError, match="compliance never"):
        Retention("compliance", timedelta(days=1), bypass_governance=True)
    # A bypass asked on a compliance storage is not even passed on (from_settings drops it).
    assert Retention.from_settings({"mode": "compliance", "retain_days": 3}, bypass_governance=True) == (
        Retention("compliance", timedelta(days=3))
    )


@pytest.mark.s3
def test_lock_files_stay_removable_and_leave_no_versions(s3_server):
    storage = s3(s3_server, bucket(), Retention("compliance", timedelta(days=1)))
    storage.save("locks", "l1", b"first")
    storage.save("locks", "l1", b"refreshed")  # a lock is rewritten while held
    storage.remove("locks", "l1")
    assert list(storage.list("locks")) == []
    assert not raw(s3_server).list_object_versions(Bucket=storage.bucket).get("Versions")


@pytest.mark.s3
def test_retention_ends_and_the_same_removal_succeeds(s3_server):
    storage = s3(s3_server, bucket(), Retention("compliance", timedelta(seconds=2)))
    storage.save("index", "i" * 64, b"index")
    with pytest.raises(RetentionLocked) as refused:
        storage.remove("index", "i" * 64)
    wait = (refused.value.until - datetime.now(UTC)).total_seconds() + 1.1
    time.sleep(max(0.0, wait))
    assert storage.retained_until("index", "i" * 64) is None
    storage.remove("index", "i" * 64)
    assert list(storage.list("index")) == []


@pytest.mark.s3
def test_bucket_without_object_lock_refuses_retained_writes_and_stores_nothing(s3_server):
    name = bucket()
    s3(s3_server, name, None)  # an ordinary bucket
    storage = s3(s3_server, name, Retention("governance", timedelta(days=7)), create=False)
    assert "has no Object Lock" in storage.lock_problem
    with pytest.raises(PermanentError, match="has no Object Lock") as refused:
        storage.save("data", PACK, b"pack")
    assert refused.value.reason == "immutability"
    assert list(storage.list("data")) == []
    storage.save("locks", "l1", b"lock")  # locks are never retained: the repository can still lock
    assert storage.probe_immutability() == (False, storage.lock_problem)


@pytest.mark.s3
def test_probe_proves_object_lock_and_cleans_up(s3_server):
    storage = s3(s3_server, bucket(), Retention("compliance", timedelta(days=30)))
    enforced, message = storage.probe_immutability()
    assert enforced, message
    assert "refused to delete" in message and "30 days" in message
    assert list(storage.list("locks")) == []


@pytest.mark.s3
def test_storage_url_takes_immutability_and_refuses_bad_settings(s3_server, aws_keys):
    name = bucket()
    storage = open_storage(f"s3://{name}/p?endpoint_url={s3_server}&immutability=compliance&retain=1d")
    storage.save("data", PACK, b"x")
    with pytest.raises(RetentionLocked):
        storage.remove("data", PACK)
    for query, message in [
        ("immutability=compliance", "needs retain=N"),
        ("immutability=compliance&retain=-3d", "needs retain=N"),
        ("immutability=compliance&retain=0d", "needs retain=N"),
        ("immutability=forever&retain=3d", "unknown immutability mode"),
        ("immutability=compliance&retain=3d&bypass_governance=1", "compliance never"),
        ("retain=3d", "need immutability="),
    ]:
        with pytest.raises(PermanentError, match=message):
            open_storage(f"s3://{bucket()}/p?endpoint_url={s3_server}&{query}")


@pytest.mark.azurite
def test_azurite_ignores_blob_immutability_and_the_probe_says_so(azurite):
    storage = AzureBlobStorage(
        azurite, f"c{uuid.uuid4().hex[:12]}", "repo", retention=Retention("compliance", timedelta(days=1))
    )
    storage.save("data", PACK, b"pack")
    storage.save("data", PACK, b"pack")
    with pytest.raises(RetentionLocked, match="never overwritten"):  # enforced here, by the client
        storage.save("data", PACK, b"other")
    enforced, message = storage.probe_immutability()
    assert not enforced and "501 Not Implemented" in message and "Azurite" in message
    assert list(storage.list("locks")) == []  # the probe blob is gone
    # Azurite keeps no policy, so nothing reports a retention it does not enforce.
    assert storage.retained_until("data", PACK) is None
    storage.remove("data", PACK)


@pytest.mark.azurite
def test_azure_url_takes_immutability(azurite):
    url = f"azure://c{uuid.uuid4().hex[:12]}/p?connection_string={quote(azurite)}&immutability=governance&retain=7d"
    storage = open_storage(url)
    assert storage.inner.retention == Retention("governance", timedelta(days=7))


@pytest.mark.s3
def test_the_wrappers_pass_retention_through(s3_server):
    from backend.storage.meter import MeteredStorage
    from backend.storage.retry import RetryingStorage

    inner = s3(s3_server, bucket(), Retention("governance", timedelta(days=2)))
    inner.save("snapshots", "s" * 64, b"snapshot")
    until = inner.retained_until("snapshots", "s" * 64)
    assert until is not None
    for wrapped in (RetryingStorage(inner), MeteredStorage(RetryingStorage(inner), "UNSET_KILL_HOOK")):
        assert wrapped.retained_until("snapshots", "s" * 64) == until
        with pytest.raises(RetentionLocked):
            wrapped.remove("snapshots", "s" * 64)
    assert open_storage("memory://").retained_until("data", PACK) is None  # the others: no retention
