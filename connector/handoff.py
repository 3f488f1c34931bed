"""The signed hand-off to the backend: service and SSO JWTs (RS256 + kid), the JWKS, key rotation."""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass
from html import escape
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, current_app, jsonify

from connector.config import private_file

ISSUER = "keepstone-connector"
SERVICE_AUDIENCE = "keepstone-backend"
SSO_AUDIENCE = "keepstone-backend-sso"
LIFETIME = 60

bp = Blueprint("handoff", __name__)


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    usable_at: float  # published at once, signs only from this time (verifiers cache the JWKS)


class KeyRing:
    """The connector's signing keys: published ahead of use, the newest usable one signs, old ones linger."""

    def __init__(self, key_file: str | None = None, keep: int = 3) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []
        if key_file and Path(key_file).exists():
            Path(key_file).chmod(0o600)  # a key file written 0644 by an older connector is tightened
            pem = Path(key_file).read_bytes()
            key = serialization.load_pem_private_key(pem, password=None)
            self._keys.append(SigningKey(_kid_of(key), key, 0.0))
        else:
            self.rotate(promote_after=0)
            if key_file:
                private_file(
                    Path(key_file),
                    self.current.private_key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    ),
                )

    @property
    def current(self) -> SigningKey:
        """Return the newest key whose time to sign has come."""
        now = time.time()
        with self._lock:
            return [k for k in self._keys if k.usable_at <= now][-1]

    def rotate(self, promote_after: float = 600) -> SigningKey:
        """Publish a new key now and sign with it after `promote_after` s; drop keys beyond `keep`."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        new = SigningKey(_kid_of(key), key, time.time() + promote_after)
        with self._lock:
            self._keys.append(new)
            del self._keys[: -self.keep]
        return new

    def jwks(self) -> dict:
        """Return the public keys as a JWK set."""
        keys = []
        for k in self._keys:
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(k.private_key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": k.kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def sign(self, claims: dict, typ: str) -> str:
        """Sign `claims` with the current key, `kid` and `typ` in the header."""
        key = self.current
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": typ})


def _kid_of(key: rsa.RSAPrivateKey) -> str:
    thumb = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)["n"]
    return str(uuid.uuid5(uuid.NAMESPACE_URL, thumb))


def service_token(keys: KeyRing, tenant: str) -> str:
    """Mint a 60-second service token for calls on behalf of one tenant (Seam 4)."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": SERVICE_AUDIENCE,
        "sub": "connector",
        "tenant": tenant,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + LIFETIME,
    }
    return keys.sign(claims, "service+jwt")


# Pages of the management service a hand-off may open instead of the dashboard (the panel's "Review in
# Keepstone" opens the run that warned). Anything else is dropped here, and the backend checks again.
TARGET = re.compile(r"/runs/run_[a-z2-7]{1,40}")


def safe_target(value: object) -> str:
    """The page a hand-off should open, if it is one of the allowed shapes; else "" (the dashboard)."""
    return value if isinstance(value, str) and TARGET.fullmatch(value) else ""


def sso_token(
    keys: KeyRing, tenant: str, account_id: str, name: str, *, jira_admin: bool, target: str = ""
) -> str:
    """Mint a one-time SSO hand-off token for one Jira user of one tenant (Seam 4); `jira_admin` says
    whether Jira counts them as a Jira administrator (the backend makes them an admin member, else a viewer);
    `target` is the page to open (`safe_target`), signed with the rest."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": SSO_AUDIENCE,
        "sub": account_id,
        "tenant": tenant,
        "name": name,
        "jira_admin": jira_admin,
        **({"target": safe_target(target)} if safe_target(target) else {}),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + LIFETIME,
    }
    return keys.sign(claims, "sso-handoff+jwt")


def sso_form(backend_url: str, token: str) -> str:
    """Return a page that POSTs the SSO token to the backend's /sso at once (no token in any URL)."""
    action = escape(backend_url.rstrip("/") + "/sso")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Opening Keepstone…</title>"
        "<script src='/static/panel/sso.js' defer></script></head><body>"
        f"<form id='sso' method='post' action='{action}'>"
        f"<input type='hidden' name='token' value='{escape(token)}'>"
        "<noscript><button type='submit'>Continue to Keepstone</button></noscript></form>"
        "<p>Opening Keepstone…</p></body></html>"
    )


class BackendClient:
    """Call the backend's API (Seam 4) with a fresh service token per request."""

    def __init__(self, base_url: str, keys: KeyRing, timeout: float = 20) -> None:
        self.base_url = base_url.rstrip("/")
        self.keys = keys
        self.session = requests.Session()
        self.timeout = timeout

    def call(self, method: str, path: str, tenant: str, json: dict | None = None) -> requests.Response:
        """Send one API request for `tenant`; the answer is returned as is."""
        headers = {"Authorization": f"Bearer {service_token(self.keys, tenant)}"}
        return self.session.request(
            method, self.base_url + path, json=json, headers=headers, timeout=self.timeout
        )


@bp.get("/.well-known/jwks.json")
def jwks():
    """Publish the connector's public keys for the backend."""
    resp = jsonify(current_app.extensions["connector"].keys.jwks())
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp
