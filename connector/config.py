"""The connector's settings: where it lives, whom it trusts, where the backend is."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

FORGE_JWKS_URL = "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json"
CONNECT_INSTALL_KEYS_URL = "https://connect-install-keys.atlassian.com"


@dataclass
class ConnectorConfig:
    """Everything the connector needs; read from KEEPSTONE_CONNECTOR_* variables by `from_env`."""

    base_url: str = "http://127.0.0.1:8020"  # our public URL: the Connect `aud` and descriptor baseUrl
    backend_url: str = "http://127.0.0.1:8010"
    database_url: str = "sqlite:///var/connector.db"
    forge_jwks_url: str = FORGE_JWKS_URL
    forge_app_id: str = "ari:cloud:ecosystem::app/6f0c1a52-9d3e-4c8b-a0f7-keepstone0001"
    connect_install_keys_url: str = CONNECT_INSTALL_KEYS_URL
    app_key: str = "keepstone"
    key_file: str | None = None  # PEM of the hand-off signing key; None = a fresh key per process
    secret_key: str = field(default_factory=lambda: os.urandom(32).hex())
    token_leeway: int = 5  # seconds of clock skew tolerated on Jira's tokens

    @classmethod
    def from_env(cls, **overrides) -> ConnectorConfig:
        """Build a configuration from KEEPSTONE_CONNECTOR_<FIELD> variables, then `overrides`."""
        values = {}
        for name in cls.__dataclass_fields__:
            env = os.environ.get(f"KEEPSTONE_CONNECTOR_{name.upper()}")
            if env is not None:
                values[name] = int(env) if name == "token_leeway" else env
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
