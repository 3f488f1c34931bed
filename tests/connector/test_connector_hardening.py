"""Issue 12, connector: each defence as a table of attacks over real HTTP, with the answer expected and
a check that nothing was stored or changed (tenant rows, the backend's organisations and runs)."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response

from connector.app import create_app
from connector.config import ConnectorConfig
from connector.qsh import qsh
from keepstone.servers import serve_in_thread
from keepstone.web import MAX_BODY_BYTES
from tests.connector.connector_stack import start_stack

DEEP_JSON = "[" * 100_000 + "]" * 100_000
OVERSIZED = b'{"x": "' + b"a" * MAX_BODY_BYTES + b'"}'
FORGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _state(stack) -> tuple:
    """Everything a refused request must leave alone."""
    from connector.tenants import Tenant

    with stack.tenants().sessions() as s:
        rows = sorted(
            (t.cloud_id, t.client_key, t.sealed_secret, t.site_url, t.installed, t.enabled)
            for t in s.query(Tenant)
        )
    orgs, runs = stack.backend_state()
    return rows, orgs, runs


def _atlassian(stack):
    return stack.site.server.app.extensions["atlassian"]


def _install_token(stack, path: str = "/connect/installed", *, kid=None, key=None) -> str:
    info, at = stack.info(), _atlassian(stack)
    now = int(time.time())
    claims = {
        "iss": info["clientKey"],
        "aud": stack.url,
        "iat": now,
        "exp": now + 120,
        "qsh": qsh("POST", path),
    }
    return jwt.encode(
        claims, key or at.install_key, algorithm="RS256", headers={"kid": kid or at.install_kid}
    )


def _fit(stack) -> str:
    return requests.post(stack.site.url + "/_sandbox/apps/keepstone/fit", json={}, timeout=10).json()["token"]


def _post(
    stack, path: str, body: bytes | str, token: str | None, scheme: str = "JWT", ctype="application/json"
):
    headers = {"Content-Type": ctype}
    if token:
        headers["Authorization"] = f"{scheme} {token}"
    return requests.request(
        "PUT" if path.endswith(("/schedule", "/account")) else "POST",
        stack.url + path,
        data=body,
        headers=headers,
        timeout=30,
    )


def _assert_json_error(r: requests.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json")
    error = r.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)


# --- 1. the signed install is verified before its body is read ---------------------------------------

BODIES = {
    "not JSON": b"<xml>not json</xml>",
    "empty": b"",
    "JSON array": b"[1, 2]",
    "deep JSON": DEEP_JSON.encode(),
    "oversized": OVERSIZED,
}
BAD_TOKENS = {
    "no token": lambda s, path: None,
    "forged signature": lambda s, path: _install_token(s, path, key=FORGER),
    "unknown kid": lambda s, path: _install_token(s, path, kid=str(uuid.uuid4())),
    "qsh of the other event": lambda s, path: _install_token(
        s, "/connect/uninstalled" if path == "/connect/installed" else "/connect/installed"
    ),
}


@pytest.mark.parametrize("path", ["/connect/installed", "/connect/uninstalled"])
def test_signed_lifecycle_checks_the_token_before_the_body(installed, path):
    """Every bad token is a 401 whatever the body (not JSON, deep, oversized): the body is never read."""
    before = _state(installed)
    for token_name, make in BAD_TOKENS.items():
        token = make(installed, path)
        for body_name, body in BODIES.items():
            r = _post(installed, path, body, token)
            assert r.status_code == 401, (token_name, body_name, r.status_code, r.text[:200])
            _assert_json_error(r, 401)
    assert _state(installed) == before


@pytest.mark.parametrize(
    ("path", "body_name", "status"),
    [
        (path, body, status)
        for path in ("/connect/installed", "/connect/uninstalled")
        for body, status in (
            ("not JSON", 400),
            ("empty", 400),
            ("JSON array", 400),
            ("deep JSON", 400),
            ("oversized", 413),
        )
    ],
)
def test_signed_lifecycle_with_a_valid_token_refuses_a_bad_body(installed, path, body_name, status):
    before = _state(installed)
    r = _post(installed, path, BODIES[body_name], _install_token(installed, path))
    _assert_json_error(r, status)
    assert _state(installed) == before


# --- 2. a flood of random kids costs a bounded number of key-server fetches ---------------------------


@pytest.fixture
def counted_key_server(tmp_path):
    """A key server in front of the sandbox's that counts the fetches it serves."""
    hits: list[float] = []
    lock = threading.Lock()
    upstream: dict[str, str] = {}
    app = Flask("keys")

    @app.get("/<kid>")
    def key(kid: str):
        with lock:
            hits.append(time.monotonic())
        r = requests.get(f"{upstream['url']}/connect-install-keys/{kid}", timeout=10)
        return Response(r.content, status=r.status_code, mimetype=r.headers.get("Content-Type"))

    server = serve_in_thread(app)
    stack = start_stack(tmp_path, connector_options={"connect_install_keys_url": server.url})
    upstream["url"] = stack.site.url
    try:
        yield stack, hits
    finally:
        stack.stop()
        server.stop()


