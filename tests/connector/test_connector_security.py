"""Every forged, stale, misdirected or replayed token is refused by a real request, and nothing changes."""

from __future__ import annotations

import re
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connector.qsh import qsh
from tests.connector.connector_stack import start_stack


def _state(stack) -> tuple:
    """Everything a refused request must leave alone: tenant rows and the backend's organisations and runs."""
    with stack.tenants().sessions() as s:
        from connector.tenants import Tenant

        rows = sorted(
            (t.cloud_id, t.client_key, t.shared_secret, t.installed, t.enabled) for t in s.query(Tenant)
        )
    orgs, runs = stack.backend_state()
    return rows, orgs, runs


def _atlassian(stack):
    return stack.site.server.app.extensions["atlassian"]


def _install_token(stack, *, key=None, kid=None, alg="RS256", **claims) -> str:
    info = stack.info()
    now = int(time.time())
    body = {"iss": info["clientKey"], "aud": stack.url, "iat": now, "exp": now + 180}
    body["qsh"] = qsh("POST", "/connect/installed")
    body.update(claims)
    at = _atlassian(stack)
    return jwt.encode(body, key or at.install_key, algorithm=alg, headers={"kid": kid or at.install_kid})


def _install_body(stack) -> dict:
    info = stack.info()
    return {
        "key": "keepstone",
        "clientKey": info["clientKey"],
        "sharedSecret": "attacker-secret-" + "x" * 40,
        "baseUrl": stack.site.url,
        "eventType": "installed",
        "productType": "jira",
    }


def _post_install(stack, token: str, body: dict | None = None) -> requests.Response:
    return requests.post(
        stack.url + "/connect/installed",
        json=body or _install_body(stack),
        headers={"Authorization": f"JWT {token}"},
        timeout=10,
    )


