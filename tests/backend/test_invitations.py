"""Invitations over real HTTP: a one-time link, only its hash stored, seven days, a password set on accepting;
an existing account must be signed in to accept; used, withdrawn and expired links all say the same."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select, text, update

from backend.db.models import Invitation, Membership, Organisation, User
from tests.backend.conftest import Backend, make_backend, stop_backend
from tests.backend.test_roles import OTHER, PASSWORD, TENANT, Member, add_member
from tests.backend.test_sessions import csrf_of

NEW_PASSWORD = "a long enough new password"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, issuer, sandbox_site) -> Iterator[dict]:
    backend = make_backend(tmp_path_factory.mktemp("invitations"), issuer)
    backend.install(TENANT, sandbox_site.url)
    backend.install(OTHER, sandbox_site.url)
    add_member(backend, "admin@example.com", "admin")
    add_member(backend, "elsewhere@example.com", "admin", tenant=OTHER)
    yield {"backend": backend, "admin": Member(backend, "admin@example.com")}
    stop_backend(backend)


def invite(admin: Member, email: str, role: str = "operator") -> dict:
    r = admin.api("POST", f"/organisations/{TENANT}/invitations", json={"email": email, "role": role})
    assert r.status_code == 201, r.text
    return r.json()


def accept_page(backend: Backend, url: str, browser: requests.Session | None = None):
    browser = browser or requests.Session()
    page = browser.get(url, timeout=10)
    return browser, page


def accept(browser: requests.Session, url: str, page: str, **fields) -> requests.Response:
    """POST the accept form with the page's CSRF token (a page without a form: the sign-in page's)."""
    if 'name="csrf_token"' not in page:
        page = browser.get(url.split("/invite/")[0] + "/login", timeout=10).text
    return browser.post(url, data={"csrf_token": csrf_of(page), **fields}, allow_redirects=False, timeout=10)


def rows(backend: Backend, model) -> int:
    with backend.app.extensions["keepstone"].db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_an_invitation_is_accepted_once_with_a_new_password(stack):
    backend, admin = stack["backend"], stack["admin"]
    made = invite(admin, "New.Person@Example.com")
    assert made["email"] == "new.person@example.com" and made["role"] == "operator"
    expires = datetime.fromisoformat(made["expires"]) - datetime.fromisoformat(made["created"])
    assert expires == timedelta(days=7)
    token, url = made["token"], made["accept_url"]
    assert url.endswith(f"/invite/{token}")
    with backend.app.extensions["keepstone"].db.session() as s:
        stored = s.scalar(select(Invitation).where(Invitation.public_id == made["id"]))
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
        dump = " ".join(str(v) for v in s.execute(text("SELECT * FROM invitations")).one())
        assert token not in dump  # only the hash is kept
    listed = admin.api("GET", f"/organisations/{TENANT}/invitations").json()["items"]
    assert [i["id"] for i in listed] == [made["id"]] and "token" not in listed[0]

    users = rows(backend, User)
    browser, page = accept_page(backend, url)
    assert page.status_code == 200 and "Join Acme" in page.text and "operator" in page.text
    short = accept(browser, url, page.text, name="New", password="short", password2="short")
    assert short.status_code == 422 and "at least 12 characters" in short.text
    differ = accept(browser, url, page.text, name="New", password=NEW_PASSWORD, password2=NEW_PASSWORD + "x")
    assert differ.status_code == 422 and "the two passwords differ" in differ.text
    assert rows(backend, User) == users  # a bad submit stores nothing

    done = accept(browser, url, page.text, name="New Person", password=NEW_PASSWORD, password2=NEW_PASSWORD)
    assert done.status_code == 303, done.text
    with backend.app.extensions["keepstone"].db.session() as s:  # the acceptance is audited, its token not
        events = " ".join(str(r) for r in s.execute(text("SELECT * FROM audit_events")).all())
        assert "member" in events  # the acceptance was recorded
        assert token not in events
    status = browser.get(f"{backend.url}/api/v1/organisations/{TENANT}/status", timeout=10)
    assert status.status_code == 200  # signed in, a member
    members = admin.api("GET", f"/organisations/{TENANT}/members").json()["items"]
    assert {"name": "New Person", "email": "new.person@example.com", "role": "operator"}.items() <= next(
        m for m in members if m["email"] == "new.person@example.com"
    ).items()

    again_browser, again = accept_page(backend, url)
    assert again.status_code == 404 and "This link does not work" in again.text
    replay = accept(again_browser, url, again.text, name="X", password=NEW_PASSWORD, password2=NEW_PASSWORD)
    assert replay.status_code == 404
    assert rows(backend, User) == users + 1
    assert admin.api("GET", f"/organisations/{TENANT}/invitations").json()["items"] == []

    # The new account signs in with its password like any other.
    assert (
        Member(backend, "new.person@example.com", NEW_PASSWORD)
        .api("GET", f"/organisations/{TENANT}/plans")
        .status_code
        == 200
    )


def test_expired_withdrawn_and_made_up_links_do_not_work(stack):
    backend, admin = stack["backend"], stack["admin"]
    old = invite(admin, "late@example.com")
    with backend.app.extensions["keepstone"].db.session() as s:
        s.execute(
            update(Invitation)
            .where(Invitation.public_id == old["id"])
            .values(expires=datetime.now(UTC) - timedelta(seconds=1))
        )
        s.commit()
    withdrawn = invite(admin, "gone@example.com")
    assert admin.api("DELETE", f"/organisations/{TENANT}/invitations/{withdrawn['id']}").status_code == 204
    for url in (old["accept_url"], withdrawn["accept_url"], f"{backend.url}/invite/{'x' * 43}"):
        browser, page = accept_page(backend, url)
        assert page.status_code == 404 and "This link does not work" in page.text
        assert (
            accept(browser, url, page.text, password=NEW_PASSWORD, password2=NEW_PASSWORD).status_code == 404
        )
    with backend.app.extensions["keepstone"].db.session() as s:
        assert s.scalar(select(User).where(User.email.in_(["late@example.com", "gone@example.com"]))) is None


def test_inviting_again_withdraws_the_earlier_link(stack):
    admin = stack["admin"]
    first, second = invite(admin, "twice@example.com"), invite(admin, "twice@example.com", "viewer")
    assert requests.get(first["accept_url"], timeout=10).status_code == 404
    assert requests.get(second["accept_url"], timeout=10).status_code == 200


def test_an_existing_account_must_sign_in_to_accept_and_keeps_its_password(stack):
    backend, admin = stack["backend"], stack["admin"]
    made = invite(admin, "elsewhere@example.com", "viewer")
    url = made["accept_url"]
    browser, page = accept_page(backend, url)
    assert page.status_code == 200 and "has a Keepstone account already" in page.text
    forced = accept(
        browser, url, page.text, password="attacker's new password", password2="attacker's new password"
    )
    assert forced.status_code == 422
    with backend.app.extensions["keepstone"].db.session() as s:
        user = s.scalar(select(User).where(User.email == "elsewhere@example.com"))
        org = s.scalar(select(Organisation).where(Organisation.cloud_id == TENANT))
        assert (
            s.scalar(
                select(Membership).where(Membership.user_id == user.id, Membership.organisation_id == org.id)
            )
            is None
        )
    # Signed in as that account, the same link makes it a member; its password is untouched.
    member = Member(backend, "elsewhere@example.com")
    _, page = accept_page(backend, url, member.http)
    joined = accept(member.http, url, page.text)
    assert joined.status_code == 303
    assert member.api("GET", f"/organisations/{TENANT}/status").status_code == 200
    assert member.api("POST", f"/organisations/{TENANT}/runs", json={}).status_code == 403  # a viewer here
    Member(backend, "elsewhere@example.com")  # still signs in with PASSWORD
    assert PASSWORD


def test_bad_invitations_are_refused_and_store_nothing(stack):
    backend, admin = stack["backend"], stack["admin"]
    before = rows(backend, Invitation)
    for body in ({"email": "not an email"}, {"email": "a@example.com", "role": "owner"}, {"role": "viewer"}):
        r = admin.api("POST", f"/organisations/{TENANT}/invitations", json=body)
        assert r.status_code == 422, body
    member = admin.api("POST", f"/organisations/{TENANT}/invitations", json={"email": "admin@example.com"})
    assert member.status_code == 409 and member.json()["error"]["code"] == "member"
    form = admin.form(f"/settings/invitations?org={TENANT}", email="nope", role="viewer")
    assert form.status_code == 422 and 'id="err-email"' in form.text
    assert rows(backend, Invitation) == before
    shown = admin.form(f"/settings/invitations?org={TENANT}", email="ui@example.com", role="viewer")
    assert shown.status_code == 201 and "/invite/" in shown.text and "shown only now" in shown.text
    assert rows(backend, Invitation) == before + 1
