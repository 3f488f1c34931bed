"""A management-UI stack for browser tests: a sandbox site, the backend on 127.0.0.1 with two tenants
(the first with the sandbox admin's API token stored), and a local user who is a member of both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from backend.db.models import Membership, Organisation, User
from keepstone.servers import RunningServer
from tests.backend.conftest import Backend, Issuer, make_backend, stop_backend
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, start_sandbox

TENANT = "aaaaaaaa-1111-4222-8333-444444444444"
SECOND = "bbbbbbbb-1111-4222-8333-444444444444"
EMAIL, PASSWORD = "ada@example.com", "correct horse battery staple"


@dataclass
class UiStack:
    backend: Backend
    site: RunningServer

    @property
    def url(self) -> str:
        return self.backend.url


def add_member_only(backend: Backend, email: str, tenants: list[str], name: str = "") -> None:
    """A local user (as `keepstone backend create-user` makes one), a member of `tenants`."""
    with backend.app.extensions["keepstone"].db.session() as s:
        user = User(email=email, display_name=name or email, password_hash=generate_password_hash(PASSWORD))
        s.add(user)
        s.flush()
        for cloud_id in tenants:
            org = s.scalar(select(Organisation).where(Organisation.cloud_id == cloud_id))
            s.add(Membership(user_id=user.id, organisation_id=org.id))
        s.commit()


@pytest.fixture(name="ui_stack")
def ui_stack_fixture(tmp_path: Path) -> Iterator[UiStack]:
    issuer = Issuer()
    site = start_sandbox(projects=3, issues_per_project=12, seed=7, corrupt_share=0.0)
    backend = make_backend(tmp_path, issuer)
    try:
        backend.call(
            "PUT",
            f"/api/v1/organisations/{TENANT}",
            TENANT,
            json={"site_url": site.url, "display_name": "Acme Engineering", "time_zone": "Europe/Berlin"},
        ).raise_for_status()
        backend.call(
            "PUT",
            f"/api/v1/organisations/{SECOND}",
            SECOND,
            json={"site_url": site.url, "display_name": "Globex Support", "time_zone": "UTC"},
        ).raise_for_status()
        answer = backend.call(
            "PUT",
            f"/api/v1/organisations/{TENANT}/account",
            TENANT,
            json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
        )
        assert answer.status_code == 200, answer.text
        add_member_only(backend, EMAIL, [TENANT, SECOND], "Ada Lovelace")
        yield UiStack(backend, site)
    finally:
        stop_backend(backend)
        site.stop()
        issuer.server.stop()


def sign_in(page, stack: UiStack) -> None:
    page.goto(stack.url + "/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + "/")
