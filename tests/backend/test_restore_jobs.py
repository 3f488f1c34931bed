"""Restores as background tasks of the service: one interrupted part way and left "running" (as a stopped
service leaves it) is resumed by the next service from its journal, and ends with each issue exactly once."""

from __future__ import annotations

import time

from sqlalchemy import select

from backend.db.models import CatalogSnapshot, Organisation, RestoreJob
from backend.restore.plan import RestoreRequest
from backend.restores import RestoreService, request_json
from tests.backup.conftest import client_for
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN

TENANT = "78787878-2222-4333-8444-555555555555"


def _wait(db, job_id: int, timeout: float = 120) -> RestoreJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as s:
            job = s.get(RestoreJob, job_id)
            if job.state not in ("queued", "running"):
                return job
        time.sleep(0.2)
    raise AssertionError("the restore did not finish")


def test_a_restore_left_running_by_a_stopped_service_resumes_and_creates_nothing_twice(backend, fresh_site):

    backend.install(TENANT, fresh_site.url)
    backend.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
    )
    started = backend.call("POST", f"/api/v1/organisations/{TENANT}/runs", TENANT, json={})
    backend.wait_for_run(TENANT, started.json()["id"])
    db = backend.app.extensions["keepstone"].db
    with db.session() as s:
        org_id = s.scalar(select(Organisation.id).where(Organisation.cloud_id == TENANT))
        snap = s.scalar(select(CatalogSnapshot).where(CatalogSnapshot.project == "PLAT"))
        request = RestoreRequest(snap.snapshot_id, None, True, {}, "new", "PLATR", "Platform restored",
                                 {"issues", "comments", "links"})  # fmt: skip
        # The first attempt is asked to stop at once: it ends after its current step, its journal kept.
        job = RestoreJob(organisation_id=org_id, snapshot_id=snap.snapshot_id, project="PLAT",
                         request=request_json(request), created_by="test", cancel_requested=True)  # fmt: skip
        s.add(job)
        s.commit()
        job_id, total = job.id, snap.issues
    first = RestoreService(backend.config, db)
    first.execute(job_id)
    with db.session() as s:
        stopped = s.get(RestoreJob, job_id)
        assert stopped.state == "cancelled"
        # ... and is left as a service killed mid-restore leaves it.
        stopped.state, stopped.cancel_requested, stopped.finished = "running", False, None
        s.commit()
    first.shutdown()
    client = client_for(fresh_site)
    before = [i["key"] for i in client.search_jql("project = PLATR", ["summary"], page_size=100)]
    assert len(before) < total  # the first attempt really stopped part way

    second = RestoreService(backend.config, db)  # the service started again
    try:
        assert second.resume_unfinished() == [stopped.public_id]
        done = _wait(db, job_id)
    finally:
        second.shutdown()
    assert done.state == "succeeded", done.error
    keys = [i["key"] for i in client.search_jql("project = PLATR", ["summary"], page_size=100)]
    assert len(keys) == len(set(keys)) == total  # every issue once: the journal skipped what was done
    assert sorted(done.result["mapping"].values(), key=lambda k: int(k.split("-")[1])) == sorted(
        keys, key=lambda k: int(k.split("-")[1])
    )
    assert done.result["fidelity"]  # the report is part of the result
