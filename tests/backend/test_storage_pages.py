"""The Storages pages and the run detail page over real HTTP (no browser): each role gets what its least
role allows and a refused write changes nothing; a bad form stores nothing and names the field; another
organisation's storage or run is a 404 like one that does not exist."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import func, select

from backend.db.models import Organisation, Plan, Run, StorageRecord
from tests.backend.conftest import Backend, make_backend, stop_backend
from tests.backend.test_roles import Member, add_member
from tests.backend.test_storages import s3_client
from tests.storage.servers import s3_auth_server  # noqa: F401  (the `s3_server_with_auth` fixture)

TENANT = "13131313-2222-4333-8444-555555555555"
OTHER = "14141414-2222-4333-8444-555555555555"


@pytest.fixture
def backend(tmp_path, issuer, sandbox_site) -> Iterator[Backend]:
    b = make_backend(tmp_path, issuer, storage_http_hosts="127.0.0.1")  # moto's S3 server on loopback
    b.install(TENANT, sandbox_site.url)
    b.install(OTHER, sandbox_site.url)
    for role in ("viewer", "operator", "admin"):
        add_member(b, f"{role}@example.com", role, TENANT)
    yield b
    stop_backend(b)


def storage(backend: Backend, tenant: str, name: str, path: str) -> dict:
    r = backend.call(
        "POST",
        f"/api/v1/organisations/{tenant}/storages",
        tenant,
        json={"name": name, "kind": "local", "location": {"path": path}},
    )
    assert r.status_code == 201, r.text
    return r.json()


def submit(member: Member, url: str, **fields) -> requests.Response:
    """POST a form as the browser does (Member.form takes `path` itself, a field name here)."""
    return member.http.post(
        member.backend.url + url,
        data={"csrf_token": member.csrf, **fields},
        allow_redirects=False,
        timeout=30,
    )


def count(backend: Backend) -> int:
    with backend.app.extensions["keepstone"].db.session() as s:
        return s.scalar(select(func.count()).select_from(StorageRecord))


def test_each_role_gets_what_its_least_role_allows(backend):
    mine = storage(backend, TENANT, "Primary", "primary")
    viewer, operator = Member(backend, "viewer@example.com"), Member(backend, "operator@example.com")
    listing = viewer.page("/storages")
    assert listing.status_code == 200 and "Primary" in listing.text
    assert "Add storage" not in listing.text and "Test connection" not in listing.text
    assert viewer.page("/storages/new").status_code == 403
    assert viewer.page(f"/storages/{mine['id']}/edit").status_code == 403
    before = count(backend)
    refused = viewer.form(f"/storages/{mine['id']}/delete")
    assert refused.status_code == 403 and "Viewers cannot edit storages" in refused.text
    assert viewer.form(f"/storages/{mine['id']}/test").status_code == 403
    tested = operator.form(f"/storages/{mine['id']}/test")
    assert tested.status_code == 200 and "Connection works" in tested.text
    assert operator.form(f"/storages/{mine['id']}/delete").status_code == 403
    assert count(backend) == before


def test_a_bad_form_stores_nothing_and_names_the_field(backend):
    admin = Member(backend, "admin@example.com")
    before = count(backend)
    r = submit(
        admin, "/storages/new", name="Escape", kind="local", path="../outside", immutability_mode="none"
    )
    assert r.status_code == 422 and 'id="err-path"' in r.text and 'aria-invalid="true"' in r.text
    r = submit(admin, "/storages/new", name="Locked", kind="local", path="ok", immutability_mode="governance")
    assert r.status_code == 422 and 'id="err-retain_days"' in r.text
    assert count(backend) == before
    made = submit(admin, "/storages/new", name="Good", kind="local", path="good", immutability_mode="none")
    assert made.status_code == 303 and count(backend) == before + 1
    again = submit(admin, "/storages/new", name="Good", kind="local", path="other", immutability_mode="none")
    assert again.status_code == 409 and "already used" in again.text and count(backend) == before + 1


def test_another_organisations_storage_and_run_are_not_there(backend):
    theirs = storage(backend, OTHER, "Theirs", "theirs")
    run = backend.call("POST", f"/api/v1/organisations/{OTHER}/runs", OTHER, json={}).json()
    admin = Member(backend, "admin@example.com")
    for path in (f"/storages/{theirs['id']}/edit", f"/storages/{theirs['id']}/delete", f"/runs/{run['id']}"):
        assert admin.page(path).status_code == 404, path
    assert admin.page("/storages/stg_aaaaaaaaaaaaaaaaaaaa/edit").status_code == 404
    assert admin.form(f"/storages/{theirs['id']}/delete").status_code == 404
    assert count(backend) == 1


def test_an_active_runs_page_rereads_itself_and_a_finished_one_does_not(backend):
    with backend.app.extensions["keepstone"].db.session() as s:
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == TENANT))
        plan = s.scalar(select(Plan).where(Plan.organisation_id == org.id))
        active = Run(
            organisation_id=org.id,
            plan_id=plan.id,
            trigger="schedule",
            state="running",
            progress={"projects_done": 1, "projects_total": 3},
        )
        done = Run(organisation_id=org.id, plan_id=plan.id, trigger="manual", state="failed", error="boom")
        s.add_all([active, done])
        s.commit()
        ids = active.public_id, done.public_id
    viewer = Member(backend, "viewer@example.com")
    running = viewer.page(f"/runs/{ids[0]}").text
    assert 'data-live="on"' in running and "Running: 1 of 3 projects done." in running
    assert "Schedule" in running
    finished = viewer.page(f"/runs/{ids[1]}").text
    assert 'data-live="off"' in finished and "boom" in finished and "Backup now" in finished


@pytest.mark.s3
def test_an_s3_storage_tested_from_its_form_names_the_reason_and_keeps_its_secret(
    backend, s3_server_with_auth
):
    s3 = s3_server_with_auth
    bucket = f"ui-{uuid.uuid4().hex[:10]}"
    s3_client(s3).create_bucket(Bucket=bucket)
    admin = Member(backend, "admin@example.com")
    form = {
        "name": "Moto",
        "kind": "s3",
        "endpoint": s3.endpoint,
        "bucket": bucket,
        "s3_prefix": "acme",
        "signing_region": "us-east-1",
        "access_key_id": s3.access_key_id,
        "secret_access_key": "not-the-secret",
        "immutability_mode": "none",
    }
    wrong = submit(admin, "/storages/new", action="test", **form)
    assert wrong.status_code == 200 and "Authentication" in wrong.text
    assert 'id="err-secret_access_key"' in wrong.text and "not-the-secret" not in wrong.text
    missing = submit(
        admin,
        "/storages/new",
        action="test",
        **{**form, "bucket": "no-such-bucket", "secret_access_key": s3.secret_access_key},
    )
    assert "Missing container or bucket" in missing.text and 'id="err-bucket"' in missing.text
    good = submit(
        admin, "/storages/new", action="test", **{**form, "secret_access_key": s3.secret_access_key}
    )
    assert "Connection works" in good.text and count(backend) == 0  # a test stores nothing
    saved = submit(
        admin, "/storages/new", action="save", **{**form, "secret_access_key": s3.secret_access_key}
    )
    assert saved.status_code == 303 and count(backend) == 1
    [record] = backend.call("GET", f"/api/v1/organisations/{TENANT}/storages", TENANT).json()["items"]
    edit = admin.page(f"/storages/{record['id']}/edit").text
    assert s3.secret_access_key not in edit and s3.access_key_id not in edit
    assert "saved, enter a new one to replace" in edit
    # blank secrets keep the stored ones: the saved storage still connects
    kept = submit(
        admin,
        f"/storages/{record['id']}/edit",
        action="test",
        **{**form, "access_key_id": "", "secret_access_key": ""},
    )
    assert "Connection works" in kept.text
