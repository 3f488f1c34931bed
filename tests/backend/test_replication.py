"""Replication after a run, over real HTTP: a plan's run copies its snapshots to each replica, logs each
replica's outcome, and a failing replica makes the run a warning with the reason, never a failure; the
storage's answer shows each replica's lag, last replicated time and bytes; the next run catches up."""

from __future__ import annotations

import uuid

import pytest

from backend import vault
from backend.repository import Repository
from backend.storage.local import LocalStorage
from tests.backend.test_storages import (
    LOCAL,
    TENANT,
    azure_body,
    azure_parts,
    backend,  # noqa: F401 - the fixture
    create,
    default_plan,
    run_default,
    set_account,
)
from tests.repository.test_copy import contents
from tests.storage.servers import azurite_server  # noqa: F401


def status_of(b, storage: dict) -> dict:
    got = b.call("GET", f"/api/v1/storages/{storage['id']}", b_tenant()).json()
    assert len(got["replication"]) == 1, got
    return got["replication"][0]


def b_tenant() -> str:
    return TENANT


@pytest.mark.azurite
def test_a_run_copies_to_its_replicas_and_a_failing_replica_is_a_warning_caught_up_later(backend, azurite):  # noqa: F811
    set_account(backend)
    primary = create(backend, {**LOCAL, "name": "Primary", "location": {"path": "primary"}})
    replica = create(backend, {**LOCAL, "name": "Replica", "location": {"path": "replica"}})
    container = f"c{uuid.uuid4().hex[:12]}"  # not created yet: the replica fails until it exists
    far = create(backend, azure_body(azurite, container))
    plan = default_plan(backend)
    r = backend.call(
        "PATCH",
        f"/api/v1/plans/{plan['id']}",
        TENANT,
        json={
            "storage_id": primary["id"],
            "replica_ids": [replica["id"], far["id"]],
            "spec": {"data": {"attachments": False}},
        },
    )
    assert r.status_code == 200, r.text
    assert status_of(backend, replica)["state"] == "pending"

    done, logs = run_default(backend)
    ids = {p["snapshot_id"] for p in done["projects"] if p["snapshot_id"]}
    assert len(ids) == 3, done
    assert done["state"] == "warning" and far["id"] in done["error"], done
    messages = [line["message"] for line in logs]
    assert not any("not copied yet" in m for m in messages)
    assert any(f"replica storage 'Replica' ({replica['id']}, local): copied 3 snapshots (3 of this run" in m
               for m in messages), messages  # fmt: skip
    failed = [line for line in logs if far["id"] in line["message"]]
    assert failed and failed[0]["level"] == "warning" and "not copied" in failed[0]["message"], failed
    # The replica holds the run's snapshots, re-encrypted under its own keys, readable with the tenant's
    # repository password, item for item what the primary holds.
    password = vault.repository_password(backend.config.secret_key, TENANT)
    root = backend.config.storage_root / TENANT
    source = Repository.open(LocalStorage(root / "primary"), password)
    copied = Repository.open(LocalStorage(root / "replica"), password)
    assert copied.keys.mac != source.keys.mac
    assert {s.meta["origin"] for s in copied.snapshots()} == ids
    assert contents(copied) == contents(source)
    ok = status_of(backend, replica)
    assert ok["state"] == "ok" and ok["lag"] == 0 and ok["last_replicated"] and ok["error"] == "", ok
    assert ok["bytes"] > 0 and ok["bytes_last_copy"] > 0, ok
    bad = status_of(backend, far)
    assert bad["state"] == "failed" and bad["lag"] == 3 and bad["last_replicated"] is None, bad
    assert "container" in bad["error"] and bad["last_attempt"], bad

    # The container appears: the next run copies its own snapshots and what the replica missed.
    _, service = azure_parts(azurite)
    service.create_container(container)
    again, logs = run_default(backend)
    assert again["state"] == "succeeded", again
    messages = [line["message"] for line in logs]
    # (the plan's rotation forgot the first run's snapshots on the primary: only this run's are left to copy)
    assert any("forgot 3 snapshots" in m for m in messages), messages
    for storage, kind in ((far, "azure"), (replica, "local")):
        line = f"({storage['id']}, {kind}): copied 3 snapshots (3 of this run, 0 already there)"
        assert any(line in m for m in messages), (line, messages)
    for storage in (replica, far):
        now = status_of(backend, storage)
        assert now["state"] == "ok" and now["lag"] == 0 and now["error"] == "", now
    assert status_of(backend, replica)["bytes_last_copy"] < ok["bytes_last_copy"]  # only what was new
    listed = backend.call("GET", f"/api/v1/organisations/{TENANT}/storages", TENANT).json()["items"]
    assert {s["id"]: s["replication"][0]["lag"] for s in listed if s["replication"]} == {
        replica["id"]: 0,
        far["id"]: 0,
    }
