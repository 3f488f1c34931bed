"""Immutable replicas against the real servers (moto's S3 with Object Lock, Azurite): forget and prune skip
what is under retention and say so, then remove it once the retention ends; a refused deletion is named;
`check --read-data` passes throughout; the storage API proves immutability or says why not, and refuses
bad settings storing nothing; a run rotates its replicas too."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from backend import vault
from backend.repository import Repository
from backend.repository.prune import prune
from backend.repository.retention import Policy, forget
from backend.storage.immutability import Retention
from backend.storage.s3 import S3Storage
from keepstone.cli import main as keepstone_main
from tests.backend.test_storages import (
    LOCAL,
    S3_OK,
    TENANT,
    azure_body,
    azure_parts,
    backend,  # noqa: F401 - the fixture
    count,
    create,
    default_plan,
    run_default,
    s3_body,
    s3_client,
    set_account,
)
from tests.storage.servers import aws_keys, azurite_server, s3_auth_server, s3_server  # noqa: F401

PASSWORD = "immutable-replica"


def locked(endpoint: str, bucket: str, retention: Retention) -> S3Storage:
    return S3Storage(
        bucket, "repo", endpoint_url=endpoint, access_key="t", secret_key="t", retention=retention
    )


def write_snapshots(repo: Repository, days: int) -> list[str]:
    """`days` snapshots of one project: 6 items shared by all, 6 new items each (incompressible)."""
    rng = random.Random(days)
    shared = {f"issues/ABC-{i}": rng.randbytes(700) for i in range(6)}
    ids = []
    for day in range(days):
        w = repo.start_snapshot("ABC", "https://acme.example")
        for name, data in (
            shared | {f"issues/ABC-{100 * (day + 1) + i}": rng.randbytes(700) for i in range(6)}
        ).items():
            w.add_bytes(name, data, "issue")
        ids.append(w.commit())
    return ids


def read_back(repo: Repository, snapshot_id: str) -> dict[str, bytes]:
    return {e.name: repo.read_bytes(e) for e in repo.snapshot(snapshot_id).iter_entries()}


class TrustingS3(S3Storage):
    """Does not ask for retention before deleting: the storage's own refusal is what a prune meets."""

    def retained_until(self, kind, name):
        return None


def expire(endpoint: str, bucket: str, keep: str = "", only: str = "") -> None:
    """What an hour would do, in a second: the retention of every object (but `keep`, or `only` that one)
    ends one second from now (an administrator's governance bypass through the S3 API, outside Keepstone)."""
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    soon = datetime.now(UTC) + timedelta(seconds=1)
    for version in client.list_object_versions(Bucket=bucket).get("Versions", []):
        if (only and version["Key"].endswith(only)) or (not only and not version["Key"].endswith(keep)):
            client.put_object_retention(
                Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"],
                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": soon}, BypassGovernanceRetention=True,
            )  # fmt: skip
    time.sleep(1.5)


