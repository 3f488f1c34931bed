"""Verify the connector's JWTs: RS256 only, a known `kid` from the connector's JWKS, exact typ/aud/iss."""

from __future__ import annotations

import threading
from typing import Any

import jwt
from jwt import PyJWKClient

from backend.errors import Unauthorized

MAX_LIFETIME = 120  # seconds: hand-off tokens must be short-lived (RFC 8725 advice: 30-120 s)


class TokenVerifier:
    """Verifies tokens against a JWKS URL; keys are cached and refetched when an unknown kid shows up."""

    def __init__(self, jwks_url: str | None, issuer: str) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.lock = threading.Lock()
        # Keys are cached for five minutes; an unknown kid refetches the set at most once a second, so a
        # rotated key works at once while a flood of made-up kids cannot hammer the connector.
        self.client = (
            PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5, cooldown_duration=1.0)
            if jwks_url
            else None
        )

    def verify(self, token: str, audience: str, typ: str) -> dict[str, Any]:
        if self.client is None:
            raise Unauthorized(
                "this backend does not accept connector tokens (no KEEPSTONE_CONNECTOR_JWKS_URL)"
            )
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise Unauthorized(f"malformed token: {e}") from None
        if header.get("alg") != "RS256":
            raise Unauthorized("token algorithm must be RS256")
        if header.get("typ") != typ:
            raise Unauthorized(f"token type must be {typ}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 128:
            raise Unauthorized("token has no usable key id")
        try:
            with self.lock:
                key = self.client.get_signing_key(kid)
        except jwt.PyJWKClientError as e:
            raise Unauthorized(f"unknown signing key: {e}") from None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"], "strict_aud": True},
                leeway=5,
            )
        except jwt.PyJWTError as e:
            raise Unauthorized(f"token rejected: {e}") from None
        if claims["exp"] - claims["iat"] > MAX_LIFETIME:
            raise Unauthorized("token lives too long")
        if not isinstance(claims.get("tenant"), str):
            raise Unauthorized("token names no tenant")
        return claims
