"""Forge Invocation Token (FIT) verification: RS256 against the configured JWKS, pinned iss and aud."""

from __future__ import annotations

import threading

import jwt

from connector.budget import FetchBudget
from connector.errors import TokenError

FIT_ISSUER = "forge/invocation-token"


class ForgeVerifier:
    """Verify the `Authorization: Bearer <FIT>` that Forge puts on every remote call."""

    def __init__(
        self, jwks_url: str, app_id: str, leeway: int = 5, burst: int = 5, rate: float = 1.0
    ) -> None:
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5)
        self.app_id = app_id
        self.leeway = leeway
        self._budget = FetchBudget(burst, rate)  # refetches for unknown kids, for all kids together
        self._lock = threading.Lock()

    def _key(self, kid: object) -> jwt.PyJWK:
        """The JWKS key for `kid`: from the cached set, or one refetch while the shared budget allows."""
        if not isinstance(kid, str) or not kid or len(kid) > 200:
            raise TokenError("unknown kid")
        try:
            keys = {k.key_id: k for k in self.jwks.get_signing_keys()}
            if kid not in keys:
                with self._lock:
                    allowed = self._budget.take()
                if not allowed:
                    raise TokenError("unknown kid (the JWKS is not refetched now)")
                keys = {k.key_id: k for k in self.jwks.get_signing_keys(refresh=True)}
        except jwt.PyJWKClientError as e:
            raise TokenError(f"unknown kid: {e}") from None
        if kid not in keys:
            raise TokenError("unknown kid")
        return keys[kid]

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
        key = self._key(header.get("kid"))
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
        context = claims.get("context")
        cloud_id = context.get("cloudId") if isinstance(context, dict) else None
        if not isinstance(cloud_id, str) or not 0 < len(cloud_id) <= 64:
            raise TokenError("Forge token carries no cloudId")
        return claims
