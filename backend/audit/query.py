"""Reading the audit log: one organisation's events, filtered, newest first, a page at a time or streamed.

An organisation's log holds its events and its members' sign-ins (recorded without an organisation).
Filters: actor (part of the email, account id or name), action (exact, or a family: "plan" is every
plan.*), target (a public id, or part of the name), from/to (a date or an ISO time; a date `to` counts
the whole day). Exports stream in batches of BATCH rows, so a long log is never held in memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from backend.audit.chain import moment
from backend.db import Database
from backend.db.models import AuditEvent, Membership, Organisation, User

BATCH = 500
CSV_COLUMNS = [
    "seq",
    "time",
    "organisation",
    "actor_kind",
    "actor",
    "actor_name",
    "address",
    "action",
    "target_id",
    "target_name",
    "changes",
    "details",
    "hash",
]


class When(fields.Field):
    """A date (2026-12-01) or an ISO time (2026-12-01T10:00:00+01:00); a time without a zone is UTC."""

    def _deserialize(self, value, attr, data, **kwargs) -> datetime | date:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError("give a date (YYYY-MM-DD) or an ISO time")
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError("not a date (YYYY-MM-DD) or an ISO time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class AuditFilters(Schema):
    """The query string of the audit page, its exports and GET /organisations/{cloud_id}/audit."""

    class Meta:
        unknown = EXCLUDE

    actor = fields.String(validate=validate.Length(max=255))
    action = fields.String(validate=validate.Length(max=64))
    target = fields.String(validate=validate.Length(max=255))
    since = When(data_key="from")
    until = When(data_key="to")

    def load_filters(self, args: Any) -> dict[str, Any]:
        """The filters (an empty field is no filter); bad values raise ValidationError naming the field."""
        raw = {k: v for k, v in dict(args).items() if k in FILTER_KEYS and isinstance(v, str) and v.strip()}
        data = self.load(raw)
        out = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        since, until = _start(out.get("since")), _end(out.get("until"))
        if since and until and since >= until:
            raise ValidationError({"to": ["must be after from"]})
        return out


FILTER_KEYS = ("actor", "action", "target", "from", "to")


def _start(value: date | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, time.min, UTC)


def _end(value: date | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value + timedelta(days=1), time.min, UTC)


def scoped(s: Session, org: Organisation) -> Select:
    """The organisation's events: its own, and its members' sign-ins (recorded without one)."""
    emails = select(User.email).join(Membership, Membership.user_id == User.id)
    emails = emails.where(Membership.organisation_id == org.id, User.email.is_not(None))
    return select(AuditEvent).where(
        or_(
            AuditEvent.cloud_id == org.cloud_id,
            and_(AuditEvent.cloud_id.is_(None), AuditEvent.actor.in_(emails)),
        )
    )


def filtered(query: Select, filters: dict[str, Any]) -> Select:
    if filters.get("actor"):
        who = filters["actor"]
        query = query.where(
            or_(
                AuditEvent.actor.icontains(who, autoescape=True),
                AuditEvent.actor_name.icontains(who, autoescape=True),
            )
        )
    if filters.get("action"):
        action = filters["action"].lower()
        query = query.where(
            or_(AuditEvent.action == action, AuditEvent.action.startswith(action + ".", autoescape=True))
        )
    if filters.get("target"):
        what = filters["target"]
        query = query.where(
            or_(AuditEvent.target_id == what, AuditEvent.target_name.icontains(what, autoescape=True))
        )
    since, until = _start(filters.get("since")), _end(filters.get("until"))
    if since is not None:
        query = query.where(AuditEvent.time >= since.astimezone(UTC))
    if until is not None:
        query = query.where(AuditEvent.time < until.astimezone(UTC))
    return query


def page(s: Session, query: Select, limit: int, before: int | None) -> tuple[list[AuditEvent], int | None]:
    """Up to `limit` events newest first, older than seq `before`; and the next page's cursor."""
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    rows = list(s.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


def event_json(e: AuditEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "time": moment(e.time),
        "organisation": e.cloud_id,
        "actor": {"kind": e.actor_kind, "id": e.actor, "name": e.actor_name},
        "address": e.address,
        "action": e.action,
        "target": {"id": e.target_id, "name": e.target_name},
        "changes": e.changes,
        "details": e.details,
        "hash": e.hash,
    }


def _batches(db: Database, org_id: int, filters: dict[str, Any]) -> Iterator[AuditEvent]:
    before: int | None = None
    while True:
        with db.session() as s:
            org = s.get(Organisation, org_id)
            assert org is not None
            rows, before = page(s, filtered(scoped(s, org), filters), BATCH, before)
        yield from rows
        if before is None:
            return


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    # A cell a spreadsheet would run as a formula starts with a quote instead.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(db: Database, org_id: int, filters: dict[str, Any]) -> Iterator[str]:
    """The filtered events as CSV, a header line then one line per event, newest first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for e in _batches(db, org_id, filters):
        writer.writerow(
            [
                str(e.seq),
                moment(e.time),
                e.cloud_id or "",
                e.actor_kind,
                _cell(e.actor),
                _cell(e.actor_name),
                e.address,
                e.action,
                _cell(e.target_id),
                _cell(e.target_name),
                _cell(e.changes),
                _cell(e.details),
                e.hash,
            ]
        )
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def json_rows(db: Database, org_id: int, filters: dict[str, Any]) -> Iterator[str]:
    """The filtered events as one JSON array, newest first, written an event at a time."""
    yield "["
    first = True
    for e in _batches(db, org_id, filters):
        yield ("\n" if first else ",\n") + json.dumps(event_json(e), ensure_ascii=False)
        first = False
    yield "\n]\n"
