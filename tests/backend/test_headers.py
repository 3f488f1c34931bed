"""Security headers on every answer of the backend, errors included; styled error pages outside the API.

A test-only route (registered before the server starts) raises a real exception, so the 500 is a real one.
"""

from __future__ import annotations

import logging

import pytest
import requests
from flask import Flask

from backend.auth.roles import PUBLIC_ROLE, least_role
from tests.backend.conftest import make_backend, stop_backend
from tests.backend.test_sessions import TENANT, sign_in

SECRET = "db-password-hunter2-in-the-exception"
BIG = b"x" * (2 * 1024 * 1024)


def boom_routes(app: Flask) -> None:
    @least_role(PUBLIC_ROLE)  # a route without a rule would be refused (403) before it could fail
    def boom():
        raise RuntimeError(f"connection failed: {SECRET}")

    app.add_url_rule("/_test/boom", "test_boom", boom)
    app.add_url_rule("/api/v1/_test/boom", "test_api_boom", boom)


@pytest.fixture(scope="module")
def live(tmp_path_factory, issuer, sandbox_site):
    """One backend for the whole table (the requests below change nothing that the next one reads)."""
    backend = make_backend(tmp_path_factory.mktemp("headers"), issuer, routes=boom_routes)
    backend.install(TENANT, sandbox_site.url)
    r = backend.call(
        "PUT",
        f"/api/v1/organisations/{TENANT}/account",
        TENANT,
        json={"email": "admin@example.com", "api_token": "sandbox-admin-token"},
    )
    assert r.status_code in (200, 201), r.text
    backend.browser = sign_in(backend, "sso")
    yield backend
    stop_backend(backend)


# name -> (method, path, how: anonymous | service | browser, extra request options, status, kind)
CASES = {
    "UI page": ("GET", "/login", "anonymous", {}, 200, "html"),
    "signed-in UI page": ("GET", "/", "browser", {}, 200, "html"),
    "static file": ("GET", "/static/backend/app.css", "anonymous", {}, 200, "static"),
    "UI 404": ("GET", "/no/such/page", "anonymous", {}, 404, "html"),
    "UI 405": ("GET", "/logout", "anonymous", {}, 405, "html"),
    "UI 400 (no CSRF token)": ("POST", "/login", "anonymous", {"data": {"email": "a@b.c"}}, 400, "html"),
    "UI 401 (wrong password)": ("POST", "/login", "form", {}, 401, "html"),
    "UI 413": ("POST", "/login", "form-big", {}, 413, "html"),
    "UI 500": ("GET", "/_test/boom", "anonymous", {}, 500, "html"),
    "API answer: the account": ("GET", f"/api/v1/organisations/{TENANT}/account", "service", {}, 200, "json"),
    "API answer: status (session)": (
        "GET",
        f"/api/v1/organisations/{TENANT}/status",
        "browser",
        {},
        200,
        "json",
    ),
    "API 401": ("GET", f"/api/v1/organisations/{TENANT}/status", "anonymous", {}, 401, "json"),
    "API 404": ("GET", "/api/v1/no/such/thing", "service", {}, 404, "json"),
    "API 405": ("DELETE", f"/api/v1/organisations/{TENANT}/status", "service", {}, 405, "json"),
    "API 413": ("PUT", f"/api/v1/organisations/{TENANT}", "service", {"data": BIG}, 413, "json"),
    "API 422": ("PUT", f"/api/v1/organisations/{TENANT}", "service", {"json": {"site_url": 5}}, 422, "json"),
    "API 500": ("GET", "/api/v1/_test/boom", "anonymous", {}, 500, "json"),
    "SSO 403 (foreign origin)": (
        "POST",
        "/sso",
        "anonymous",
        {"headers": {"Origin": "https://evil.example"}},
        403,
        "json",
    ),
    "SSO 405": ("GET", "/sso", "anonymous", {}, 405, "json"),
}


def send(live, method: str, path: str, how: str, options: dict) -> requests.Response:
    options = {
        **options,
        "headers": dict(options.get("headers", {})),
        "timeout": 30,
        "allow_redirects": False,
    }
    if how == "service":
        options["headers"].update(live.issuer.headers(TENANT))
        if "data" in options:
            options["headers"]["Content-Type"] = "application/json"
        return requests.request(method, live.url + path, **options)
    if how == "browser":
        return live.browser.request(method, live.url + path, **options)
    if how.startswith("form"):  # a real form post: the page's CSRF token and cookie
        browser = requests.Session()
        page = browser.get(live.url + "/login", timeout=10).text
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        data = {"email": "a@b.c", "password": "wrong", "csrf_token": csrf}
        if how == "form-big":
            data["filler"] = BIG.decode()
        return browser.request(method, live.url + path, data=data, **options)
    return requests.request(method, live.url + path, **options)


@pytest.mark.parametrize("name", list(CASES))
def test_every_answer_carries_the_security_headers(live, name):
    method, path, how, options, status, kind = CASES[name]
    r = send(live, method, path, how, options)
    assert r.status_code == status, (name, r.text[:300])
    h = r.headers
    assert h["X-Content-Type-Options"] == "nosniff"
    csp = h["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert h["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert h["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in h  # plain http here; https: test_sessions' Secure table
    if kind == "static":
        assert h.get("Cache-Control") != "no-store"  # the stylesheet may be cached
        return
    assert h["Cache-Control"] == "no-store"
    if kind == "json":
        assert h["Content-Type"].startswith("application/json")
        if status >= 400:
            assert set(r.json()["error"]) >= {"code", "message"}
    else:
        assert h["Content-Type"].startswith("text/html")
        assert "/static/backend/app.css" in r.text  # our base.html, not Werkzeug's page
        assert "Werkzeug" not in r.text and "<title>" in r.text
        if status >= 400 and status != 401:
            assert f'data-status="{status}"' in r.text
    if status == 405:  # HTML page and JSON error alike
        assert "Allow" in h


@pytest.mark.parametrize("path", ["/_test/boom", "/api/v1/_test/boom"])
def test_a_real_500_shows_no_traceback_and_no_secret_but_is_logged(live, path, caplog):
    with caplog.at_level(logging.ERROR):
        r = requests.get(live.url + path, timeout=10)
    assert r.status_code == 500
    for leak in (SECRET, "Traceback", "RuntimeError", "connection failed", "boom", ".py"):
        assert leak not in r.text, leak
    if path.startswith("/api/"):
        assert r.json()["error"]["code"] == "error"
    else:
        assert "Something went wrong" in r.text and "Sign out" not in r.text
    assert any(SECRET in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)  # the log has it


def test_the_test_routes_are_not_in_a_normal_backend(tmp_path, issuer):
    backend = make_backend(tmp_path, issuer)
    try:
        assert requests.get(backend.url + "/_test/boom", timeout=10).status_code == 404
    finally:
        stop_backend(backend)