def test_a_flood_of_random_kids_makes_a_bounded_number_of_key_fetches(counted_key_server):
    stack, hits = counted_key_server
    stack.install()
    assert len(hits) == 1  # the real kid, fetched once and cached
    config = stack.app.extensions["connector"].config
    before = _state(stack)
    kids = [str(uuid.uuid4()) for _ in range(200)]
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(
                lambda kid: _post(stack, "/connect/installed", b"{}", _install_token(stack, kid=kid)), kids
            )
        )
    elapsed = time.monotonic() - started
    assert {r.status_code for r in answers} == {401}
    fetched = len(hits) - 1
    bound = config.install_key_fetch_burst + config.install_key_fetch_rate * elapsed + 1
    assert fetched <= bound, (fetched, bound, elapsed)
    assert fetched >= 1  # the budget lets unknown kids through, a few at a time
    # The same kids again are not fetched again (remembered or refused), and the real install still works.
    again = len(hits)
    for kid in kids[:20]:
        assert _post(stack, "/connect/installed", b"{}", _install_token(stack, kid=kid)).status_code == 401
    assert len(hits) - again <= config.install_key_fetch_burst
    assert _state(stack) == before
    stack.install()


# --- 3. shared secrets sealed at rest, files 0600 ------------------------------------------------------


def test_the_shared_secret_is_sealed_in_the_database_and_bound_to_its_tenant(installed):
    info = installed.info()
    db = Path(installed.tenants().engine.url.database)
    raw = db.read_bytes()
    assert info["sharedSecret"].encode() not in raw
    with sqlite3.connect(db) as c:
        (stored,) = c.execute(
            "select shared_secret from tenants where cloud_id = ?", (info["cloudId"],)
        ).fetchone()
    assert stored.startswith("aesgcm1:") and info["sharedSecret"] not in stored
    assert installed.tenants().get(info["cloudId"]).shared_secret == info["sharedSecret"]
    # A sealed secret copied onto another tenant's row does not open there (the cloudId is bound in).
    with sqlite3.connect(db) as c:
        c.execute(
            "insert into tenants (cloud_id, site_url, client_key, shared_secret, installed, enabled, updated_at)"
            " values ('other-cloud', 'https://evil.example', 'other-client', ?, 1, 1, '2026-01-01')",
            (stored,),
        )
    assert installed.tenants().get("other-cloud").shared_secret is None
    forged = jwt.encode(
        {"iss": "other-client", "iat": int(time.time()), "exp": int(time.time()) + 60, "qsh": "context-qsh"},
        info["sharedSecret"],
        algorithm="HS256",
    )
    r = requests.get(
        installed.url + "/panel/api/status", headers={"Authorization": f"JWT {forged}"}, timeout=10
    )
    _assert_json_error(r, 401)


