"""Installed tenants keyed by cloudId: install facts and the Connect shared secret, never Jira data."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Boolean, DateTime, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    """One Jira site that installed the app (Forge, Connect or both)."""

    __tablename__ = "tenants"

    cloud_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_url: Mapped[str] = mapped_column(String(255))
    client_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    shared_secret: Mapped[str | None] = mapped_column(String(255), nullable=True)
    installation_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    installed: Mapped[bool] = mapped_column(Boolean, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def origin(self) -> str:
        """Return the scheme://host[:port] of the tenant's Jira site (the only allowed frame ancestor)."""
        scheme, _, rest = self.site_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"


class TenantStore:
    """Read and change tenants in one small SQL database (sqlite by default)."""

    def __init__(self, database_url: str) -> None:
        if database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:///:memory:"):
            Path(database_url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(database_url)
        Base.metadata.create_all(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.Lock()  # sqlite: serialise writers in this process

    def get(self, cloud_id: str) -> Tenant | None:
        """Return the tenant with this cloudId, if any."""
        with self.sessions() as s:
            return s.get(Tenant, cloud_id)

    def by_client_key(self, client_key: str) -> Tenant | None:
        """Return the Connect tenant with this clientKey, if any."""
        with self.sessions() as s:
            return s.scalars(select(Tenant).where(Tenant.client_key == client_key)).first()

    def upsert(self, cloud_id: str, **fields) -> Tenant:
        """Create the tenant or update the given fields; return it."""
        with self._lock, self.sessions() as s, s.begin():
            tenant = s.get(Tenant, cloud_id)
            if tenant is None:
                tenant = Tenant(cloud_id=cloud_id, site_url=fields.get("site_url", ""))
                s.add(tenant)
            _assign(s, tenant, fields)
            return tenant

    def update(self, cloud_id: str, **fields) -> Tenant | None:
        """Update an existing tenant; return None when there is none."""
        with self._lock, self.sessions() as s, s.begin():
            tenant = s.get(Tenant, cloud_id)
            if tenant is not None:
                _assign(s, tenant, fields)
            return tenant


def _assign(session: Session, tenant: Tenant, fields: dict) -> None:
    for key, value in fields.items():
        setattr(tenant, key, value)
    tenant.updated_at = datetime.now(UTC)
    session.flush()
