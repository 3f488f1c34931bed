"""Connect JWT verification: signed installs (RS256 + kid), page/API calls (HS256 + qsh), context tokens."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict

import jwt
import requests
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask import request

from connector.budget import FetchBudget
from connector.edge import RAW_PATH, raw_path
from connector.errors import TokenError
from connector.qsh import CONTEXT_QSH, qsh_candidates
from connector.tenants import Tenant, TenantStore

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def request_target() -> tuple[str, str, str]:
    """The current request as the qsh covers it: method, raw (still encoded) path, raw query string."""
    path = request.environ.get(RAW_PATH) or raw_path(request.environ)
    return request.method, path, request.query_string.decode("utf-8", errors="replace")


def token_from_request(headers, args) -> str:
    """Return the JWT from `Authorization: JWT ...` or the `jwt` query parameter."""
    auth = headers.get("Authorization", "")
    if auth.startswith("JWT "):
        return auth[4:].strip()
    token = args.get("jwt") or ""
    if not token:
        raise TokenError("missing JWT")
    return token


def _header(token: str) -> dict:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise TokenError(f"malformed JWT: {e}") from None


def _unverified_claims(token: str) -> dict:
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as e:
        raise TokenError(f"malformed JWT: {e}") from None


class InstallKeys:
    """Fetch and cache Connect install public keys by kid from the configured key server.

    Known keys are cached (a few: Atlassian rotates a handful). An unknown kid costs a fetch only while
    the shared budget allows (`burst` at once, `rate` per second, for all kids together); past it the
    install is refused without a fetch, so a flood of random kids cannot hammer the key server (nor
    make the connector a traffic amplifier). A kid the server did not know is remembered for a minute.
    """

    MISS_TTL = 60.0  # seconds an unknown kid is remembered
    MAX_KEYS = 32  # cached public keys (least recently used dropped)
    MAX_MISSES = 4096  # remembered unknown kids (oldest dropped)

    def __init__(self, server_url: str, burst: int = 5, rate: float = 1.0) -> None:
        self.server_url = server_url.rstrip("/")
        self._cache: OrderedDict[str, object] = OrderedDict()
        self._misses: OrderedDict[str, float] = OrderedDict()
        self._budget = FetchBudget(burst, rate)
        self._lock = threading.Lock()
        self.fetches = 0
        self.refused = 0  # misses turned away because the budget was spent

    def get(self, kid: str):
        """Return the public key for `kid`; refuse kids that are not UUIDs (no path or URL tricks)."""
        if not isinstance(kid, str) or not UUID_RE.match(kid):
            raise TokenError("kid must be a UUID")
        with self._lock:
            if kid in self._cache:
                self._cache.move_to_end(kid)
                return self._cache[kid]
            seen = self._misses.get(kid)
            if seen is not None and time.monotonic() - seen < self.MISS_TTL:
                raise TokenError(f"unknown kid {kid}")
            if not self._budget.take():
                self.refused += 1
                raise TokenError("too many unknown kids: the install key server is not asked now")
            self.fetches += 1
        try:
            resp = requests.get(f"{self.server_url}/{kid}", timeout=5, allow_redirects=False)
        except requests.RequestException as e:
            raise TokenError(f"install key server unreachable: {type(e).__name__}") from None
        if resp.status_code != 200:
            with self._lock:
                self._misses[kid] = time.monotonic()
                self._misses.move_to_end(kid)
                while len(self._misses) > self.MAX_MISSES:
                    self._misses.popitem(last=False)
            raise TokenError(f"unknown kid {kid}")
        try:
            key = load_pem_public_key(resp.content[:16384])
        except ValueError:
            raise TokenError(f"install key for {kid} is not a PEM public key") from None
        with self._lock:
            self._cache[kid] = key
            while len(self._cache) > self.MAX_KEYS:
                self._cache.popitem(last=False)
        return key


class ConnectVerifier:
    """Verify the tokens Jira sends to a Connect app."""

    def __init__(self, base_url: str, install_keys: InstallKeys, tenants: TenantStore, leeway: int = 5):
        self.base_url = base_url.rstrip("/")
        self.base_path = "/" + self.base_url.split("://", 1)[-1].partition("/")[2]
        self.install_keys = install_keys
        self.tenants = tenants
        self.leeway = leeway

    def verify_signed_install(self, token: str, method: str, path: str, query: str) -> dict:
        """Verify an installed/uninstalled call: RS256, kid key, aud = our base URL, qsh; return its claims.

        Only the request line is covered (method, raw path, query), so this runs before the body is read;
        the caller then checks that the body's clientKey is the token's `iss`.
        """
        header = _header(token)
        if header.get("alg") != "RS256":
            raise TokenError("lifecycle tokens must be RS256")
        key = self.install_keys.get(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.base_url,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "qsh", "aud"], "strict_aud": True},
            )
        except jwt.PyJWTError as e:
            raise TokenError(f"invalid install token: {e}") from None
        if not isinstance(claims["iss"], str) or not claims["iss"]:
            raise TokenError("install token has no issuer")
        self._check_qsh(claims, method, path, query, allow_context=False)
        return claims

    def verify_request(
        self, token: str, method: str, path: str, query: str, allow_context: bool = False
    ) -> tuple[Tenant, dict]:
        """Verify an HS256 call from Jira or the panel; return its tenant and claims."""
        header = _header(token)
        if header.get("alg") != "HS256":
            raise TokenError("tokens must be HS256")
        iss = _unverified_claims(token).get("iss")
        tenant = self.tenants.by_client_key(iss) if isinstance(iss, str) else None
        if tenant is None or not tenant.shared_secret:
            raise TokenError("unknown issuer")
        try:
            claims = jwt.decode(
                token,
                tenant.shared_secret,
                algorithms=["HS256"],
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "qsh"], "verify_aud": False},
            )
        except jwt.PyJWTError as e:
            raise TokenError(f"invalid token: {e}") from None
        self._check_qsh(claims, method, path, query, allow_context)
        return tenant, claims

    def _check_qsh(self, claims: dict, method: str, path: str, query: str, allow_context: bool) -> None:
        if claims.get("qsh") == CONTEXT_QSH:
            if not allow_context:
                raise TokenError("context token not accepted here", 403)
            return
        if claims.get("qsh") not in qsh_candidates(method, path, query, self.base_path):
            raise TokenError("qsh does not match the request")