@pytest.mark.s3
def test_forget_and_prune_on_an_object_locked_replica_skip_what_is_retained_then_finish(
    s3_server,  # noqa: F811
    aws_keys,  # noqa: F811
    capsys,
    monkeypatch,
):
    bucket = f"lock{uuid.uuid4().hex[:12]}"
    storage = locked(s3_server, bucket, Retention("governance", timedelta(hours=1)))
    repo = Repository.init(storage, PASSWORD, pack_size=3 * 1024)
    ids = write_snapshots(repo, 3)
    newest = read_back(repo, ids[-1])
    stray = "f" * 64  # a pack in no index, as an interrupted backup leaves one
    storage.save("data", stray, b"a pack nothing lists")
    policy = Policy.from_dict({"scheme": "custom", "keep_last": 1})

    # Forget: the snapshot files are locked, so the forgotten ones are skipped, and said (a dry run too).
    preview = forget(repo, policy, UTC, dry_run=True)
    assert {r["id"] for r in preview.retained} == set(ids[:2]) and preview.removed == []
    first = forget(repo, policy, UTC)
    assert {v.id for v in first.forgotten} == set(ids[:2])
    assert first.removed == [] and {r["id"] for r in first.retained} == set(ids[:2])
    line = first.summary()[0]
    assert "2 of them still under retention" in line and "a later forget removes them" in line, line
    assert len(repo.snapshots()) == 3
    url = f"s3://{bucket}/repo?endpoint_url={s3_server}&immutability=governance&retain=1h"
    monkeypatch.setenv("KEEPSTONE_REPO_PASSWORD", PASSWORD)
    capsys.readouterr()
    assert keepstone_main(["forget", "--keep-last", "1", "--json", "--repo", url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["removed"] == [] and {r["id"] for r in out["retained"]} == set(ids[:2]), out
    assert all(datetime.fromisoformat(r["until"]) > datetime.now(UTC) for r in out["retained"])

    # Once the retention ends (all but the stray pack's), the same forget removes them.
    expire(s3_server, bucket, keep=stray)
    again = forget(repo, policy, UTC)
    assert set(again.removed) == set(ids[:2]) and again.retained == []
    assert [s.id for s in repo.snapshots()] == [ids[-1]]

    # Prune deletes what no snapshot needs and skips the locked pack, saying until when.
    result = prune(repo, max_unused=0.0)
    assert result.packs_deleted + result.packs_repacked > 0, result
    assert [(o["kind"], o["name"]) for o in result.retained] == [("data", stray)], result.retained
    until = datetime.fromisoformat(result.retained[0]["until"])
    assert timedelta(minutes=55) < until - datetime.now(UTC) <= timedelta(hours=1)
    assert "skipped 1 packs and 0 index files under retention" in result.summary()
    assert result.refused == [] and stray in set(repo.storage.list("data"))
    assert repo.check(read_data=True).ok
    assert read_back(repo, ids[-1]) == newest

    # The CLI says the same in --json, and the repository still checks clean.
    capsys.readouterr()
    assert keepstone_main(["prune", "--json", "--max-unused", "0%", "--repo", url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in out["retained"]] == [stray] and out["retry_after"] == result.retained[0][
        "until"
    ]
    assert keepstone_main(["check", "--read-data", "--repo", url]) == 0, capsys.readouterr()

    # A deletion the storage refuses (the prune did not know of the lock) is named, with the lock's end.
    trusting = TrustingS3(
        bucket, "repo", endpoint_url=s3_server, access_key="t", secret_key="t",
        retention=Retention("governance", timedelta(hours=1)),
    )  # fmt: skip
    refused = prune(Repository.open(trusting, PASSWORD), max_unused=0.0)
    # (the stray pack, and the index file the last prune wrote, which lists every kept pack: they stay)
    assert stray in [o["name"] for o in refused.refused] and all(o["until"] for o in refused.refused), refused
    error = next(o["error"] for o in refused.refused if o["name"] == stray)
    assert f"data/{stray}" in error and "under governance retention until" in error
    assert f"the storage refused {len(refused.refused)} deletions" in refused.summary()
    assert Repository.open(storage, PASSWORD).check(read_data=True).ok

    # Once the stray pack's retention ends, the next prune removes it (the index it wrote stays locked and
    # is not rewritten: only a pack in no index was left).
    expire(s3_server, bucket, only=stray)
    done = prune(Repository.open(storage, PASSWORD), max_unused=0.0)
    assert done.retained == [] and done.refused == [] and done.packs_unindexed == 1, done
    assert done.index_files_written == 0 and done.index_files_removed == 0
    assert stray not in set(storage.list("data"))
    final = Repository.open(storage, PASSWORD)
    assert final.check(read_data=True).ok and read_back(final, ids[-1]) == newest


# --- the storage API ---------------------------------------------------------------------------------


BAD_SETTINGS = [
    ({"mode": "compliance", "retain_days": -3}, "retain_days"),
    ({"mode": "compliance"}, "retain_days"),
    ({"mode": "worm", "retain_days": 3}, "mode"),
    ({"mode": "governance", "retain_days": "7"}, "retain_days"),
    ({"retain_days": 7}, "mode"),
]


def test_bad_immutability_settings_are_refused_and_store_nothing(backend):  # noqa: F811
    made = create(
        backend, {**S3_OK, "name": "good", "immutability": {"mode": "governance", "retain_days": 7}}
    )
    for settings, field in BAD_SETTINGS:
        r = backend.call(
            "POST", f"/api/v1/organisations/{TENANT}/storages", TENANT,
            json={**S3_OK, "name": "bad", "immutability": settings},
        )  # fmt: skip
        assert r.status_code == 422, (settings, r.text)
        assert field in r.json()["error"]["fields"]["immutability"], (settings, r.json())
        r = backend.call("PATCH", f"/api/v1/storages/{made['id']}", TENANT, json={"immutability": settings})
        assert r.status_code == 422, (settings, r.text)
    assert count(backend) == 1
    got = backend.call("GET", f"/api/v1/storages/{made['id']}", TENANT).json()
    assert got["immutability"]["mode"] == "governance" and got["immutability"]["retain_days"] == 7


def probe(b, storage: dict) -> dict:
    r = b.call("POST", f"/api/v1/storages/{storage['id']}/test", TENANT)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.s3
def test_the_storage_test_proves_object_lock_or_says_why_not(backend, s3_server_with_auth):  # noqa: F811
    s3 = s3_server_with_auth
    client = s3_client(s3)
    with_lock, without = f"lock{uuid.uuid4().hex[:12]}", f"plain{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=with_lock, ObjectLockEnabledForBucket=True)
    client.create_bucket(Bucket=without)
    settings = {"immutability": {"mode": "compliance", "retain_days": 30}}
    good = create(backend, {**s3_body(s3, with_lock), **settings})
    assert good["immutability"]["enforced"] is False and "not tested" in good["immutability"]["reason"]

    result = probe(backend, good)
    assert result["ok"] is True, result
    assert result["steps"][-1]["step"] == "immutability" and result["steps"][-1]["status"] == "ok"
    assert (
        result["immutability"]["enforced"] is True
        and "refused to delete" in result["immutability"]["message"]
    )
    got = backend.call("GET", f"/api/v1/storages/{good['id']}", TENANT).json()["immutability"]
    assert got["enforced"] is True and got["checked"] and "30 days" in got["reason"], got
    assert client.list_objects_v2(Bucket=with_lock).get("KeyCount", 0) == 0  # the probes are gone

    # Another place: what the test proved no longer holds.
    r = backend.call(
        "PATCH", f"/api/v1/storages/{good['id']}", TENANT,
        json={"location": {**good["location"], "prefix": "elsewhere"}},
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["immutability"]["enforced"] is False, r.text

    bad = create(backend, {**s3_body(s3, without), "name": "plain", **settings})
    result = probe(backend, bad)
    assert result["ok"] is False and result["failed_step"] == "immutability", result
    assert result["reason"] == "not_enforced" and result["field"] == "immutability"
    assert "has no Object Lock" in result["message"] and result["immutability"]["enforced"] is False
    got = backend.call("GET", f"/api/v1/storages/{bad['id']}", TENANT).json()["immutability"]
    assert got["enforced"] is False and "has no Object Lock" in got["reason"]


@pytest.mark.azurite
def test_the_storage_test_on_azurite_says_immutability_is_not_enforced_and_why(backend, azurite):  # noqa: F811
    container = f"c{uuid.uuid4().hex[:12]}"
    azure_parts(azurite)[1].create_container(container)
    made = create(
        backend, azure_body(azurite, container, immutability={"mode": "governance", "retain_days": 7})
    )
    result = probe(backend, made)
    assert result["ok"] is False and result["failed_step"] == "immutability", result
    assert [s["status"] for s in result["steps"]] == ["ok"] * 5 + ["failed"]
    assert "501 Not Implemented" in result["message"] and "Azurite" in result["message"]
    got = backend.call("GET", f"/api/v1/storages/{made['id']}", TENANT).json()["immutability"]
    assert got["enforced"] is False and "501" in got["reason"]


# --- a run rotates its replicas ----------------------------------------------------------------------


@pytest.mark.s3
def test_a_run_rotates_each_replica_and_an_object_locked_one_keeps_what_is_retained(
    backend,  # noqa: F811
    s3_server_with_auth,
):
    s3 = s3_server_with_auth
    bucket = f"lock{uuid.uuid4().hex[:12]}"
    s3_client(s3).create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    set_account(backend)
    primary = create(backend, {**LOCAL, "name": "Primary", "location": {"path": "primary"}})
    near = create(backend, {**LOCAL, "name": "Near", "location": {"path": "near"}})
    far = create(
        backend,
        {**s3_body(s3, bucket), "name": "Far", "immutability": {"mode": "compliance", "retain_days": 1}},
    )
    plan = default_plan(backend)
    r = backend.call(
        "PATCH", f"/api/v1/plans/{plan['id']}", TENANT,
        json={"storage_id": primary["id"], "replica_ids": [near["id"], far["id"]],
              "spec": {"data": {"attachments": False}}},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    first, _ = run_default(backend)
    assert first["state"] == "succeeded", first
    again, logs = run_default(backend)
    assert again["state"] == "succeeded", again
    messages = [line["message"] for line in logs]
    near_line = f"replica storage 'Near' ({near['id']}, local): rotation"
    far_line = f"replica storage 'Far' ({far['id']}, s3): rotation"
    assert any(
        m.startswith(near_line) and "forgot 3 snapshots" in m and "retention" not in m for m in messages
    ), messages
    held = [m for m in messages if m.startswith(far_line) and "forgot 3 snapshots" in m]
    assert held and "3 of them still under retention, skipped" in held[0], messages

    password = vault.repository_password(backend.config.secret_key, TENANT)
    root = backend.config.storage_root / TENANT
    from backend.storage.local import LocalStorage

    assert len(Repository.open(LocalStorage(root / "primary"), password).snapshots()) == 3
    assert len(Repository.open(LocalStorage(root / "near"), password).snapshots()) == 3
    raw = boto3.client(
        "s3", endpoint_url=s3.endpoint, region_name="us-east-1",
        aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key,
    )  # fmt: skip
    snapshots = raw.list_objects_v2(Bucket=bucket, Prefix="acme/snapshots/")["KeyCount"]
    assert snapshots == 6  # the first run's three are locked for a day: still there, and said
