"""Service tokens, the SSO hand-off and sessions: each attack is a real request, refused with nothing changed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

TENANT = "11111111-2222-4333-8444-555555555555"
OTHER = "99999999-2222-4333-8444-555555555555"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def forged(issuer, tenant: str) -> dict[str, str]:
    """Variants of a service token that must all be refused."""
    now = int(time.time())
    good = issuer.token(tenant)
    header, _payload, signature = good.split(".")
    claims = {
        "iss": "keepstone-connector",
        "aud": "keepstone-backend",
        "sub": "connector",
        "tenant": tenant,
        "iat": now,
        "exp": now + 60,
        "jti": "x",
    }
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = issuer.keys["k1"].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    hs_signing_input = f"{_b64({'alg': 'HS256', 'typ': 'service+jwt', 'kid': 'k1'})}.{_b64(claims)}"
    hs_signature = (
        base64.urlsafe_b64encode(hmac.new(public_pem, hs_signing_input.encode(), hashlib.sha256).digest())
        .decode()
        .rstrip("=")
    )
    return {
        "forged signature": jwt.encode(
            claims, stranger, algorithm="RS256", headers={"kid": "k1", "typ": "service+jwt"}
        ),
        "tampered payload": f"{header}.{_b64({**claims, 'tenant': tenant, 'sub': 'root'})}.{signature}",
        "expired": issuer.token(tenant, lifetime=-120),
        "too long-lived": issuer.token(tenant, lifetime=3600),
        "wrong aud": issuer.token(tenant, aud="keepstone-backend-sso"),
        "wrong iss": issuer.token(tenant, iss="someone-else"),
        "wrong typ": issuer.token(tenant, typ="JWT"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'service+jwt', 'kid': 'k1'})}.{_b64(claims)}.",
        "HS256 with the public key": f"{hs_signing_input}.{hs_signature}",
        "unknown kid": issuer.token(tenant, kid="k9"),
        "malicious kid": issuer.token(tenant, kid="../../etc/passwd"),
        "url kid": issuer.token(tenant, kid="http://169.254.169.254/latest"),
        "garbage": "not-a-jwt",
    }


@pytest.mark.parametrize(
    "variant",
    [
        "forged signature",
        "tampered payload",
        "expired",
        "too long-lived",
        "wrong aud",
        "wrong iss",
        "wrong typ",
        "alg none",
        "HS256 with the public key",
        "unknown kid",
        "malicious kid",
        "url kid",
        "garbage",
    ],
)
def test_bad_service_tokens_are_refused_and_nothing_changes(sqlite_backend, sandbox_site, issuer, variant):
    token = forged(issuer, TENANT)[variant]
    r = requests.put(
        f"{sqlite_backend.url}/api/v1/organisations/{TENANT}",
        json={"site_url": sandbox_site.url},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 401, (variant, r.text)
    assert r.json()["error"]["code"] == "unauthorized"
    ok = sqlite_backend.call("GET", f"/api/v1/organisations/{TENANT}/status", TENANT)
    assert ok.status_code == 404  # the tenant was never created


def test_rotated_keys_are_picked_up_from_the_jwks(sqlite_backend, sandbox_site, issuer):
    issuer.keys["k2"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        r = requests.put(
            f"{sqlite_backend.url}/api/v1/organisations/{TENANT}",
            json={"site_url": sandbox_site.url},
            headers=issuer.headers(TENANT, kid="k2"),
            timeout=10,
        )
        assert r.status_code == 201
    finally:
        del issuer.keys["k2"]


def sso_post(backend, token: str) -> requests.Response:
    """POST a hand-off as the browser does from the connector's page (Origin = the connector's origin)."""
    session = requests.Session()
    headers = {"Origin": backend.issuer.server.url}
    r = session.post(
        f"{backend.url}/sso", data={"token": token}, headers=headers, allow_redirects=False, timeout=10
    )
    r.session = session
    return r


def handoff(issuer, tenant: str = TENANT, **kw) -> str:
    return issuer.token(
        tenant,
        typ="sso-handoff+jwt",
        aud="keepstone-backend-sso",
        sub="jira-account-1",
        name="Ada Admin",
        **kw,
    )


def test_sso_hand_off_logs_in_to_that_tenant_and_redirects_to_a_clean_url(
    sqlite_backend, sandbox_site, issuer
):
    sqlite_backend.install(TENANT, sandbox_site.url)
    sqlite_backend.install(OTHER, sandbox_site.url)
    r = sso_post(sqlite_backend, handoff(issuer))
    assert r.status_code == 303 and r.headers["Location"].endswith("/")
    assert "token" not in r.headers["Location"] and r.headers["Referrer-Policy"] == "no-referrer"
    dashboard = r.session.get(f"{sqlite_backend.url}/", timeout=10)
    assert dashboard.status_code == 200 and "Acme" in dashboard.text
    assert (
        r.session.get(f"{sqlite_backend.url}/api/v1/organisations/{TENANT}/status", timeout=10).status_code
        == 200
    )
    # The session is pinned to the tenant it was opened for.
    assert (
        r.session.get(f"{sqlite_backend.url}/api/v1/organisations/{OTHER}/status", timeout=10).status_code
        == 404
    )


@pytest.mark.parametrize("variant", ["replayed", "service token", "expired", "other kind"])
def test_bad_sso_tokens_are_refused(sqlite_backend, sandbox_site, issuer, variant):
    sqlite_backend.install(TENANT, sandbox_site.url)
    token = handoff(issuer)
    if variant == "replayed":
        assert sso_post(sqlite_backend, token).status_code == 303
    elif variant == "service token":
        token = issuer.token(TENANT)
    elif variant == "expired":
        token = handoff(issuer, lifetime=-60)
    elif variant == "other kind":
        token = issuer.token(TENANT, typ="sso-handoff+jwt", aud="keepstone-backend")
    r = sso_post(sqlite_backend, token)
    assert r.status_code == 401, r.text
    assert r.session.get(f"{sqlite_backend.url}/", allow_redirects=False, timeout=10).status_code == 302


def test_session_writes_need_a_csrf_token(sqlite_backend, sandbox_site, issuer):
    sqlite_backend.install(TENANT, sandbox_site.url)
    r = sso_post(sqlite_backend, handoff(issuer))
    attempt = r.session.post(f"{sqlite_backend.url}/api/v1/organisations/{TENANT}/runs", json={}, timeout=10)
    assert attempt.status_code == 400 and "CSRF" in attempt.text
    runs = r.session.get(f"{sqlite_backend.url}/api/v1/organisations/{TENANT}/runs", timeout=10).json()
    assert runs["items"] == []


def test_login_form_refuses_wrong_passwords_and_posts_without_csrf(sqlite_backend):
    r = requests.post(f"{sqlite_backend.url}/login", data={"email": "a@b.c", "password": "x"}, timeout=10)
    assert r.status_code == 400  # no CSRF token
    session = requests.Session()
    page = session.get(f"{sqlite_backend.url}/login", timeout=10).text
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = session.post(
        f"{sqlite_backend.url}/login",
        data={"email": "a@b.c", "password": "x", "csrf_token": csrf},
        timeout=10,
    )
    assert r.status_code == 401 and "Wrong email or password" in r.text
