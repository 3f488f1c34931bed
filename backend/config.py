"""The backend's configuration, read from the environment with safe defaults for a local run."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

COOKIE_SECURE_MODES = ("on", "auto", "off")


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, lower-case, without the scheme's default port ("" if not absolute)."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return ""
    try:
        port = parts.port
    except ValueError:
        return ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


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
    # Storage records (backend/storages.py): local folders live under storage_root/<cloud_id>/; S3 endpoints
    # and Azure account URLs must be https, name a host in storage_hosts when that is set (comma-separated),
    # and may be plain http or a private address only for a host in storage_http_hosts.
    storage_root: Path | None = field(
        default_factory=lambda: Path(p) if (p := os.environ.get("KEEPSTONE_STORAGE_ROOT")) else None
    )
    storage_hosts: str = field(default_factory=lambda: os.environ.get("KEEPSTONE_STORAGE_HOSTS", ""))
    storage_http_hosts: str = field(
        default_factory=lambda: os.environ.get("KEEPSTONE_STORAGE_HTTP_HOSTS", "")
    )
    scheduler: bool = field(default_factory=lambda: os.environ.get("KEEPSTONE_SCHEDULER", "on") != "off")
    # How often a scheduler reconciles its job store with the plans table (picks up plans that a web
    # process without a scheduler changed).
    scheduler_sync_seconds: int = field(
        default_factory=lambda: _env_int("KEEPSTONE_SCHEDULER_SYNC_SECONDS", 30)
    )
    run_workers: int = field(default_factory=lambda: int(os.environ.get("KEEPSTONE_RUN_WORKERS", "2")))
    # Where runs execute (backend/workers/): "threads" in this process (the default), or "celery": each
    # project task goes through the broker to `keepstone worker` processes (redis://... or amqp://...).
    executor: str = field(default_factory=lambda: os.environ.get("KEEPSTONE_EXECUTOR", "threads"))
    broker_url: str = field(
        default_factory=lambda: os.environ.get("KEEPSTONE_BROKER_URL", "redis://127.0.0.1:6379/0")
    )
    misfire_grace_seconds: int = 3600
    testing: bool = False
    # Browser sessions (backend/auth/sessions.py). The session cookie is Secure "on" (always: the default,
    # right behind any TLS front end), "auto" (when the request came over https; the demo and the tests
    # on http://127.0.0.1) or "off".
    cookie_secure: str = field(default_factory=lambda: os.environ.get("KEEPSTONE_COOKIE_SECURE", "on"))
    # How many reverse proxies in front of the backend set X-Forwarded-For/-Proto (0: trust none of them).
    trusted_proxies: int = field(default_factory=lambda: _env_int("KEEPSTONE_TRUSTED_PROXIES", 0))
    session_idle_seconds: int = field(
        default_factory=lambda: _env_int("KEEPSTONE_SESSION_IDLE_SECONDS", 1800)
    )
    session_absolute_seconds: int = field(
        default_factory=lambda: _env_int("KEEPSTONE_SESSION_ABSOLUTE_SECONDS", 12 * 3600)
    )
    session_touch_seconds: int = 60  # last-seen is written at most this often (not a write per request)
    # Sign-in throttling (Flask-Limiter): redis://host:port/db for several processes, memory:// for one.
    ratelimit_storage_url: str = field(
        default_factory=lambda: os.environ.get("KEEPSTONE_RATELIMIT_STORAGE_URL", "memory://")
    )
    ratelimit_key_prefix: str = "keepstone"
    login_limit_per_account: str = field(
        default_factory=lambda: os.environ.get(
            "KEEPSTONE_LOGIN_LIMIT_PER_ACCOUNT", "5 per minute;20 per hour"
        )
    )
    login_limit_per_address: str = field(
        default_factory=lambda: os.environ.get(
            "KEEPSTONE_LOGIN_LIMIT_PER_ADDRESS", "20 per minute;200 per hour"
        )
    )
    # The origins allowed to POST an SSO hand-off to /sso: the connector's (from its JWKS URL) by default.
    connector_origin: str = field(default_factory=lambda: os.environ.get("KEEPSTONE_CONNECTOR_ORIGIN", ""))
    # Notifications (backend/notify/). Links in messages start with public_url (the service's address as
    # people open it). Email is off until KEEPSTONE_SMTP_HOST is set; STARTTLS is required unless "off".
    # Webhooks go to https URLs (only hosts in webhook_hosts when that is set, comma-separated); plain http
    # or a private address only for hosts in webhook_http_hosts.
    public_url: str = field(default_factory=lambda: os.environ.get("KEEPSTONE_PUBLIC_URL", ""))
    smtp_host: str = field(default_factory=lambda: os.environ.get("KEEPSTONE_SMTP_HOST", ""))
    smtp_port: int = field(default_factory=lambda: _env_int("KEEPSTONE_SMTP_PORT", 587))
    smtp_user: str = field(default_factory=lambda: os.environ.get("KEEPSTONE_SMTP_USER", ""))
    smtp_password: str = field(default_factory=lambda: os.environ.get("KEEPSTONE_SMTP_PASSWORD", ""))
    smtp_starttls: bool = field(
        default_factory=lambda: os.environ.get("KEEPSTONE_SMTP_STARTTLS", "on") != "off"
    )
    smtp_ca_file: str = field(default_factory=lambda: os.environ.get("KEEPSTONE_SMTP_CA_FILE", ""))
    smtp_from: str = field(
        default_factory=lambda: os.environ.get("KEEPSTONE_SMTP_FROM", "Keepstone <keepstone@localhost>")
    )
    webhook_hosts: str = field(default_factory=lambda: os.environ.get("KEEPSTONE_WEBHOOK_HOSTS", ""))
    webhook_http_hosts: str = field(
        default_factory=lambda: os.environ.get("KEEPSTONE_WEBHOOK_HTTP_HOSTS", "")
    )
    notify_sender: bool = field(
        default_factory=lambda: os.environ.get("KEEPSTONE_NOTIFY_SENDER", "on") != "off"
    )
    notify_timeout_seconds: int = field(default_factory=lambda: _env_int("KEEPSTONE_NOTIFY_TIMEOUT", 10))
    notify_poll_seconds: float = 5.0  # how often the sender looks for rows other processes wrote
    notify_max_attempts: int = field(default_factory=lambda: _env_int("KEEPSTONE_NOTIFY_MAX_ATTEMPTS", 8))
    notify_backoff_seconds: float = field(
        default_factory=lambda: float(os.environ.get("KEEPSTONE_NOTIFY_BACKOFF_SECONDS", "30"))
    )
    notify_backoff_max_seconds: float = 3600.0
    digest_hour: int = field(default_factory=lambda: _env_int("KEEPSTONE_DIGEST_HOUR", 8))

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.database_url:
            self.database_url = (
                os.environ.get("KEEPSTONE_DATABASE_URL")
                or f"sqlite:///{self.data_dir.resolve()}/keepstone.db"
            )
        if not self.secret_key:
            self.secret_key = _secret_key(self.data_dir)
        self.storage_root = Path(self.storage_root or self.data_dir / "storages").resolve()
        if self.database_url.startswith("sqlite:///"):
            Path(self.database_url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        if self.cookie_secure not in COOKIE_SECURE_MODES:
            raise ValueError(f"KEEPSTONE_COOKIE_SECURE must be one of {', '.join(COOKIE_SECURE_MODES)}")
        if not self.connector_origin and self.connector_jwks_url:
            self.connector_origin = origin_of(self.connector_jwks_url)

    @property
    def sso_origins(self) -> frozenset[str]:
        """The origins whose pages may POST a hand-off to /sso (comma-separated in KEEPSTONE_CONNECTOR_ORIGIN)."""
        return frozenset(o for o in (origin_of(x) for x in self.connector_origin.split(",")) if o)

    def repository_url(self, cloud_id: str) -> str:
        """Where an organisation's backups go by default: a folder per tenant, or a prefix in object storage."""
        if self.storage_url:
            return f"{self.storage_url.rstrip('/')}/{cloud_id}"
        return f"file://{(self.data_dir / 'repositories' / cloud_id).resolve()}"