def test_plaintext_secrets_of_an_older_connector_are_sealed_at_start(installed, tmp_path):
    info = installed.info()
    db = Path(installed.tenants().engine.url.database)
    with sqlite3.connect(db) as c:  # as an older connector stored it
        c.execute(
            "update tenants set shared_secret = ? where cloud_id = ?", (info["sharedSecret"], info["cloudId"])
        )
    assert info["sharedSecret"].encode() in db.read_bytes()
    config = installed.app.extensions["connector"].config
    restarted = create_app(
        ConnectorConfig(
            base_url=config.base_url,
            backend_url=config.backend_url,
            database_url=config.database_url,
            secret_key=config.secret_key,
            forge_jwks_url=config.forge_jwks_url,
            connect_install_keys_url=config.connect_install_keys_url,
        )
    )
    with sqlite3.connect(db) as c:
        (stored,) = c.execute(
            "select shared_secret from tenants where cloud_id = ?", (info["cloudId"],)
        ).fetchone()
    assert stored.startswith("aesgcm1:")
    assert (
        restarted.extensions["connector"].tenants.get(info["cloudId"]).shared_secret == info["sharedSecret"]
    )
    with sqlite3.connect(db) as c:
        c.execute("vacuum")  # the plaintext lingers in free pages until sqlite reuses them
    assert info["sharedSecret"].encode() not in db.read_bytes()
    # The running connector reads the sealed row as before.
    ctx = {"Authorization": f"JWT {installed.context_token()}"}
    assert requests.get(installed.url + "/panel/api/status", headers=ctx, timeout=10).status_code == 200


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("existing", [False, True], ids=["created", "found 0644"])
def test_key_and_database_files_are_0600(tmp_path, existing):
    files = {
        "database": tmp_path / "connector.db",
        "signing key": tmp_path / "connector-key.pem",
        "secret key": tmp_path / "connector-secret.key",
    }
    if existing:  # as an older connector left them
        create_app(
            ConnectorConfig(database_url=f"sqlite:///{files['database']}", key_file=str(files["signing key"]))
        )
        for f in files.values():
            f.chmod(0o644)
    old = os.umask(0o022)
    try:
        create_app(
            ConnectorConfig(database_url=f"sqlite:///{files['database']}", key_file=str(files["signing key"]))
        )
    finally:
        os.umask(old)
    assert {name: oct(_mode(f)) for name, f in files.items()} == {name: "0o600" for name in files}


def test_the_secret_key_can_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KEEPSTONE_CONNECTOR_SECRET_KEY", "from-the-environment-" + "s" * 32)
    config = ConnectorConfig.from_env(database_url=f"sqlite:///{tmp_path}/c.db")
    assert config.secret_key == "from-the-environment-" + "s" * 32
    assert not (tmp_path / "connector-secret.key").exists()


# --- 4. every route answers the same with and without a trailing slash ---------------------------------

