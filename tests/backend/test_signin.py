"""Sign-in over real HTTP: throttled per account and per address (memory and Redis storage), the same
password check whether or not the email has an account, and the SSO hand-off's Origin check."""

from __future__ import annotations

import socket
import uuid

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from backend.db.models import BrowserSession, UsedToken, User
from tests.backend.conftest import make_backend, stop_backend
from tests.backend.test_sessions import TENANT, csrf_of

PASSWORD = "correct horse battery staple"
REDIS = ("127.0.0.1", 6379)


def redis_reachable() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


def storage_url(kind: str) -> str:
    if kind == "redis":
        if not redis_reachable():
            pytest.skip("Redis is not reachable on 127.0.0.1:6379")
        return "redis://127.0.0.1:6379/0"
    return "memory://"


def add_user(backend, email: str, password_hash: str | None = "") -> None:
    with backend.app.extensions["keepstone"].db.session() as s:
        hashed = generate_password_hash(PASSWORD) if password_hash == "" else password_hash
        s.add(User(email=email, display_name=email, password_hash=hashed))
        s.commit()


def session_count(backend) -> int:
    with backend.app.extensions["keepstone"].db.session() as s:
        return s.scalar(select(func.count()).select_from(BrowserSession))


class Browser:
    """One client address (X-Forwarded-For through the one trusted proxy) with its own cookies."""

    def __init__(self, backend, address: str = "203.0.113.1") -> None:
        self.backend = backend
        self.http = requests.Session()
        self.http.headers["X-Forwarded-For"] = address
        self.csrf = csrf_of(self.http.get(backend.url + "/login", timeout=10).text)

    def login(self, email: str, password: str) -> requests.Response:
        return self.http.post(
            self.backend.url + "/login",
            data={"email": email, "password": password, "csrf_token": self.csrf},
            allow_redirects=False,
            timeout=10,
        )


@pytest.fixture(params=["memory", "redis"])
def throttled(request, tmp_path, issuer):
    """A backend behind one trusted proxy with small sign-in limits: 3 an account, 5 an address."""
    backend = make_backend(
        tmp_path,
        issuer,
        trusted_proxies=1,
        ratelimit_storage_url=storage_url(request.param),
        login_limit_per_account="3 per minute",
        login_limit_per_address="5 per minute",
    )
    backend.storage = request.param
    add_user(backend, "ada@example.com")
    yield backend
    stop_backend(backend)
    if request.param == "redis":
        import redis

        client = redis.Redis(*REDIS)
        for key in client.scan_iter(f"*/{backend.config.ratelimit_key_prefix}/*"):
            client.delete(key)


def assert_throttled(r: requests.Response) -> None:
    assert r.status_code == 429, r.text
    assert 0 < int(r.headers["Retry-After"]) <= 61
    assert r.headers["Content-Type"].startswith("text/html")
    assert "Too many attempts" in r.text and "/static/backend/app.css" in r.text  # the styled page
    assert r.headers["Cache-Control"] == "no-store"


def test_sign_in_is_throttled_per_account_from_any_address(throttled, hash_checks):
    for i in range(3):
        assert Browser(throttled, f"203.0.113.{i + 1}").login("ada@example.com", "wrong").status_code == 401
    # The fourth attempt on the account is refused before the password is looked at, even the right one.
    assert_throttled(Browser(throttled, "203.0.113.9").login("ada@example.com", PASSWORD))
    assert_throttled(Browser(throttled, "203.0.113.9").login(" ADA@example.com ", PASSWORD))
    assert session_count(throttled) == 0 and len(hash_checks) == 3
    # Another account from the same addresses is not affected.
    assert Browser(throttled, "203.0.113.1").login("bob@example.com", "wrong").status_code == 401
    if throttled.storage == "redis":
        import redis

        keys = list(redis.Redis(*REDIS).scan_iter(f"*/{throttled.config.ratelimit_key_prefix}/*"))
        assert keys and not any(b"ada" in k for k in keys)  # counted in Redis, without the email


def test_sign_in_is_throttled_per_address_across_accounts(throttled):
    browser = Browser(throttled, "198.51.100.7")
    for i in range(5):
        assert browser.login(f"user{i}@example.com", "wrong").status_code == 401
    assert_throttled(browser.login("ada@example.com", PASSWORD))
    assert session_count(throttled) == 0
    # Another address signs in to the same account at once.
    assert Browser(throttled, "198.51.100.8").login("ada@example.com", PASSWORD).status_code == 303
    assert session_count(throttled) == 1


def test_redis_counts_are_shared_by_every_backend_process(tmp_path, issuer):
    url = storage_url("redis")
    prefix = f"keepstone-test-{uuid.uuid4().hex[:8]}"
    one, two = (
        make_backend(
            tmp_path / name,
            issuer,
            trusted_proxies=1,
            ratelimit_storage_url=url,
            ratelimit_key_prefix=prefix,
            login_limit_per_account="2 per minute",
        )
        for name in ("one", "two")
    )
    try:
        for _ in range(2):
            assert Browser(one).login("ada@example.com", "wrong").status_code == 401
        assert_throttled(Browser(two).login("ada@example.com", "wrong"))
    finally:
        stop_backend(one)
        stop_backend(two)
        import redis

        client = redis.Redis(*REDIS)
        for key in client.scan_iter(f"*/{prefix}/*"):
            client.delete(key)


