"""Installed tenants keyed by cloudId: install facts and the Connect shared secret, never Jira data.

The shared secret is sealed at rest (`connector.sealing`, AES-256-GCM bound to the cloudId): the
`shared_secret` column holds `aesgcm1:...`, and a `Tenant` read through the store carries the opened
secret in memory only (`tenant.shared_secret`). Rows written in plaintext by an older connector are
sealed when the store starts, and any still found later are sealed on first read. A sqlite database
file is created 0600 (and tightened to 0600 if it exists with a wider mode).
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Boolean, DateTime, String, create_engine, delete, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from connector.sealing import Sealer, SealError, is_sealed

log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    """One Jira site that installed the app (Forge, Connect or both)."""

    __tablename__ = "tenants"

    cloud_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_url: Mapped[str] = mapped_column(String(255))
    client_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    sealed_secret: Mapped[str | None] = mapped_column("shared_secret", String(512), nullable=True)
    installation_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    installed: Mapped[bool] = mapped_column(Boolean, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    _secret = None  # the opened shared secret, set by TenantStore; never stored

    @property
    def shared_secret(self) -> str | None:
        """The Connect shared secret (opened by the store that read this row), or None."""
        return self._secret

    def origin(self) -> str:
        """Return the scheme://host[:port] of the tenant's Jira site (the only allowed frame ancestor)."""
        scheme, _, rest = self.site_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"


