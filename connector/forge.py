"""Forge Invocation Token (FIT) verification: RS256 against the configured JWKS, pinned iss and aud."""

from __future__ import annotations

import jwt

from connector.errors import TokenError

FIT_ISSUER = "forge/invocation-token"


class ForgeVerifier:
    """Verify the `Authorization: Bearer <FIT>` that Forge puts on every remote call."""

    def __init__(self, jwks_url: str, app_id: str, leeway: int = 5) -> None:
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5)
        self.app_id = app_id
        self.leeway = leeway

    def verify(self, authorization: str | None) -> dict:
        """Return the FIT's claims or raise TokenError."""
        if not authorization or not authorization.startswith("Bearer "):
            raise TokenError("missing Forge invocation token")
        token = authorization[len("Bearer ") :].strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise TokenError(f"malformed token: {e}") from None
        if header.get("alg") != "RS256":
            raise TokenError("Forge tokens must be RS256")
        try:
            key = self.jwks.get_signing_key(header.get("kid") or "")
        except jwt.PyJWKClientError as e:
            raise TokenError(f"unknown kid: {e}") from None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.app_id,
                issuer=FIT_ISSUER,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud"], "strict_aud": True},
            )
        except jwt.PyJWTError as e:
            raise TokenError(f"invalid Forge token: {e}") from None
        cloud_id = (claims.get("context") or {}).get("cloudId")
        if not isinstance(cloud_id, str) or not cloud_id:
            raise TokenError("Forge token carries no cloudId")
        return claims
