"""The organisation's recovery passphrase over real HTTP: PUT adds the wrap to every repository of the
organisation (a primary written by the code before key files had fields is upgraded on the way, without a
data byte rewritten), a replica the next run creates gets it too, and once the service is gone the open
CLI alone (real processes, --password-file) opens both. Replacing it retires the old passphrase, DELETE
every wrap; bad input is a 422 that changes nothing; the passphrase is in no answer and no database byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from backend import vault
from backend.repository import Repository, WrongPassword
from backend.repository.keys import list_keys
from backend.repository.locks import Lock
from backend.storage.local import LocalStorage
from tests.backend.conftest import stop_backend
from tests.backend.test_roles import Member, add_member
from tests.backend.test_storages import (
    LOCAL,
    TENANT,
    backend,  # noqa: F401 - the fixture
    create,
    default_plan,
    run_default,
    s3_body,
    s3_client,
    set_account,
)
from tests.backup.test_cli_errors import fingerprint
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, ROOT, free_port
from tests.storage.servers import s3_auth_server  # noqa: F401

LEGACY = ROOT / "tests" / "repository" / "data" / "legacy-v1-service"  # the service's password, version 1
PASSPHRASE = "our recovery passphrase, kept in the safe"
PATH = f"/api/v1/organisations/{TENANT}/recovery-passphrase"


def put(b, body: dict):
    return b.call("PUT", PATH, TENANT, json=body)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KEEPSTONE_", "AWS_"))}
    return subprocess.run([sys.executable, "-m", "keepstone.cli", *args], capture_output=True, text=True,
                          env={**base, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=120,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def kinds(folder: Path) -> list[tuple[str, str]]:
    repo = Repository.open(LocalStorage(folder), PASSPHRASE)
    return sorted((k.kind, k.label) for k in list_keys(repo))


@pytest.mark.s3
def test_the_passphrase_alone_opens_every_repository_once_the_service_is_gone(
    backend,  # noqa: F811
    s3_server_with_auth,
    sandbox_site,
    tmp_path,
):
    s3 = s3_server_with_auth
    bucket = f"b{uuid.uuid4().hex[:12]}"
    s3_client(s3).create_bucket(Bucket=bucket)
    set_account(backend)
    folder = backend.config.storage_root / TENANT / "primary"
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(LEGACY, folder)  # a repository the service wrote before key files had fields
    old_files = fingerprint(folder)
    primary = create(backend, LOCAL)
    replica = create(backend, s3_body(s3, bucket))
    plan = default_plan(backend)
    r = backend.call("PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={
        "storage_id": primary["id"], "replica_ids": [replica["id"]], "spec": {"data": {"attachments": False}},
    })  # fmt: skip
    assert r.status_code == 200, r.text

    r = put(backend, {"passphrase": PASSPHRASE, "label": "in the safe"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["set"] and len(answer["fingerprint"]) == 16 and answer["label"] == "in the safe"
    states = {line["repository"]: line for line in answer["repositories"]}
    assert states[f"storage 'Local' ({primary['id']}, local)"]["state"] == "updated"
    assert states[f"storage 'Local' ({primary['id']}, local)"]["added"] == 1
    assert states[f"storage 's3-{bucket}' ({replica['id']}, s3)"]["state"] == "empty"
    assert PASSPHRASE not in r.text
    assert backend.call("GET", PATH, TENANT).json() | {"repositories": []} == answer | {"repositories": []}
    # The legacy service key got its fields (same wrap), the recovery wrap was added, no data changed.
    assert kinds(folder) == [("password", "service"), ("recovery", "in the safe")]
    now = fingerprint(folder)
    assert {k: v for k, v in old_files.items() if not k.startswith("keys/")} == {
        k: v for k, v in now.items() if not k.startswith(("keys/", "locks/"))
    }

    done, _ = run_default(backend)  # writes to the primary, creates the replica (with the wrap)
    assert done["state"] == "succeeded", done
    stop_backend(backend)  # the service is gone: only the storages and the passphrase are left
    databases = list(tmp_path.rglob("*.db"))
    assert databases and not any(PASSPHRASE.encode() in p.read_bytes() for p in databases)

    secret = tmp_path / "passphrase.txt"
    secret.write_text(PASSPHRASE + "\n")
    aws = {"AWS_ACCESS_KEY_ID": s3.access_key_id, "AWS_SECRET_ACCESS_KEY": s3.secret_access_key}
    replica_url = f"s3://{bucket}/acme?endpoint_url={s3.endpoint}"
    listed, ids = {}, {}
    for url, env in ((f"file://{folder}", {}), (replica_url, aws)):
        shown = cli("snapshots", "--repo", url, "--password-file", str(secret), "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        listed[url] = {s["project"] for s in json.loads(shown.stdout)}
        ids[url] = {s["project"]: s["id"] for s in json.loads(shown.stdout)}
        keys = cli("key", "list", "--repo", url, "--password-file", str(secret), "--json", env=env)
        assert keys.returncode == 0, keys.stderr
        current = [k for k in json.loads(keys.stdout) if k["current"]]
        assert [k["kind"] for k in current] == ["recovery"], keys.stdout
    assert listed[f"file://{folder}"] >= {"OLD", "PLAT"} and "PLAT" in listed[replica_url]
    issue = cli("show", "PLAT-1", "--repo", replica_url, "--password-file", str(secret), "--json", env=aws)
    assert issue.returncode == 0 and json.loads(issue.stdout)["key"] == "PLAT-1", issue.stderr
    planned = cli("restore", "--repo", replica_url, "--password-file", str(secret), "--snapshot",
                  ids[replica_url]["PLAT"][:8], "--issues", "PLAT-1", "--new-project", "PLATR", "--dry-run",
                  "--json", "--site", sandbox_site.url, "--email", ADMIN_EMAIL, "--journal",
                  str(tmp_path / "journal.sqlite"), env={**aws, "KEEPSTONE_JIRA_TOKEN": ADMIN_TOKEN})  # fmt: skip
    assert planned.returncode == 0, planned.stderr + planned.stdout
    assert "PLAT-1" in planned.stdout
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not our recovery passphrase\n")
    refused = cli("snapshots", "--repo", f"file://{folder}", "--password-file", str(wrong))
    assert refused.returncode == 1 and "the password does not open this repository" in refused.stderr


def test_replacing_retires_the_old_passphrase_and_delete_removes_every_wrap(backend, tmp_path):  # noqa: F811
    set_account(backend)
    create(backend, LOCAL)
    plan = default_plan(backend)
    storage_id = create(backend, {**LOCAL, "name": "Second", "location": {"path": "second"}})["id"]
    r = backend.call("PATCH", f"/api/v1/plans/{plan['id']}", TENANT, json={"storage_id": storage_id,
                     "spec": {"projects": {"mode": "selected", "keys": ["PLAT"]}, "data": {"attachments": False}}})  # fmt: skip
    assert r.status_code == 200, r.text
    first = put(backend, {"passphrase": PASSPHRASE}).json()
    assert {line["state"] for line in first["repositories"]} == {"empty"}  # no repository yet
    done, _ = run_default(backend)  # the run creates the repository with the wrap
    assert done["state"] == "succeeded", done
    folder = backend.config.storage_root / TENANT / "second"
    assert Repository.open(LocalStorage(folder), PASSPHRASE).snapshots()

    second = put(backend, {"passphrase": "a brand new passphrase"}).json()
    assert second["fingerprint"] != first["fingerprint"]
    (line,) = [x for x in second["repositories"] if "Second" in x["repository"]]
    assert (line["state"], line["added"], line["removed"]) == ("updated", 1, 1), second
    with pytest.raises(WrongPassword):
        Repository.open(LocalStorage(folder), PASSPHRASE)
    assert Repository.open(LocalStorage(folder), "a brand new passphrase")

    gone = backend.call("DELETE", PATH, TENANT)
    assert gone.status_code == 200 and not gone.json()["set"], gone.text
    with pytest.raises(WrongPassword):
        Repository.open(LocalStorage(folder), "a brand new passphrase")
    service = Repository.open(
        LocalStorage(folder), vault.repository_password(backend.config.secret_key, TENANT)
    )
    assert [(k.kind, k.label) for k in list_keys(service)] == [("password", "service")]
    assert not backend.call("GET", PATH, TENANT).json()["set"]
    again, _ = run_default(backend)  # the service's own key still works
    assert again["state"] == "succeeded", again


BAD = {
    "empty": ({"passphrase": ""}, "passphrase"),
    "only spaces": ({"passphrase": " " * 20}, "passphrase"),
    "too short": ({"passphrase": "short"}, "passphrase"),
    "two lines": ({"passphrase": "first line is long\nsecond"}, "passphrase"),
    "missing": ({"label": "x"}, "passphrase"),
    "not a string": ({"passphrase": 123456789012345}, "passphrase"),
    "too long": ({"passphrase": "x" * 1025}, "passphrase"),
    "control in label": ({"passphrase": PASSPHRASE, "label": "a\x07b"}, "label"),
    "unknown field": ({"passphrase": PASSPHRASE, "pass": "x"}, "pass"),
}


def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(backend):  # noqa: F811
    set_account(backend)
    run_default(backend)  # the default repository exists
    folder = Path(backend.config.repository_url(TENANT).removeprefix("file://"))
    assert put(backend, {"passphrase": PASSPHRASE}).status_code == 200
    before, stored = fingerprint(folder), backend.call("GET", PATH, TENANT).json()
    for case, (body, field) in BAD.items():
        r = put(backend, body)
        assert r.status_code == 422, (case, r.text)
        assert field in r.json()["error"]["fields"], (case, r.text)
        assert PASSPHRASE not in r.text
    assert fingerprint(folder) == before
    assert backend.call("GET", PATH, TENANT).json() == stored


def test_only_admins_set_or_remove_it_and_nobody_reads_it_back(backend):  # noqa: F811
    for role in ("viewer", "operator", "admin"):
        add_member(backend, f"{role}@example.com", role)
    members = {role: Member(backend, f"{role}@example.com") for role in ("viewer", "operator", "admin")}
    path = PATH.removeprefix("/api/v1")
    for role in ("viewer", "operator"):
        for method, body in (("PUT", {"passphrase": PASSPHRASE}), ("DELETE", None)):
            r = members[role].api(method, path, json=body)
            assert r.status_code == 403 and r.json()["error"]["code"] == "role", (role, method, r.text)
        assert not members[role].api("GET", path).json()["set"]
    r = members["admin"].api("PUT", path, json={"passphrase": PASSPHRASE, "label": "safe"})
    assert r.status_code == 200 and r.json()["set"], r.text
    seen = members["viewer"].api("GET", path)
    assert seen.status_code == 200 and seen.json()["label"] == "safe" and PASSPHRASE not in seen.text
    assert members["operator"].api("DELETE", path).status_code == 403
    assert members["viewer"].api("GET", path).json()["set"]
    # The audit log names who set and who removed it, by fingerprint; the passphrase is in no event.
    removed = members["admin"].api("DELETE", path)
    assert removed.status_code == 200 and not removed.json()["set"], removed.text
    events = members["admin"].api("GET", f"/organisations/{TENANT}/audit").json()["items"]
    mine = [e for e in events if e["action"].startswith("recovery.")]
    assert sorted(e["action"] for e in mine) == ["recovery.remove", "recovery.set"], mine
    assert all(e["actor"]["id"] == "admin@example.com" for e in mine), mine
    assert PASSPHRASE not in json.dumps(events)


def test_a_locked_or_unreachable_repository_is_reported_and_the_next_run_catches_up(backend):  # noqa: F811
    set_account(backend)
    run_default(backend)
    folder = Path(backend.config.repository_url(TENANT).removeprefix("file://"))
    secret = "an-s3-secret-that-must-not-show"
    dead = create(backend, {"name": "Dead", "kind": "s3", "region": "nowhere", "credentials": {
        "access_key_id": "AKIAKEEPSTONETEST", "secret_access_key": secret},
        "location": {"endpoint": f"http://127.0.0.1:{free_port()}", "bucket": "gone", "prefix": "acme"}})  # fmt: skip
    held = Lock(LocalStorage(folder), exclusive=True).acquire()  # e.g. a `keepstone key passwd` running
    try:
        before = fingerprint(folder)
        r = put(backend, {"passphrase": PASSPHRASE})
        assert r.status_code == 200, r.text
        states = {line["repository"]: line for line in r.json()["repositories"]}
        assert states["the default repository"]["state"] == "postponed", states
        failed = states[f"storage 'Dead' ({dead['id']}, s3)"]
        assert failed["state"] == "failed" and "next run" in failed["message"], failed
        assert secret not in r.text
        assert fingerprint(folder) == before
    finally:
        held.release()
    with pytest.raises(WrongPassword):
        Repository.open(LocalStorage(folder), PASSPHRASE)
    done, _ = run_default(backend)
    assert done["state"] == "succeeded", done
    assert Repository.open(LocalStorage(folder), PASSPHRASE).snapshots()