def _public_pem(stack) -> bytes:
    return (
        _atlassian(stack)
        .install_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _alg_none(claims: dict) -> str:
    return jwt.encode(claims, None, algorithm="none")


# --- signed install (RS256 + kid) -------------------------------------------------------------------

INSTALL_ATTACKS = {
    "forged signature": lambda s: _install_token(
        s, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ),
    "expired": lambda s: _install_token(s, iat=int(time.time()) - 900, exp=int(time.time()) - 600),
    "wrong aud": lambda s: _install_token(s, aud="https://evil.example"),
    "wrong iss": lambda s: _install_token(s, iss=str(uuid.uuid4())),
    "wrong qsh": lambda s: _install_token(s, qsh=qsh("POST", "/connect/uninstalled")),
    "alg none": lambda s: _alg_none(
        {
            "iss": s.info()["clientKey"],
            "aud": s.url,
            "exp": int(time.time()) + 60,
            "iat": int(time.time()),
            "qsh": qsh("POST", "/connect/installed"),
        }
    ),
    "HS/RS confusion": lambda s: _hs_with_public_key(s),
    "unknown kid": lambda s: _install_token(s, kid=str(uuid.uuid4())),
    "path kid": lambda s: _install_token(s, kid="../../x"),
    "url kid": lambda s: _install_token(s, kid="http://169.254.169.254/latest"),
    "context qsh": lambda s: _install_token(s, qsh="context-qsh"),
}


def _hs_with_public_key(stack) -> str:
    claims = {
        "iss": stack.info()["clientKey"],
        "aud": stack.url,
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "qsh": qsh("POST", "/connect/installed"),
    }
    # PyJWT refuses PEM keys as HMAC secrets, which is the point; sign by hand as an attacker would.
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": _atlassian(stack).install_kid}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(_public_pem(stack), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


@pytest.mark.parametrize("attack", sorted(INSTALL_ATTACKS))
def test_forged_signed_install_is_refused_and_keeps_the_secret(installed, attack):
    before = _state(installed)
    token = INSTALL_ATTACKS[attack](installed)
    r = _post_install(installed, token)
    assert r.status_code in (401, 403), r.text
    assert r.json()["error"]["code"] in ("invalid_token", "forbidden")
    assert _state(installed) == before


def test_iss_must_match_the_client_key_in_the_body(installed):
    before = _state(installed)
    body = {**_install_body(installed), "clientKey": str(uuid.uuid4())}
    r = _post_install(installed, _install_token(installed), body)
    assert r.status_code == 401 and "clientKey" in r.json()["error"]["message"]
    assert _state(installed) == before


def test_malicious_kid_never_reaches_the_key_server(installed):
    for kid in ("../../x", "http://127.0.0.1:1/x", "%2e%2e%2fx", str(uuid.uuid4()).upper() + "/.."):
        r = _post_install(installed, _install_token(installed, kid=kid))
        assert r.status_code == 401
        assert r.json()["error"]["message"] == "kid must be a UUID"


def test_unknown_kid_is_fetched_once_then_remembered(installed):
    keys = installed.app.extensions["connector"].connect.install_keys
    kid = str(uuid.uuid4())
    before = keys.fetches
    for _ in range(3):
        assert _post_install(installed, _install_token(installed, kid=kid)).status_code == 401
    assert keys.fetches == before + 1


# --- page and API calls (HS256 + qsh) ----------------------------------------------------------------

PAGE_QUERY = "xdm_e=x&lic=none"


def _page(stack, token: str) -> requests.Response:
    return requests.get(f"{stack.url}/panel?{PAGE_QUERY}&jwt={token}", timeout=10)


PAGE_ATTACKS = {
    "forged signature": (lambda s: s.token("GET", "/panel", PAGE_QUERY, secret="f" * 64), 401),
    "expired": (
        lambda s: s.token(
            "GET", "/panel", PAGE_QUERY, iat=int(time.time()) - 900, exp=int(time.time()) - 600
        ),
        401,
    ),
    "wrong iss": (lambda s: s.token("GET", "/panel", PAGE_QUERY, iss=str(uuid.uuid4())), 401),
    "wrong qsh": (lambda s: s.token("GET", "/panel", "xdm_e=y&lic=none"), 401),
    "alg none": (
        lambda s: _alg_none(
            {
                "iss": s.info()["clientKey"],
                "iat": int(time.time()),
                "exp": int(time.time()) + 60,
                "qsh": qsh("GET", "/panel?" + PAGE_QUERY),
            }
        ),
        401,
    ),
    "RS256 instead of HS256": (
        lambda s: s.token("GET", "/panel", PAGE_QUERY, secret=_atlassian(s).install_key, alg="RS256"),
        401,
    ),
    "context token on a page": (lambda s: s.context_token(), 403),
    "no qsh": (
        lambda s: jwt.encode(
            {"iss": s.info()["clientKey"], "iat": int(time.time()), "exp": int(time.time()) + 60},
            s.info()["sharedSecret"],
            algorithm="HS256",
        ),
        401,
    ),
}


@pytest.mark.parametrize("attack", sorted(PAGE_ATTACKS))
def test_bad_page_token_is_refused(installed, attack):
    make, status = PAGE_ATTACKS[attack]
    r = _page(installed, make(installed))
    assert r.status_code == status, r.text
    assert "data-token" not in r.text


def test_valid_page_token_renders_the_panel(installed):
    r = _page(installed, installed.token("GET", "/panel", PAGE_QUERY))
    assert r.status_code == 200 and "data-token" in r.text


def test_context_token_on_a_lifecycle_endpoint_is_refused(installed):
    before = _state(installed)
    r = requests.post(
        installed.url + "/connect/disabled",
        json={},
        headers={"Authorization": f"JWT {installed.context_token()}"},
        timeout=10,
    )
    assert r.status_code == 403
    assert _state(installed) == before


def test_panel_action_without_a_token_is_refused_and_changes_nothing(installed):
    before = _state(installed)
    for method, path, body in (
        ("PUT", "/panel/api/schedule", {"days": ["mon"], "hour": 5}),
        ("POST", "/panel/api/backup", {}),
        ("PUT", "/panel/api/account", {"email": "a@b.c", "api_token": "x"}),
    ):
        r = requests.request(method, installed.url + path, json=body, timeout=10)
        assert r.status_code == 401
    assert _state(installed) == before


def test_cross_site_form_posts_are_refused(installed):
    """CSRF: a form on another site can send cookies but not the JWT-bound context token."""
    before = _state(installed)
    origin = {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"}
    assert (
        requests.post(installed.url + "/panel/more", data="x=1", headers=origin, timeout=10).status_code
        == 401
    )
    assert (
        requests.post(installed.url + "/panel/api/backup", data="x=1", headers=origin, timeout=10).status_code
        == 401
    )
    stale = installed.context_token(iat=int(time.time()) - 3600, exp=int(time.time()) - 1800)
    r = requests.post(
        installed.url + "/panel/more", data={"jwt": stale}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 401
    assert _state(installed) == before


# --- Forge invocation tokens -------------------------------------------------------------------------


def _fit(stack, **claims) -> str:
    return requests.post(stack.site.url + "/_sandbox/apps/keepstone/fit", json=claims, timeout=10).json()[
        "token"
    ]


FORGE_ATTACKS = {
    "forged signature": lambda s: jwt.encode(
        {
            "iss": "forge/invocation-token",
            "aud": s.info()["forgeAppId"],
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "context": {"cloudId": s.info()["cloudId"]},
        },
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": s.info()["forgeKid"]},
    ),
    "expired": lambda s: _fit(
        s, iat=int(time.time()) - 900, nbf=int(time.time()) - 900, exp=int(time.time()) - 600
    ),
    "wrong aud": lambda s: _fit(s, aud="ari:cloud:ecosystem::app/someone-else"),
    "wrong iss": lambda s: _fit(s, iss="forge/not-invocation"),
    "alg none": lambda s: _alg_none(
        {
            "iss": "forge/invocation-token",
            "aud": s.info()["forgeAppId"],
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "context": {"cloudId": s.info()["cloudId"]},
        }
    ),
    "unknown kid": lambda s: jwt.encode(
        {
            "iss": "forge/invocation-token",
            "aud": s.info()["forgeAppId"],
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "context": {"cloudId": s.info()["cloudId"]},
        },
        _atlassian(s).forge_key,
        algorithm="RS256",
        headers={"kid": "../../x"},
    ),
    "no cloudId": lambda s: _fit(s, context={}),
}


@pytest.mark.parametrize("attack", sorted(FORGE_ATTACKS))
def test_bad_forge_token_is_refused(installed, attack):
    before = _state(installed)
    token = FORGE_ATTACKS[attack](installed)
    for method, path in (("GET", "/forge/panel/status"), ("POST", "/forge/events")):
        r = requests.request(
            method,
            installed.url + path,
            headers={"Authorization": f"Bearer {token}"},
            json={"eventType": "avi:forge:uninstalled:app"},
            timeout=10,
        )
        assert r.status_code == 401, (path, r.text)
    assert _state(installed) == before


# --- tenants, framing and the SSO hand-off -------------------------------------------------------------


@pytest.fixture
def two_tenants(tmp_path, installed):
    """A second Jira site that installed the same connector."""
    from sandbox.atlassian import AtlassianState

    other = start_stack(tmp_path, seed=4)
    other.connector.stop()
    other.backend.stop()
    from backend.app import shutdown

    shutdown(other.backend_app)
    # One Atlassian signs for every site: the second site uses the same install and Forge keys.
    a = _atlassian(installed)
    other.site.server.app.extensions["atlassian"] = AtlassianState(
        a.install_kid, a.install_key, a.forge_kid, a.forge_key
    )
    r = requests.post(
        other.site.url + "/_sandbox/apps/install", json={"connector_url": installed.url}, timeout=30
    )
    assert all(e["status"] < 300 for e in r.json()["events"])
    info = requests.get(other.site.url + "/_sandbox/apps/keepstone", timeout=10).json()
    yield installed, other.site, info
    other.site.stop()


def test_one_tenants_token_never_reaches_another_tenants_data(two_tenants):
    stack, _site, other = two_tenants
    a = stack.info()
    assert a["cloudId"] != other["cloudId"]
    # A run of tenant B...
    b_ctx = jwt.encode(
        {
            "iss": other["clientKey"],
            "sub": "x",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "qsh": "context-qsh",
        },
        other["sharedSecret"],
        algorithm="HS256",
    )
    run = requests.post(
        stack.url + "/panel/api/backup", json={}, headers={"Authorization": f"JWT {b_ctx}"}
    ).json()
    before = _state(stack)
    a_ctx = stack.context_token()
    # ...cannot be read with tenant A's token, and a cloud id in the request is ignored.
    r = requests.get(f"{stack.url}/panel/api/runs/{run['id']}", headers={"Authorization": f"JWT {a_ctx}"})
    assert r.status_code == 404
    r = requests.get(
        f"{stack.url}/panel/api/status?cloud_id={other['cloudId']}", headers={"Authorization": f"JWT {a_ctx}"}
    )
    assert r.status_code == 200 and r.json()["next_backup_at"]
    # Tenant B's clientKey signed with tenant A's secret is a forgery.
    forged = jwt.encode(
        {
            "iss": other["clientKey"],
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "qsh": "context-qsh",
        },
        a["sharedSecret"],
        algorithm="HS256",
    )
    r = requests.post(stack.url + "/panel/api/backup", json={}, headers={"Authorization": f"JWT {forged}"})
    assert r.status_code == 401
    assert _state(stack) == before


def test_panel_may_be_framed_only_by_its_own_tenants_site(two_tenants):
    stack, other_site, other = two_tenants
    mine = _page(stack, stack.token("GET", "/panel", PAGE_QUERY))
    csp = mine.headers["Content-Security-Policy"]
    assert re.search(r"frame-ancestors ([^;]+)", csp).group(1) == stack.site.url
    assert "*" not in csp and "X-Frame-Options" not in mine.headers
    theirs_token = jwt.encode(
        {
            "iss": other["clientKey"],
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "qsh": qsh("GET", "/panel?" + PAGE_QUERY),
        },
        other["sharedSecret"],
        algorithm="HS256",
    )
    theirs = _page(stack, theirs_token)
    assert (
        re.search(r"frame-ancestors ([^;]+)", theirs.headers["Content-Security-Policy"]).group(1)
        == other_site.url
    )


def _sso_token(stack) -> str:
    r = requests.post(stack.url + "/panel/more", data={"jwt": stack.context_token()}, timeout=10)
    assert r.status_code == 200
    # strict-origin, not no-referrer: under no-referrer browsers send `Origin: null` on the hand-off's
    # cross-origin POST, and the backend's /sso refuses it (login CSRF check).
    assert r.headers["Referrer-Policy"] == "strict-origin"
    return re.search(r"name='token' value='([^']+)'", r.text).group(1)


def test_sso_token_has_the_seam_4_shape(installed):
    token = _sso_token(installed)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "RS256" and header["typ"] == "sso-handoff+jwt" and header["kid"]
    assert claims["aud"] == "keepstone-backend-sso" and claims["iss"] == "keepstone-connector"
    assert claims["tenant"] == installed.info()["cloudId"] and claims["sub"] == "5b10admin"
    assert 0 < claims["exp"] - claims["iat"] <= 60 and claims["jti"]
    assert claims["jira_admin"] is True  # the panel is a Jira admin page: the backend makes an admin member


def test_replayed_sso_token_is_refused(installed):
    token = _sso_token(installed)
    first = requests.post(
        installed.backend.url + "/sso",
        data={"token": token},
        headers={"Origin": installed.url},
        allow_redirects=False,
    )
    assert first.status_code == 303 and first.headers["Location"] == "/"
    again = requests.post(
        installed.backend.url + "/sso",
        data={"token": token},
        headers={"Origin": installed.url},
        allow_redirects=False,
    )
    assert again.status_code == 401
    assert "Set-Cookie" not in again.headers


def test_rotated_key_is_published_before_it_signs(installed):
    keys = installed.app.extensions["connector"].keys
    old = keys.current.kid
    staged = keys.rotate(promote_after=3600)
    kids = [k["kid"] for k in requests.get(installed.url + "/.well-known/jwks.json").json()["keys"]]
    assert kids == [old, staged.kid]
    assert _signing_kid(installed) == old
    staged.usable_at = 0  # the promotion time has come
    time.sleep(1.1)  # the backend refetches the JWKS for an unknown kid at most once a second
    assert _signing_kid(installed) == staged.kid
    ctx = {"Authorization": f"JWT {installed.context_token()}"}
    assert requests.get(f"{installed.url}/panel/api/status", headers=ctx).status_code == 200


def _signing_kid(stack) -> str:
    return jwt.get_unverified_header(_sso_token(stack))["kid"]