# (method, path without slash, credential kind) for every route of the connector.
ROUTES = [
    ("GET", "/healthz", None),
    ("GET", "/atlassian-connect.json", None),
    ("GET", "/openapi.json", None),
    ("GET", "/.well-known/jwks.json", None),
    ("GET", "/panel", "page"),
    ("POST", "/panel/more", "form"),
    ("GET", "/panel/api/status", "context"),
    ("PUT", "/panel/api/schedule", "context"),
    ("POST", "/panel/api/backup", "context"),
    ("GET", "/panel/api/account", "context"),
    ("PUT", "/panel/api/account", "context"),
    ("GET", "/panel/api/runs/run_missing", "context"),
    ("GET", "/forge/panel/status", "fit"),
    ("PUT", "/forge/panel/schedule", "fit"),
    ("POST", "/forge/panel/backup", "fit"),
    ("GET", "/forge/panel/account", "fit"),
    ("PUT", "/forge/panel/account", "fit"),
    ("GET", "/forge/panel/runs/run_missing", "fit"),
    ("POST", "/forge/panel/more", "fit"),
    ("GET", "/forge/handoff/TICKET", "ticket"),
    ("POST", "/forge/events", "fit"),
    ("POST", "/connect/installed", "install"),
    ("POST", "/connect/uninstalled", "install"),
    ("POST", "/connect/enabled", "jira"),
    ("POST", "/connect/disabled", "jira"),
    ("GET", "/static/panel/panel.css", None),
]
RULE_OF = {
    "/panel/api/status": "/panel/api/<action>",
    "/panel/api/schedule": "/panel/api/<action>",
    "/panel/api/backup": "/panel/api/<action>",
    "/panel/api/account": "/panel/api/<action>",
    "/panel/api/runs/run_missing": "/panel/api/runs/<path:run_id>",
    "/forge/panel/status": "/forge/panel/<action>",
    "/forge/panel/schedule": "/forge/panel/<action>",
    "/forge/panel/backup": "/forge/panel/<action>",
    "/forge/panel/account": "/forge/panel/<action>",
    "/forge/panel/runs/run_missing": "/forge/panel/runs/<path:run_id>",
    "/forge/handoff/TICKET": "/forge/handoff/<ticket>",
    "/connect/enabled": "/connect/<any(enabled, disabled):event>",
    "/connect/disabled": "/connect/<any(enabled, disabled):event>",
    "/static/panel/panel.css": "/static/panel/<path:filename>",
}


def test_the_route_table_covers_every_route(installed):
    rules = {(m, r.rule) for r in installed.app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}}
    covered = {(m, RULE_OF.get(p, p)) for m, p, _ in ROUTES}
    assert rules <= covered, rules - covered


def _ticket(stack) -> str:
    """A fresh one-time More features ticket (from the Forge panel's /forge/panel/more)."""
    r = requests.post(
        stack.url + "/forge/panel/more",
        json={},
        headers={"Authorization": f"Bearer {_fit(stack)}"},
        timeout=10,
    )
    return r.json()["url"].rsplit("/", 1)[1]


def _request(stack, method: str, path: str, kind: str | None, slash: bool, *, credential: bool):
    if kind == "ticket":
        path = path.replace("TICKET", _ticket(stack) if credential else "unknown-ticket")
    target = path + ("/" if slash else "") + "?x=y"
    headers, data = {}, None
    body = {"days": ["mon"], "hour": 3} if path.endswith("schedule") else {}
    if kind == "form":
        data = {"jwt": stack.context_token()} if credential else {"x": "1"}
        body = None
    elif credential and kind == "context":
        headers["Authorization"] = f"JWT {stack.context_token()}"
    elif credential and kind == "page":
        # Jira signs the canonical request, which has no trailing slash, whichever form it requests.
        headers["Authorization"] = f"JWT {stack.token(method, path, 'x=y')}"
    elif credential and kind == "jira":
        headers["Authorization"] = f"JWT {stack.token(method, path, 'x=y')}"
    elif credential and kind == "fit":
        headers["Authorization"] = f"Bearer {_fit(stack)}"
        if path == "/forge/events":
            body = {"eventType": "avi:forge:upgraded:app", "context": {"cloudId": stack.info()["cloudId"]}}
    elif credential and kind == "install":
        info, at = stack.info(), _atlassian(stack)
        now = int(time.time())
        claims = {"iss": info["clientKey"], "aud": stack.url, "iat": now, "exp": now + 60}
        claims["qsh"] = qsh(method, f"{path}?x=y")
        headers["Authorization"] = "JWT " + jwt.encode(
            claims, at.install_key, "RS256", headers={"kid": at.install_kid}
        )
        body = {"clientKey": str(uuid.uuid4())}  # valid token, foreign clientKey: refused after the check
    kwargs = {"data": data} if kind == "form" else {"json": body} if method != "GET" else {}
    return requests.request(method, stack.url + target, headers=headers, timeout=30, **kwargs)


def _shape(r: requests.Response):
    ctype = r.headers.get("Content-Type", "")
    if ctype.startswith("application/json") and r.status_code >= 400:
        return r.status_code, r.json()["error"]["code"]
    return r.status_code, ctype.split(";")[0]


