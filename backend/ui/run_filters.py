"""The /runs page's filters: plan, state, trigger and a date range, read from the query string.

Each value is checked on the server; a wrong one gives an error beside its field and the page lists
nothing (an unfiltered list under a filter the reader believes applied would mislead). Dates are whole
days in the organisation's time zone, `to` included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select

from backend.db.models import Plan, Run

STATES = ("queued", "running", "succeeded", "warning", "partial", "failed", "cancelled")
TRIGGERS = {"manual": "Backup now", "schedule": "Schedule"}
KEYS = ("plan", "state", "trigger", "from", "to")


@dataclass
class RunFilters:
    """What the reader asked for, each error by field, and whether any filter applies."""

    values: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)
    plan_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def active(self) -> bool:
        return any(self.values.values())

    def apply(self, query: Select[Any]) -> Select[Any]:
        """The query narrowed to the filters (call only when there is no error)."""
        if self.plan_id is not None:
            query = query.where(Run.plan_id == self.plan_id)
        if self.values.get("state"):
            query = query.where(Run.state == self.values["state"])
        if self.values.get("trigger"):
            query = query.where(Run.trigger == self.values["trigger"])
        if self.since is not None:
            query = query.where(Run.created >= self.since)
        if self.until is not None:
            query = query.where(Run.created < self.until)
        return query


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _start_of(day: date, tz: str) -> datetime:
    """The UTC instant a day starts in `tz`."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def parse(args: Any, plans: list[Plan], tz: str) -> RunFilters:
    """Read and check the filters of a query string against the organisation's plans."""
    values = {k: str(args.get(k, "")).strip()[:64] for k in KEYS}
    out = RunFilters(values)
    if values["plan"]:
        match = next((p for p in plans if p.public_id == values["plan"]), None)
        if match is None:
            out.errors["plan"] = ["No plan of this organisation has this id."]
        else:
            out.plan_id = match.id
    if values["state"] and values["state"] not in STATES:
        out.errors["state"] = [f"Choose one of: {', '.join(STATES)}."]
    if values["trigger"] and values["trigger"] not in TRIGGERS:
        out.errors["trigger"] = ["Choose Backup now or Schedule."]
    days: dict[str, date] = {}
    for key in ("from", "to"):
        if values[key]:
            day = _day(values[key])
            if day is None:
                out.errors[key] = ["Enter a date as YYYY-MM-DD."]
            else:
                days[key] = day
    if "from" in days and "to" in days and days["from"] > days["to"]:
        out.errors["to"] = ["The end date is before the start date."]
    if not out.errors:
        if "from" in days:
            out.since = _start_of(days["from"], tz)
        if "to" in days:
            out.until = _start_of(days["to"] + timedelta(days=1), tz)
    return out