@pytest.fixture
def hash_checks(monkeypatch) -> list[str]:
    """Record the stored hash of every password check the real login view makes (the real check runs)."""
    import backend.ui.views as views

    seen: list[str] = []
    real = views.check_password_hash

    def counted(pwhash: str, password: str) -> bool:
        seen.append(pwhash)
        return real(pwhash, password)

    monkeypatch.setattr(views, "check_password_hash", counted)
    return seen


@pytest.mark.parametrize(
    ("case", "email", "password"),
    [
        ("account, wrong password", "ada@example.com", "wrong"),
        ("no such account", "nobody@example.com", "wrong"),
        ("account without a password (SSO only)", "sso@example.com", "wrong"),
        ("empty email", "", "wrong"),
        ("account, right password", "ada@example.com", PASSWORD),
    ],
)
def test_the_password_check_runs_whether_or_not_the_email_has_an_account(
    sqlite_backend, hash_checks, case, email, password
):
    add_user(sqlite_backend, "ada@example.com")
    add_user(sqlite_backend, "sso@example.com", password_hash=None)
    with sqlite_backend.app.extensions["keepstone"].db.session() as s:
        real_hash = s.scalar(select(User.password_hash).where(User.email == "ada@example.com"))
    r = Browser(sqlite_backend).login(email, password)
    ok = password == PASSWORD
    assert r.status_code == (303 if ok else 401), (case, r.text)
    if not ok:
        assert "Wrong email or password." in r.text  # one answer for every failure
    assert len(hash_checks) == 1, case
    # The same method and cost as a real hash (e.g. scrypt:32768:8:1), so the check takes as long.
    assert hash_checks[0].split("$")[0] == real_hash.split("$")[0]
    assert (hash_checks[0] == real_hash) is (email == "ada@example.com")
    assert session_count(sqlite_backend) == (1 if ok else 0)


CONNECTOR = "connector"  # stands for the issuer's (the connector's) own origin in the table

# (Origin, Referer) -> status. None: the header is not sent.
ORIGIN_TABLE = [
    ("the connector's page", CONNECTOR, None, 303),
    ("Referer only, from the connector", None, CONNECTOR + "/panel/more", 303),
    ("a foreign site", "https://evil.example", None, 403),
    ("foreign Origin, connector Referer", "https://evil.example", CONNECTOR + "/panel/more", 403),
    ("Referer only, foreign", None, "https://evil.example/page", 403),
    ("Origin null (sandboxed/no-referrer page)", "null", None, 403),
    ("neither header", None, None, 403),
    ("the connector's host, another port", "other-port", None, 403),
    ("the connector's host over https", "https-scheme", None, 403),
    ("a look-alike host", "look-alike", None, 403),
]


def _value(value: str | None, connector: str) -> str | None:
    if value is None:
        return None
    host_port = connector.split("://")[1]
    port = int(host_port.split(":")[1])
    return {
        "other-port": f"http://127.0.0.1:{port + 1}",
        "https-scheme": f"https://{host_port}",
        "look-alike": f"http://127.0.0.1.evil.example:{port}",
    }.get(value, value.replace(CONNECTOR, connector))


def handoff(issuer) -> str:
    return issuer.token(TENANT, typ="sso-handoff+jwt", aud="keepstone-backend-sso", sub="jira-1", name="Ada")


@pytest.mark.parametrize(("case", "origin", "referer", "status"), ORIGIN_TABLE)
def test_sso_hand_off_only_from_the_connectors_page(
    sqlite_backend, sandbox_site, issuer, case, origin, referer, status
):
    sqlite_backend.install(TENANT, sandbox_site.url)
    connector = issuer.server.url
    headers = {}
    if origin is not None:
        headers["Origin"] = _value(origin, connector)
    if referer is not None:
        headers["Referer"] = _value(referer, connector)
    token = handoff(issuer)
    browser = requests.Session()
    r = browser.post(
        sqlite_backend.url + "/sso", data={"token": token}, headers=headers, allow_redirects=False, timeout=10
    )
    assert r.status_code == status, (case, r.text)
    signed_in = browser.get(sqlite_backend.url + "/", allow_redirects=False, timeout=10).status_code
    if status == 303:
        assert signed_in == 200 and session_count(sqlite_backend) == 1
        return
    assert r.json()["error"]["code"] == "bad_origin"
    assert "Set-Cookie" not in r.headers and signed_in == 302
    assert session_count(sqlite_backend) == 0
    with sqlite_backend.app.extensions["keepstone"].db.session() as s:
        assert s.scalar(select(func.count()).select_from(UsedToken)) == 0  # the token was not even spent
        assert s.scalar(select(func.count()).select_from(User)) == 0
    # The same token still works from the connector's page: the refused request changed nothing.
    again = requests.post(
        sqlite_backend.url + "/sso",
        data={"token": token},
        headers={"Origin": connector},
        allow_redirects=False,
        timeout=10,
    )
    assert again.status_code == 303


def test_the_connector_origin_can_be_configured(tmp_path, issuer, sandbox_site):
    backend = make_backend(tmp_path, issuer, connector_origin="https://connector.example.com")
    try:
        backend.install(TENANT, sandbox_site.url)

        def post(origin: str) -> int:
            return requests.post(
                backend.url + "/sso",
                data={"token": handoff(issuer)},
                headers={"Origin": origin},
                allow_redirects=False,
                timeout=10,
            ).status_code

        assert post(issuer.server.url) == 403  # the JWKS URL's origin no longer counts
        assert post("https://connector.example.com") == 303
        assert post("https://connector.example.com:443") == 303  # the same origin, spelled with its port
    finally:
        stop_backend(backend)
