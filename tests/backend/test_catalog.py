"""The snapshot catalog on SQLite and PostgreSQL, fed by real backups of a sandbox site: incremental
indexing reads only changed issues, full-text search finds which snapshots held a phrase, an issue's
history and its version at a moment, forgotten snapshots leave, and a rebuild gives the same catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from backend.backup import BackupSpec, run_backup
from backend.catalog import QueryError, issue_at, issue_history, search, sync
from backend.catalog.store import counts
from backend.db.models import CatalogIssue, CatalogSnapshot, Organisation
from backend.repository import Repository
from backend.storage import open_storage
from tests.backup.conftest import PASSWORD, client_for
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN

TENANT = "34343434-2222-4333-8444-555555555555"
PHRASE = "marmalade tangerine Zürich"


def _adf(text: str) -> dict:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


@pytest.fixture
def repo(tmp_path) -> Repository:
    return Repository.init(open_storage(f"file://{tmp_path}/repo"), PASSWORD, pack_size=1 << 20)


def _rows(db) -> set[tuple]:
    with db.session() as s:
        return set(
            s.execute(
                select(
                    CatalogSnapshot.snapshot_id, CatalogIssue.key, CatalogIssue.version, CatalogIssue.summary
                ).join(CatalogSnapshot, CatalogIssue.snapshot == CatalogSnapshot.id)
            ).all()
        )


def test_the_catalog_follows_the_repository_and_answers_without_packs(backend, fresh_site, repo):
    backend.install(TENANT, fresh_site.url)
    db = backend.app.extensions["keepstone"].db
    with db.session() as s:
        org_id = s.scalar(select(Organisation.id).where(Organisation.cloud_id == TENANT))
    client = client_for(fresh_site)
    spec = BackupSpec.from_dict({"projects": {"mode": "selected", "keys": ["PLAT"]}})
    first = run_backup(client, repo, spec, snapshot_time=datetime.now(UTC) - timedelta(days=1)).projects[0]
    done = sync(db, org_id, repo)
    assert (done.added, done.removed) == (1, 0)
    assert done.texts_read == done.issues == first.counts["issues"] == 15

    client.post_json("/rest/api/3/issue/PLAT-3/comment", {"body": _adf(f"We keep the {PHRASE} recipe here.")})
    second = run_backup(client, repo, spec).projects[0]
    assert second.counts["fetched"] == 1
    done = sync(db, org_id, repo)
    assert (done.added, done.texts_read, done.issues) == (1, 1, 15)  # only the changed issue was read
    assert sync(db, org_id, repo).added == 0  # idempotent

    with db.session() as s:
        hits = search(s, org_id, "Marmalade  tangerine zurich")  # case, spaces and diacritics do not matter
        assert [(h.key, [x["snapshot_id"] for x in h.snapshots]) for h in hits] == [
            ("PLAT-3", [second.snapshot_id])
        ]
        assert "marmalade" in hits[0].snippet.lower()
        assert search(s, org_id, "tangerine marmalade") == []  # a phrase, not a bag of words
        assert search(s, org_id, 'recipe" OR "*') == []  # the user's text is never query syntax
        with pytest.raises(QueryError):
            search(s, org_id, "   ")
        with pytest.raises(QueryError):
            search(s, org_id, "\x00\t")  # control characters are no words (and NUL ends an FTS5 string)
        assert [h.key for h in search(s, org_id, "marmalade\x00tangerine")] == ["PLAT-3"]
        summary = repo.read_json(repo.snapshot(first.snapshot_id).entry("issues/PLAT-5"))["fields"]["summary"]
        unchanged = [h for h in search(s, org_id, summary) if h.key == "PLAT-5"]
        assert {x["snapshot_id"] for x in unchanged[0].snapshots} == {first.snapshot_id, second.snapshot_id}
        assert search(s, org_id + 999, "marmalade tangerine") == []  # another organisation sees nothing

        history = issue_history(s, org_id, "PLAT-3")
        assert [h["snapshot_id"] for h in history] == [first.snapshot_id, second.snapshot_id]
        assert history[0]["version"] != history[1]["version"]
        between = datetime.fromisoformat(history[1]["time"]) - timedelta(minutes=1)
        assert issue_at(s, org_id, "PLAT-3", between)["snapshot_id"] == first.snapshot_id
        assert issue_at(s, org_id, "PLAT-3", datetime.now(UTC) - timedelta(days=3)) is None
        with pytest.raises(QueryError):
            issue_at(s, org_id, "PLAT-3", datetime(2026, 1, 1))  # no offset
        before = counts(s, org_id)

    kept = _rows(db)
    rebuilt = sync(db, org_id, repo, full=True)
    assert (rebuilt.removed, rebuilt.added) == (2, 2) and _rows(db) == kept

    repo.forget(first.snapshot_id)
    done = sync(db, org_id, repo)
    assert (done.added, done.removed) == (0, 1)
    with db.session() as s:
        assert [h["snapshot_id"] for h in issue_history(s, org_id, "PLAT-3")] == [second.snapshot_id]
        assert counts(s, org_id) == {
            "snapshots": 1,
            "texts": before["texts"] - 1,
        }  # PLAT-3's old version went
        assert search(s, org_id, PHRASE)[0].snapshots[0]["snapshot_id"] == second.snapshot_id


def test_a_run_feeds_the_catalog_and_the_api_answers_from_it(backend, sandbox_site):
    backend.install(TENANT, sandbox_site.url)
    backend.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
    )
    started = backend.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={})
    run = backend.wait_for_run(TENANT, started.json()["id"])
    assert run["state"] in ("succeeded", "warning"), run
    logs = backend.call("GET", f"/api/v1/runs/{run['id']}/logs", TENANT).json()["items"]
    assert any(line["message"].startswith("catalog: 3 snapshots added") for line in logs), logs
    snapshot = {p["project"]: p["snapshot_id"] for p in run["projects"]}["PLAT"]

    base = f"/api/v1/organisations/{TENANT}"
    history = backend.call("GET", f"{base}/issues/PLAT-1/history", TENANT).json()
    assert [h["snapshot_id"] for h in history["items"]] == [snapshot] and history["at"] is None
    summary = history["items"][0]["summary"]
    hits = backend.call("GET", f"{base}/search", TENANT, params={"q": summary}).json()["items"]
    assert any(h["key"] == "PLAT-1" and h["snapshots"][0]["snapshot_id"] == snapshot for h in hits)
    later = backend.call(
        "GET", f"{base}/issues/PLAT-1/history", TENANT, params={"at": "2999-01-01T00:00:00+00:00"}
    ).json()
    assert later["at"]["snapshot_id"] == snapshot

    assert backend.call("GET", f"{base}/search", TENANT, params={"q": ""}).status_code == 422
    assert backend.call("GET", f"{base}/issues/plat-1/history", TENANT).status_code == 422
    assert backend.call("GET", f"{base}/issues/PLAT-999/history", TENANT).status_code == 404
    assert (
        backend.call("GET", f"{base}/issues/PLAT-1/history", TENANT, params={"at": "yesterday"}).status_code
        == 422
    )
    other = "56565656-2222-4333-8444-555555555555"
    assert backend.call("GET", f"{base}/search", other, params={"q": summary}).status_code == 404
    assert backend.call("GET", f"{base}/search", params={"q": summary}).status_code == 401

    # The catalog is a cache: emptied, `keepstone backend catalog rebuild` brings back the same rows.
    db = backend.app.extensions["keepstone"].db
    kept = _rows(db)
    with db.session() as s:
        s.execute(delete(CatalogIssue))
        s.execute(delete(CatalogSnapshot))
        s.commit()
    env = {
        **os.environ,
        "KEEPSTONE_DATABASE_URL": backend.config.database_url,
        "KEEPSTONE_SECRET_KEY": backend.config.secret_key,
        "KEEPSTONE_DATA_DIR": str(backend.config.data_dir),
    }
    cli = [sys.executable, "-m", "keepstone.cli", "backend", "catalog", "rebuild"]
    done = subprocess.run([*cli, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(r["state"], r["snapshots"]) for r in report["repositories"]] == [("rebuilt", 3)]
    assert _rows(db) == kept
    unknown = subprocess.run([*cli, "--org", other], env=env, capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and f"no organisation {other}" in unknown.stderr
    assert _rows(db) == kept
