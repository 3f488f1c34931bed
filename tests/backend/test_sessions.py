"""Browser sessions over real HTTP: logout revokes on the server, idle and absolute lifetimes, Secure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from backend.db.models import BrowserSession, Membership, Organisation, Run, User
from tests.backend.conftest import make_backend, stop_backend

TENANT = "11111111-2222-4333-8444-555555555555"
PASSWORD = "correct horse battery staple"


def csrf_of(page: str) -> str:
    return page.split('name="csrf_token" value="')[1].split('"')[0]


def add_local_user(backend, email: str = "ops@example.com", tenant: str | None = TENANT) -> None:
    """A user of the login form (as `keepstone backend create-user` makes one), member of `tenant`."""
    with backend.app.extensions["keepstone"].db.session() as s:
        user = User(email=email, display_name=email, password_hash=generate_password_hash(PASSWORD))
        s.add(user)
        s.flush()
        if tenant is not None:
            org = s.scalar(select(Organisation).where(Organisation.cloud_id == tenant))
            s.add(Membership(user_id=user.id, organisation_id=org.id))
        s.commit()


def sign_in(backend, how: str) -> requests.Session:
    """A browser signed in by the SSO hand-off or by the login form."""
    browser = requests.Session()
    if how == "sso":
        token = backend.issuer.token(
            TENANT, typ="sso-handoff+jwt", aud="keepstone-backend-sso", sub="jira-1", name="Ada"
        )
        r = browser.post(
            backend.url + "/sso",
            data={"token": token},
            headers={"Origin": backend.issuer.server.url},
            allow_redirects=False,
            timeout=10,
        )
    else:
        add_local_user(backend)
        csrf = csrf_of(browser.get(backend.url + "/login", timeout=10).text)
        r = browser.post(
            backend.url + "/login",
            data={"email": "ops@example.com", "password": PASSWORD, "csrf_token": csrf},
            allow_redirects=False,
            timeout=10,
        )
    assert r.status_code == 303, r.text
    return browser


def records(backend) -> list[BrowserSession]:
    with backend.app.extensions["keepstone"].db.session() as s:
        return list(s.scalars(select(BrowserSession)))


def run_count(backend) -> int:
    with backend.app.extensions["keepstone"].db.session() as s:
        return s.scalar(select(func.count()).select_from(Run))


def replay(cookies, backend, probe: str) -> requests.Response:
    """Send one request with a captured cookie jar (a fresh client: nothing but the cookie)."""
    client = requests.Session()
    client.cookies.update(cookies)
    if probe == "status":
        return client.get(f"{backend.url}/api/v1/organisations/{TENANT}/status", timeout=10)
    if probe == "dashboard":
        return client.get(backend.url + "/", allow_redirects=False, timeout=10)
    raise AssertionError(probe)


@pytest.mark.parametrize("how", ["sso", "password"])
@pytest.mark.parametrize(
    ("probe", "before", "after"),
    [("status", 200, 401), ("dashboard", 200, 302)],
)
def test_a_cookie_captured_before_logout_is_refused_after_it(
    sqlite_backend, sandbox_site, how, probe, before, after
):
    sqlite_backend.install(TENANT, sandbox_site.url)
    browser = sign_in(sqlite_backend, how)
    captured = requests.utils.dict_from_cookiejar(browser.cookies)
    assert replay(captured, sqlite_backend, probe).status_code == before

    page = browser.get(sqlite_backend.url + "/", timeout=10).text
    out = browser.post(
        sqlite_backend.url + "/logout", data={"csrf_token": csrf_of(page)}, allow_redirects=False, timeout=10
    )
    assert out.status_code == 303

    r = replay(captured, sqlite_backend, probe)
    assert r.status_code == after, r.text
    if after == 302:
        assert "/login" in r.headers["Location"]
    (record,) = records(sqlite_backend)
    assert record.revoked_at is not None  # revoked on the server, not only forgotten by the browser


def test_a_write_with_a_captured_cookie_and_csrf_token_is_refused_after_logout(sqlite_backend, sandbox_site):
    sqlite_backend.install(TENANT, sandbox_site.url)
    browser = sign_in(sqlite_backend, "sso")
    csrf = csrf_of(browser.get(sqlite_backend.url + "/", timeout=10).text)
    captured = requests.utils.dict_from_cookiejar(browser.cookies)
    browser.post(sqlite_backend.url + "/logout", data={"csrf_token": csrf}, timeout=10)

    attacker = requests.Session()
    attacker.cookies.update(captured)
    r = attacker.post(
        f"{sqlite_backend.url}/api/v1/organisations/{TENANT}/runs",
        json={},
        headers={"X-CSRFToken": csrf},
        timeout=10,
    )
    assert r.status_code == 401, r.text
    assert run_count(sqlite_backend) == 0


MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("case", "created_ago", "seen_ago", "revoked", "delete", "ok", "touched"),
    [
        ("fresh", timedelta(0), timedelta(seconds=10), False, False, True, False),
        ("active, last seen 29 min ago", timedelta(hours=2), 29 * MINUTE, False, False, True, True),
        ("idle 31 min", timedelta(hours=2), 31 * MINUTE, False, False, False, False),
        (
            "older than 12 h, seen just now",
            timedelta(hours=12, minutes=1),
            timedelta(0),
            False,
            False,
            False,
            False,
        ),
        ("revoked", timedelta(0), timedelta(0), True, False, False, False),
        ("record gone", timedelta(0), timedelta(0), False, True, False, False),
    ],
)
def test_session_lifetimes(
    sqlite_backend, sandbox_site, case, created_ago, seen_ago, revoked, delete, ok, touched
):
    sqlite_backend.install(TENANT, sandbox_site.url)
    browser = sign_in(sqlite_backend, "sso")
    now = datetime.now(UTC)
    db = sqlite_backend.app.extensions["keepstone"].db
    with db.session() as s:
        record = s.scalars(select(BrowserSession)).one()
        record.created, record.last_seen = now - created_ago, now - seen_ago
        record.revoked_at = now if revoked else None
        if delete:
            s.delete(record)
        s.commit()
    before = records(sqlite_backend)

    r = browser.get(f"{sqlite_backend.url}/api/v1/organisations/{TENANT}/status", timeout=10)
    assert r.status_code == (200 if ok else 401), (case, r.text)
    after = records(sqlite_backend)
    if touched:  # the idle clock restarts, but last-seen is written at most once a minute
        assert after[0].last_seen.replace(tzinfo=UTC) > now - MINUTE
    else:
        assert [(x.id, x.last_seen, x.revoked_at) for x in after] == [
            (x.id, x.last_seen, x.revoked_at) for x in before
        ]


def test_lifetimes_come_from_the_configuration(tmp_path, issuer, sandbox_site):
    backend = make_backend(tmp_path, issuer, session_idle_seconds=60, session_absolute_seconds=3600)
    try:
        backend.install(TENANT, sandbox_site.url)
        browser = sign_in(backend, "sso")
        with backend.app.extensions["keepstone"].db.session() as s:
            record = s.scalars(select(BrowserSession)).one()
            record.last_seen = datetime.now(UTC) - timedelta(seconds=90)  # idle past 60 s, not past 30 min
            s.commit()
        r = browser.get(f"{backend.url}/api/v1/organisations/{TENANT}/status", timeout=10)
        assert r.status_code == 401
    finally:
        stop_backend(backend)


def test_a_new_sign_in_gets_a_new_session_id(sqlite_backend, sandbox_site):
    """A session id planted before sign-in (fixation) is not the one that gets signed in."""
    sqlite_backend.install(TENANT, sandbox_site.url)
    first = sign_in(sqlite_backend, "sso")
    second = sign_in(sqlite_backend, "sso")
    assert first.cookies["session"] != second.cookies["session"]
    assert len({r.id for r in records(sqlite_backend)}) == 2


# (cookie_secure, transport, X-Forwarded-Proto sent, trusted proxies) -> Secure flag, HSTS
SECURE_TABLE = [
    ("on", "http", None, 0, True, False),
    ("on", "https", None, 0, True, True),
    ("auto", "http", None, 0, False, False),
    ("auto", "https", None, 0, True, True),
    ("auto", "http", "https", 0, False, False),  # a header from anyone is not a proxy's word
    ("auto", "http", "https", 1, True, True),  # the documented proxy setting: now it is
    ("off", "https", None, 0, False, True),
]


@pytest.mark.parametrize(("mode", "transport", "forwarded", "proxies", "secure", "hsts"), SECURE_TABLE)
def test_the_session_cookie_is_secure_over_https(
    tmp_path, issuer, tls_cert, mode, transport, forwarded, proxies, secure, hsts
):
    backend = make_backend(
        tmp_path,
        issuer,
        cookie_secure=mode,
        trusted_proxies=proxies,
        ssl_context=tls_cert if transport == "https" else None,
    )
    try:
        headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
        r = requests.get(backend.url + "/login", headers=headers, verify=tls_cert[0], timeout=10)
        assert r.status_code == 200 and backend.url.startswith(transport + "://")
        cookie = r.headers["Set-Cookie"]
        assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("; Secure" in cookie) is secure, cookie
        assert ("Strict-Transport-Security" in r.headers) is hsts
        if hsts:
            assert r.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    finally:
        stop_backend(backend)


def test_the_cookie_is_secure_by_default(tmp_path, monkeypatch):
    from backend.config import Config

    monkeypatch.delenv("KEEPSTONE_COOKIE_SECURE", raising=False)
    assert Config(data_dir=tmp_path, secret_key="k" * 40).cookie_secure == "on"
    with pytest.raises(ValueError):
        Config(data_dir=tmp_path, secret_key="k" * 40, cookie_secure="yes")