@pytest.mark.parametrize("credential", [False, True], ids=["no credential", "valid credential"])
def test_every_route_answers_the_same_with_a_trailing_slash(installed, credential):
    for method, path, kind in ROUTES:
        if credential and kind is None:
            continue
        plain = _request(installed, method, path, kind, slash=False, credential=credential)
        slashed = _request(installed, method, path, kind, slash=True, credential=credential)
        if credential and path.endswith("/backup") and _shape(slashed) == (409, "conflict"):
            continue  # the first call started a run that may still be going: the action was reached
        assert _shape(slashed) == _shape(plain), (
            method,
            path,
            _shape(plain),
            _shape(slashed),
            slashed.text[:200],
        )
        assert plain.status_code != 500
        if kind is not None and not credential:
            assert plain.status_code == 401, (method, path, plain.status_code)
        if credential and kind in ("page", "context", "fit", "jira", "form", "ticket"):
            # The credential was accepted: whatever the action then answers, it is not a refusal.
            assert plain.status_code not in (401, 403) and plain.status_code < 500, (method, path, plain.text)


def test_a_jira_page_request_with_a_trailing_slash_renders_the_panel(installed):
    token = installed.token("GET", "/panel", "x=y")
    r = requests.get(f"{installed.url}/panel/?x=y&jwt={token}", timeout=10)
    assert r.status_code == 200 and "data-token" in r.text


# --- 5. headers on every answer, errors included -------------------------------------------------------

JSON_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
ANSWERS = {
    # name: (method, path, body, credential kind, expected status, JSON API answer?)
    "health": ("GET", "/healthz", None, None, 200, True),
    "descriptor": ("GET", "/atlassian-connect.json", None, None, 200, True),
    "openapi": ("GET", "/openapi.json", None, None, 200, True),
    "jwks": ("GET", "/.well-known/jwks.json", None, None, 200, False),
    "static": ("GET", "/static/panel/panel.css", None, None, 200, False),
    "panel": ("GET", "/panel", None, "page", 200, False),
    "panel no token": ("GET", "/panel", None, None, 401, True),
    "status": ("GET", "/panel/api/status", None, "context", 200, True),
    "status no token": ("GET", "/panel/api/status", None, None, 401, True),
    "bad schedule": ("PUT", "/panel/api/schedule", b'{"days": []}', "context", 400, True),
    "deep schedule": ("PUT", "/panel/api/schedule", DEEP_JSON.encode(), "context", 400, True),
    "oversized schedule": ("PUT", "/panel/api/schedule", OVERSIZED, "context", 413, True),
    "unknown action": ("GET", "/panel/api/nothing", None, "context", 404, True),
    "unknown route": ("GET", "/nothing/here", None, None, 404, True),
    "wrong method": ("DELETE", "/healthz", None, None, 405, True),
    "install no token": ("POST", "/connect/installed", b"{}", None, 401, True),
    "forge no token": ("POST", "/forge/events", b"{}", None, 401, True),
    "forge event": ("POST", "/forge/events", b'{"eventType": "avi:forge:upgraded:app"}', "fit", 200, True),
}


def _send(stack, method, path, body, kind):
    headers = {"Content-Type": "application/json"}
    if kind == "context":
        headers["Authorization"] = f"JWT {stack.context_token()}"
    elif kind == "page":
        headers["Authorization"] = f"JWT {stack.token(method, path)}"
    elif kind == "fit":
        headers["Authorization"] = f"Bearer {_fit(stack)}"
    return requests.request(method, stack.url + path, data=body, headers=headers, timeout=30)


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_every_answer_carries_the_safe_headers(installed, name):
    method, path, body, kind, status, api = ANSWERS[name]
    r = _send(installed, method, path, body, kind)
    assert r.status_code == status, r.text[:300]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    csp = r.headers["Content-Security-Policy"]
    if name == "panel":
        assert f"frame-ancestors {installed.site.url}" in csp and "default-src 'self'" in csp
    else:
        assert csp == JSON_CSP
    if api:
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.headers["Cache-Control"] == "no-store"
    if status >= 400:
        _assert_json_error(r, status)
    assert "Strict-Transport-Security" not in r.headers  # plain http here


