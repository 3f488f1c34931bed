"""The backend's configuration, read from the environment with safe defaults for a local run."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _secret_key(data_dir: Path) -> str:
    """KEEPSTONE_SECRET_KEY, or (for local runs only) a random key kept in the data folder."""
    if os.environ.get("KEEPSTONE_SECRET_KEY"):
        return os.environ["KEEPSTONE_SECRET_KEY"]
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


@dataclass
class Config:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("KEEPSTONE_DATA_DIR", "var/backend")))
    database_url: str = ""
    secret_key: str = ""
    connector_jwks_url: str | None = field(
        default_factory=lambda: os.environ.get("KEEPSTONE_CONNECTOR_JWKS_URL")
    )
    connector_issuer: str = "keepstone-connector"
    service_audience: str = "keepstone-backend"
    sso_audience: str = "keepstone-backend-sso"
    service_region: str = field(
        default_factory=lambda: os.environ.get("KEEPSTONE_SERVICE_REGION", "local (eu-central)")
    )
    storage_region: str = field(
        default_factory=lambda: os.environ.get("KEEPSTONE_STORAGE_REGION", "local disk")
    )
    storage_url: str | None = field(default_factory=lambda: os.environ.get("KEEPSTONE_STORAGE_URL"))
    scheduler: bool = field(default_factory=lambda: os.environ.get("KEEPSTONE_SCHEDULER", "on") != "off")
    run_workers: int = field(default_factory=lambda: int(os.environ.get("KEEPSTONE_RUN_WORKERS", "2")))
    misfire_grace_seconds: int = 3600
    testing: bool = False

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.database_url:
            self.database_url = (
                os.environ.get("KEEPSTONE_DATABASE_URL")
                or f"sqlite:///{self.data_dir.resolve()}/keepstone.db"
            )
        if not self.secret_key:
            self.secret_key = _secret_key(self.data_dir)
        if self.database_url.startswith("sqlite:///"):
            Path(self.database_url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)

    def repository_url(self, cloud_id: str) -> str:
        """Where an organisation's backups go by default: a folder per tenant, or a prefix in object storage."""
        if self.storage_url:
            return f"{self.storage_url.rstrip('/')}/{cloud_id}"
        return f"file://{(self.data_dir / 'repositories' / cloud_id).resolve()}"
