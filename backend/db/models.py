"""The backend's tables: tenants, their Jira accounts, storages, plans, runs and their results, users, used tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from backend.db.ids import new_id


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    cloud_id: Mapped[str] = mapped_column(String(64), unique=True)
    site_url: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    state: Mapped[str] = mapped_column(String(16), default="active")  # active | suspended
    created: Mapped[datetime] = mapped_column(default=utcnow)
    plans: Mapped[list[Plan]] = relationship(back_populates="organisation", cascade="all, delete-orphan")


class JiraAccount(Base):
    __tablename__ = "jira_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), unique=True)
    site_url: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255))
    token_sealed: Mapped[str] = mapped_column(Text)
    account_id: Mapped[str] = mapped_column(String(128), default="")
    display_name: Mapped[str] = mapped_column(String(255), default="")
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who set the token and when, and the last check against Jira's /myself (migration 0006).
    set_by: Mapped[str] = mapped_column(String(255), default="")
    set_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_check_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_check_ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    last_check_message: Mapped[str] = mapped_column(Text, default="")


class Plan(Base):
    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_id("plan"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(255))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    schedule: Mapped[dict[str, Any]] = mapped_column(
        default=dict
    )  # {days, hour, time_zone} or {cron, time_zone}
    rotation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    storage_url: Mapped[str] = mapped_column(String(1024))  # the default repository, used without a storage
    created: Mapped[datetime] = mapped_column(default=utcnow)
    organisation: Mapped[Organisation] = relationship(back_populates="plans")
    # The primary storage (none: the default repository URL above) and the replicas, in their order.
    storage_id: Mapped[int | None] = mapped_column(ForeignKey("storages.id"), nullable=True, index=True)
    storage: Mapped[StorageRecord | None] = relationship(lazy="joined")
    replica_links: Mapped[list[PlanReplica]] = relationship(
        cascade="all, delete-orphan", order_by="PlanReplica.position", lazy="selectin"
    )


class StorageRecord(Base):
    """Where an organisation's backups may go: a local folder, an Azure Blob container or an S3 bucket.

    `location` is the kind's normalised location (no secret); `credentials_sealed` the kind's credentials
    as JSON sealed by backend/vault.py, bound to the organisation and this storage's public id.
    `immutability` is stored and validated; enforcing it is a later slice.
    """

    __tablename__ = "storages"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_id("storage"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # local | azure | s3
    location: Mapped[dict[str, Any]] = mapped_column(default=dict)
    credentials_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    region: Mapped[str] = mapped_column(String(64), default="")
    immutability: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class PlanReplica(Base):
    """A plan's replica storage: after each run the run's repository is copied there (backend/runs.py).

    `replication` is the replica's status as the last run left it: state (ok | failed), lag (snapshots
    of the plan on the primary that the replica lacks), last_replicated and last_attempt (ISO times),
    bytes (stored on the replica), bytes_last_copy, snapshots_last_copy, error (the last failure).
    """

    __tablename__ = "plan_replicas"
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), primary_key=True)
    storage_id: Mapped[int] = mapped_column(ForeignKey("storages.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    replication: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    storage: Mapped[StorageRecord] = relationship(lazy="joined")


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_id("run"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # manual | schedule
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # queued | running | succeeded | warning | partial | failed | cancelled
    created: Mapped[datetime] = mapped_column(default=utcnow)
    started: Mapped[datetime | None] = mapped_column(nullable=True)
    finished: Mapped[datetime | None] = mapped_column(nullable=True)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str] = mapped_column(Text, default="")
    plan: Mapped[Plan] = relationship(lazy="joined")
    projects: Mapped[list[ProjectRun]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="ProjectRun.id"
    )


class ProjectRun(Base):
    __tablename__ = "project_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    project: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    snapshot_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    errors: Mapped[list[Any]] = mapped_column(default=list)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    run: Mapped[Run] = relationship(back_populates="projects")


class RunLog(Base):
    __tablename__ = "run_logs"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    project: Mapped[str | None] = mapped_column(String(64), nullable=True)
    level: Mapped[str] = mapped_column(String(8), default="info")
    message: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(default=utcnow)


class ActiveRun(Base):
    """At most one active run per plan, across every process: the primary key is the lock."""

    __tablename__ = "active_runs"
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer)


class ScheduledFire(Base):
    """One row per plan and scheduled slot, so that two schedulers firing the same slot start one run."""

    __tablename__ = "scheduled_fires"
    __table_args__ = (UniqueConstraint("plan_id", "slot"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    slot: Mapped[str] = mapped_column(String(32))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    jira_account_id: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "organisation_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    role: Mapped[str] = mapped_column(String(16), default="admin")
    # manual: the role an admin gave (kept); jira: made by More features, the role follows Jira's (0006)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_id("member"))
    created: Mapped[datetime] = mapped_column(default=utcnow)


class UsedToken(Base):
    """JWT ids already spent (SSO hand-offs): inserting twice fails, which is the replay check."""

    __tablename__ = "used_tokens"
    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires: Mapped[datetime] = mapped_column()


class BrowserSession(Base):
    """A signed-in browser. Its cookie carries a random id (signed); this row says whether it still counts.

    The key is the SHA-256 of that id, so the table alone opens no session. A row that is missing, revoked
    (logout), idle too long or too old refuses the cookie (backend/auth/sessions.py).
    """

    __tablename__ = "browser_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True)  # pinned by an SSO hand-off
    created: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


# --- Audit (issue 16): the append-only audit log (migration 0008; written only by backend/audit) ---------


class AuditEvent(Base):
    """One recorded change: who (actor), when, from where (address), what (action, target, changes).

    Append-only: nothing in the code updates or deletes a row, and a trigger refuses UPDATE and DELETE
    (migration 0008). `seq` numbers the events without gaps; `hash` is sha256(prev_hash + the event's
    canonical JSON) (backend/audit/chain.py), so an edited, removed or inserted row breaks the chain.
    `changes` maps a field to {before, after}; a secret is never stored, only "(changed)".
    """

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    time: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    cloud_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))  # user | connector | cli | anonymous
    actor: Mapped[str] = mapped_column(String(255), default="")  # email, Jira account id, connector, cli
    actor_name: Mapped[str] = mapped_column(String(255), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_id: Mapped[str] = mapped_column(String(255), default="")
    target_name: Mapped[str] = mapped_column(String(255), default="")
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# --- Notifications (issue 16): channels with their rules, and the delivery outbox (backend/notify/) ----


class NotificationChannel(Base):
    """Where an organisation's notifications go: email recipients (SMTP set by the environment) or a webhook.

    The rules live on the channel: `events` (failure, warning, success, digest) and `plans` (plan public ids;
    empty: every plan of the organisation). `address` is the comma-separated recipients or the webhook URL;
    `secret_sealed` the webhook's signing secret sealed by backend/vault.py, bound to the organisation and
    this channel's public id (never returned after it is made).
    """

    __tablename__ = "notification_channels"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_id("channel"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # email | webhook
    address: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16), default="json")  # webhook: json | slack | teams
    secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    events: Mapped[list[Any]] = mapped_column(default=list)
    plans: Mapped[list[Any]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationMessage(Base):
    """One message for one channel: the outbox row, written in the transaction that decides to send it.

    backend/notify/sender.py claims due rows (state pending, or sending with an expired lease), delivers
    them at least once and marks them delivered once; `key` is the idempotency key sent with every try so
    a receiver can drop a repeat. `dedupe` (e.g. run:<id>, digest:<date>) makes enqueueing idempotent.
    """

    __tablename__ = "notification_outbox"
    __table_args__ = (UniqueConstraint("channel_id", "dedupe"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("notification_channels.id"), index=True)
    # no foreign key: a message outlives its run (deleting a plan deletes its runs); the payload says it all
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    event: Mapped[str] = mapped_column(String(16))  # failure | warning | success | digest | test
    dedupe: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    # pending | sending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    claim: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_status: Mapped[str] = mapped_column(String(255), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)


# --- Keys (issue 13): an organisation's recovery passphrase, as its public half only (backend/recovery.py) -


class RecoveryKeyRecord(Base):
    """The organisation's recovery key: never the passphrase, only what wraps without it.

    `public` is backend.repository.crypto.RecoveryKey.to_dict() (an X25519 public key and the scrypt salt
    and settings that derive the private half from the passphrase); `fingerprint` names it in answers and in
    the repositories' key files. A run adds the wrap to each repository it opens that lacks it.
    """

    __tablename__ = "recovery_keys"
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(200), default="")
    public: Mapped[dict[str, Any]] = mapped_column(default=dict)
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Workers (issue 18): runs on Celery workers (migration 0009; written only by backend/workers) -----------


class WorkRun(Base):
    """A run executed by workers: what its start task selected once, and the lease of its conclusion."""

    __tablename__ = "work_runs"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    site_objects: Mapped[dict[str, Any]] = mapped_column(default=dict)  # read once, kept by every project
    requests: Mapped[int] = mapped_column(Integer, default=0)  # the selection's requests
    concluder: Mapped[str] = mapped_column(String(255), default="")
    conclude_until: Mapped[datetime | None] = mapped_column(nullable=True)
    concluded: Mapped[datetime | None] = mapped_column(nullable=True)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class WorkItem(Base):
    """One project task of a run: its attempts, the lease of the attempt holding it, its commit marker.

    `snapshot_id` is set once (a conditional update by the lease holder) right after the snapshot was
    committed: the one snapshot of (run, project) that counts; any other is an abandoned attempt's.
    """

    __tablename__ = "work_items"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    project: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    holder: Mapped[str] = mapped_column(String(255), default="")  # host:pid:task id of the lease holder
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    updated: Mapped[datetime] = mapped_column(default=utcnow)


# --- Accounts and roles (issue 16): invitations of local users (migration 0006; backend/api/members.py) -----


class Invitation(Base):
    """An invitation of a local user by email: a one-time token (only its SHA-256 kept), 7 days to accept.

    Accepting sets the new user's password (or, for an email that already has an account, asks for that
    account's password) and makes the membership with `role`; the row then records who accepted and when.
    """

    __tablename__ = "invitations"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_id("invitation"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[datetime] = mapped_column(default=utcnow)
    expires: Mapped[datetime] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    accepted_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


# --- Snapshot catalog (issue 17): what each snapshot holds, so browsing and search never read packs ---------
# (migration 0012; backend/catalog/). Rebuildable from the repositories alone: `keepstone backend catalog rebuild`.


class CatalogSnapshot(Base):
    """One committed snapshot of a repository: its project, time and sizes."""

    __tablename__ = "catalog_snapshots"
    __table_args__ = (UniqueConstraint("repository", "snapshot_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), nullable=True, index=True)
    repository: Mapped[str] = mapped_column(String(64))  # the repository's own id (its config)
    snapshot_id: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(64), index=True)
    time: Mapped[datetime] = mapped_column(index=True)
    issues: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CatalogIssue(Base):
    """One issue as a snapshot holds it; `version` (its document's blob id) names its text row."""

    __tablename__ = "catalog_issues"
    snapshot: Mapped[int] = mapped_column(
        ForeignKey("catalog_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    issue_id: Mapped[str] = mapped_column(String(32), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    updated: Mapped[str] = mapped_column(String(40), default="")
    version: Mapped[str] = mapped_column(String(64), index=True)


class CatalogText(Base):
    """The searchable text of one issue version (summary, description, comments), stored once however
    many snapshots hold that version; SQLite indexes it with FTS5, PostgreSQL with a tsvector."""

    __tablename__ = "catalog_texts"
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    comments: Mapped[str] = mapped_column(Text, default="")
    # What the browser filters by: status, type, priority, assignee, labels (migration 0014).
    facets: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)


# --- Restores from the management UI (issue 17): a background task each (migration 0013; backend/restores.py)


class RestoreJob(Base):
    """One restore started in the UI: what (`request`, a RestoreRequest as JSON) from which catalogued
    snapshot, its state and progress, and at the end its result (counts, errors, key map, fidelity report).
    Its journal (backend/restore/journal.py) lives in the data folder under the job's id, so a restore
    interrupted by a restart of the service resumes where it stopped."""

    __tablename__ = "restore_jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_id("restore"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    snapshot_id: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # queued | running | succeeded | partial | failed | cancelled
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[datetime] = mapped_column(default=utcnow)
    started: Mapped[datetime | None] = mapped_column(nullable=True)
    finished: Mapped[datetime | None] = mapped_column(nullable=True)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)


class RestoreStep(Base):
    """A restore job's journal in the database (backend/restore/db_journal.py): a step started or done,
    and what it created, so any process (or worker) can resume the job where another one stopped."""

    __tablename__ = "restore_steps"
    job_id: Mapped[int] = mapped_column(ForeignKey("restore_jobs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # started | done
    result: Mapped[Any] = mapped_column(JSON, nullable=True)


class RestoreInfo(Base):
    """Facts a restore job keeps beside its steps (the target project it made, ...)."""

    __tablename__ = "restore_info"
    job_id: Mapped[int] = mapped_column(ForeignKey("restore_jobs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