def test_hsts_when_the_connector_is_served_over_https(tmp_path):
    app = create_app(
        ConnectorConfig(base_url="https://connector.example", database_url=f"sqlite:///{tmp_path}/c.db")
    )
    with serve_in_thread(app) as server:
        for path, status in (("/healthz", 200), ("/nothing", 404), ("/panel/api/status", 401)):
            r = requests.get(server.url + path, timeout=10)
            assert r.status_code == status
            assert r.headers["Strict-Transport-Security"].startswith("max-age=")
            assert r.headers["X-Content-Type-Options"] == "nosniff"


# --- 6. deep JSON and oversized bodies on every JSON or POST route: never a 500 ------------------------

# (method, path, credential kind) -> (status for deep JSON, status for an oversized body), with credentials.
BODY_ROUTES = {
    ("POST", "/connect/installed", "install"): (400, 413),
    ("POST", "/connect/uninstalled", "install"): (400, 413),
    ("POST", "/connect/disabled", "jira"): (204, 204),  # the body is not read
    ("POST", "/connect/enabled", "jira"): (204, 204),  # (and the tenant ends enabled as it began)
    ("POST", "/forge/events", "fit"): (400, 413),
    ("PUT", "/panel/api/schedule", "context"): (400, 413),
    ("POST", "/panel/api/backup", "context"): (400, 413),
    ("PUT", "/panel/api/account", "context"): (400, 413),
    ("PUT", "/forge/panel/schedule", "fit"): (400, 413),
    ("POST", "/forge/panel/backup", "fit"): (400, 413),
    ("PUT", "/forge/panel/account", "fit"): (400, 413),
    ("POST", "/forge/panel/more", "fit"): (400, 413),
    ("POST", "/panel/more", "form"): (401, 413),  # the form carries the token: none in a JSON body
}


def _credential(stack, method: str, path: str, kind: str) -> dict:
    if kind == "install":
        return {"Authorization": f"JWT {_install_token(stack, path)}"}
    if kind == "jira":
        return {"Authorization": f"JWT {stack.token(method, path)}"}
    if kind == "fit":
        return {"Authorization": f"Bearer {_fit(stack)}"}
    if kind == "context":
        return {"Authorization": f"JWT {stack.context_token()}"}
    return {}


@pytest.mark.parametrize("credential", [False, True], ids=["no credential", "valid credential"])
@pytest.mark.parametrize("body_name", ["deep JSON", "oversized"])
def test_deep_and_oversized_bodies_never_cause_a_500(installed, body_name, credential):
    before = _state(installed)
    for (method, path, kind), expected in BODY_ROUTES.items():
        headers = {
            "Content-Type": "application/x-www-form-urlencoded" if kind == "form" else "application/json"
        }
        if credential:
            headers.update(_credential(installed, method, path, kind))
        r = requests.request(
            method, installed.url + path, data=BODIES[body_name], headers=headers, timeout=60
        )
        status = expected[body_name == "oversized"] if credential else 401
        if kind == "form" and body_name == "oversized":
            status = 413  # the token is inside the form: the form must be read to find it
        if status == 204:
            assert r.status_code == 204, (path, r.status_code, r.text[:200])
        else:
            _assert_json_error(r, status)
    assert _state(installed) == before


def test_an_unknown_panel_action_is_a_401_before_it_is_a_404(installed):
    for prefix in ("/panel/api", "/forge/panel"):
        _assert_json_error(requests.get(installed.url + prefix + "/nothing", timeout=10), 401)
    ctx = {"Authorization": f"JWT {installed.context_token()}"}
    _assert_json_error(requests.get(installed.url + "/panel/api/nothing", headers=ctx, timeout=10), 404)