class ForgeInstallation(Base):
    """One Forge installation (its id from the FIT's `app.installationId`) and whether it was uninstalled.

    An uninstalled installation never comes back (a reinstall gets a new id), so its row is a tombstone:
    a late or replayed installed/upgraded event of that installation changes nothing.
    """

    __tablename__ = "forge_installations"

    installation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    cloud_id: Mapped[str] = mapped_column(String(64))
    uninstalled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HandoffTicket(Base):
    """A one-time ticket for the Forge panel's More features (only its SHA-256 is stored)."""

    __tablename__ = "handoff_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    cloud_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _private_sqlite(database_url: str) -> None:
    """Create the sqlite file 0600 before SQLAlchemy opens it (sqlite gives its journals the same mode)."""
    if not database_url.startswith("sqlite:///") or ":memory:" in database_url:
        return
    path = Path(database_url[len("sqlite:///") :].partition("?")[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    path.chmod(0o600)


class TenantStore:
    """Read and change tenants in one small SQL database (sqlite by default)."""

    def __init__(self, database_url: str, secret_key: str) -> None:
        _private_sqlite(database_url)
        self.engine = create_engine(database_url)
        Base.metadata.create_all(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.Lock()  # sqlite: serialise writers in this process
        self._sealer = Sealer(secret_key)
        self.seal_plaintext()

    def seal_plaintext(self) -> int:
        """Seal every shared secret still stored in plaintext; return how many were sealed."""
        with self._lock, self.sessions() as s, s.begin():
            rows = s.scalars(select(Tenant).where(Tenant.sealed_secret.is_not(None))).all()
            legacy = [t for t in rows if not is_sealed(t.sealed_secret)]
            for t in legacy:
                t.sealed_secret = self._sealer.seal(t.sealed_secret, t.cloud_id)
        if legacy:
            log.info("sealed plaintext shared secrets", extra={"count": len(legacy)})
        return len(legacy)

    def _opened(self, tenant: Tenant | None) -> Tenant | None:
        if tenant is None or tenant.sealed_secret is None:
            return tenant
        if not is_sealed(tenant.sealed_secret):  # written in plaintext by an older connector
            tenant._secret = tenant.sealed_secret
            self.update(tenant.cloud_id, shared_secret=tenant.sealed_secret)
            return tenant
        try:
            tenant._secret = self._sealer.open(tenant.sealed_secret, tenant.cloud_id)
        except SealError:
            log.error("shared secret does not open", extra={"tenant": tenant.cloud_id})
            tenant._secret = None  # treated as no secret: its tokens are refused, nothing crashes
        return tenant

    def get(self, cloud_id: str) -> Tenant | None:
        """Return the tenant with this cloudId, if any."""
        with self.sessions() as s:
            tenant = s.get(Tenant, cloud_id)
        return self._opened(tenant)

    def by_client_key(self, client_key: str) -> Tenant | None:
        """Return the Connect tenant with this clientKey, if any."""
        with self.sessions() as s:
            tenant = s.scalars(select(Tenant).where(Tenant.client_key == client_key)).first()
        return self._opened(tenant)

    def upsert(self, cloud_id: str, **fields) -> Tenant:
        """Create the tenant or update the given fields (`shared_secret` is sealed); return it."""
        with self._lock, self.sessions() as s, s.begin():
            tenant = s.get(Tenant, cloud_id)
            if tenant is None:
                tenant = Tenant(cloud_id=cloud_id, site_url=fields.get("site_url", ""))
                s.add(tenant)
            self._assign(s, tenant, fields)
        return self._opened(tenant)

    def update(self, cloud_id: str, **fields) -> Tenant | None:
        """Update an existing tenant; return None when there is none."""
        with self._lock, self.sessions() as s, s.begin():
            tenant = s.get(Tenant, cloud_id)
            if tenant is not None:
                self._assign(s, tenant, fields)
        return self._opened(tenant)

    def _assign(self, session: Session, tenant: Tenant, fields: dict) -> None:
        for key, value in fields.items():
            if key == "shared_secret":
                key, value = (
                    "sealed_secret",
                    None if value is None else self._sealer.seal(value, tenant.cloud_id),
                )
            setattr(tenant, key, value)
        tenant.updated_at = datetime.now(UTC)
        session.flush()

    # --- Forge installations -------------------------------------------------------------------------

    def forge_installed(self, cloud_id: str, installation_id: str, site_url: str) -> Tenant | None:
        """Record an installed/upgraded event; None when the installation was already uninstalled (a
        late or replayed event: nothing changes). Raises ValueError for an installation of another site."""
        with self._lock, self.sessions() as s, s.begin():
            row = s.get(ForgeInstallation, installation_id)
            if row is not None and row.cloud_id != cloud_id:
                raise ValueError("this installation belongs to another site")
            if row is not None and row.uninstalled:
                return None
            if row is None:
                row = ForgeInstallation(installation_id=installation_id, cloud_id=cloud_id)
                s.add(row)
            row.updated_at = datetime.now(UTC)
            tenant = s.get(Tenant, cloud_id)
            if tenant is None:
                tenant = Tenant(cloud_id=cloud_id, site_url=site_url)
                s.add(tenant)
            fields = {"site_url": site_url, "installation_id": installation_id, "installed": True}
            self._assign(s, tenant, {**fields, "enabled": True})
        return self._opened(tenant)

    def forge_uninstalled(self, cloud_id: str, installation_id: str) -> Tenant | None:
        """Record an uninstalled event (a tombstone, even before its installed event arrives); return the
        tenant when this uninstalled the site, None when another installation of it is still live.

        A site has one installation at a time, so of the installations whose installed event arrived,
        all but one will be uninstalled: the site stays installed while one without a tombstone is
        left (the newest seen), whatever order the events came in.
        """
        now = datetime.now(UTC)
        with self._lock, self.sessions() as s, s.begin():
            row = s.get(ForgeInstallation, installation_id)
            if row is not None and row.cloud_id != cloud_id:
                raise ValueError("this installation belongs to another site")
            if row is None:
                row = ForgeInstallation(installation_id=installation_id, cloud_id=cloud_id)
                s.add(row)
            row.uninstalled = True
            row.updated_at = now
            s.flush()
            tenant = s.get(Tenant, cloud_id)
            if tenant is None or tenant.installation_id not in (None, installation_id):
                return None
            live = s.scalars(
                select(ForgeInstallation)
                .where(ForgeInstallation.cloud_id == cloud_id, ForgeInstallation.uninstalled.is_(False))
                .order_by(ForgeInstallation.updated_at.desc())
            ).first()
            if live is not None:
                self._assign(s, tenant, {"installation_id": live.installation_id})
                return None
            self._assign(s, tenant, {"installed": False, "enabled": False})
        return self._opened(tenant)

    # --- one-time hand-off tickets -------------------------------------------------------------------

    def add_ticket(self, ticket_hash: str, cloud_id: str, account_id: str, name: str, lifetime: int) -> None:
        """Keep a ticket's hash for `lifetime` seconds (expired tickets are dropped on the way)."""
        now = datetime.now(UTC)
        with self._lock, self.sessions() as s, s.begin():
            s.execute(delete(HandoffTicket).where(HandoffTicket.expires_at < now))
            s.add(
                HandoffTicket(
                    ticket_hash=ticket_hash,
                    cloud_id=cloud_id,
                    account_id=account_id,
                    name=name,
                    expires_at=now + timedelta(seconds=lifetime),
                )
            )

    def burn_ticket(self, ticket_hash: str) -> HandoffTicket | None:
        """Take a ticket once: the row is deleted, and only the one delete that removed it gets it."""
        with self._lock, self.sessions() as s, s.begin():
            ticket = s.get(HandoffTicket, ticket_hash)
            if ticket is None:
                return None
            if s.execute(delete(HandoffTicket).where(HandoffTicket.ticket_hash == ticket_hash)).rowcount != 1:
                return None
        expires = ticket.expires_at if ticket.expires_at.tzinfo else ticket.expires_at.replace(tzinfo=UTC)
        return ticket if expires > datetime.now(UTC) else None
