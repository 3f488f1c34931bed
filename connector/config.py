"""The connector's settings: where it lives, whom it trusts, where the backend is."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, fields
from pathlib import Path

FORGE_JWKS_URL = "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json"
CONNECT_INSTALL_KEYS_URL = "https://connect-install-keys.atlassian.com"
SECRET_KEY_FILE = "connector-secret.key"


def private_file(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 from the start (never readable by others, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)  # in case a umask was stricter than asked: the mode is exactly 0600


def _secret_key(data_dir: Path) -> str:
    """KEEPSTONE_CONNECTOR_SECRET_KEY (given to the config), or a random key kept 0600 in the data folder."""
    path = data_dir / SECRET_KEY_FILE
    if not path.exists():
        try:
            private_file(path, secrets.token_urlsafe(48).encode())
        except FileExistsError:
            pass  # another process of this connector created it first
    path.chmod(0o600)
    return path.read_text().strip()


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
    # Seals the Connect shared secrets at rest (and is Flask's SECRET_KEY). Empty: a random key kept
    # 0600 in `data_dir` (local runs); production sets KEEPSTONE_CONNECTOR_SECRET_KEY.
    secret_key: str = ""
    data_dir: str = ""  # empty: the sqlite database's folder, or var/connector for other databases
    token_leeway: int = 5  # seconds of clock skew tolerated on Jira's tokens
    install_key_fetch_burst: int = 5  # key-server fetches for unknown kids allowed at once...
    install_key_fetch_rate: float = 1.0  # ...and refilled per second, for all kids together

    def __post_init__(self) -> None:
        if not self.data_dir:
            if self.database_url.startswith("sqlite:///") and ":memory:" not in self.database_url:
                self.data_dir = str(Path(self.database_url[len("sqlite:///") :]).parent)
            else:
                self.data_dir = "var/connector"
        if not self.secret_key:
            self.secret_key = _secret_key(Path(self.data_dir))

    @classmethod
    def from_env(cls, **overrides) -> ConnectorConfig:
        """Build a configuration from KEEPSTONE_CONNECTOR_<FIELD> variables, then `overrides`."""
        values: dict[str, object] = {}
        for f in fields(cls):
            env = os.environ.get(f"KEEPSTONE_CONNECTOR_{f.name.upper()}")
            if env is not None:
                values[f.name] = int(env) if f.type == "int" else float(env) if f.type == "float" else env
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
