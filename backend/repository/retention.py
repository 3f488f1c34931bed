"""Retention: which snapshots a rotation policy keeps, and forgetting the rest (docs/retention.md).

A policy is evaluated per project. Its calendar rules (hourly, daily, weekly, monthly, yearly) each keep
the newest snapshot of the N most recent periods that hold a snapshot, periods being calendar periods in
the organisation's time zone (ISO weeks for weekly); keep-last keeps the N newest snapshots; keep-within
keeps every snapshot younger than a duration before the project's newest snapshot. A snapshot is kept when
any rule keeps it, when an admin marked it kept, or when it is the newest of its project (a project is
never emptied by a policy; when the project is gone from Jira that snapshot is its archive).

Forgetting removes snapshot files only; the data they referenced stays until prune. It takes the
repository's exclusive lock, so it never runs while a backup (which holds a shared lock) is writing:
nothing of a run in progress can be forgotten.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Container, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from backend.storage import NotFound, RetentionLocked

if TYPE_CHECKING:
    from backend.repository.model import SnapshotInfo
    from backend.repository.repository import Repository

SCHEMES = ("gfs", "custom", "unlimited")
CALENDAR_RULES = ("hourly", "daily", "weekly", "monthly", "yearly")
COUNT_RULES = ("last", *CALENDAR_RULES)
GFS_DEFAULT = {"daily": 7, "weekly": 4, "monthly": 12, "yearly": 3}
DEFAULT_ROTATION = {"scheme": "gfs", **{f"keep_{rule}": n for rule, n in GFS_DEFAULT.items()}}
MAX_COUNT = 100_000
# Keys of rotation dicts stored before the policy had keep_* names: {"scheme": "gfs", "daily": 7, ...}.
LEGACY_KEYS = {"hourly": "keep_hourly", "daily": "keep_daily", "weekly": "keep_weekly",
               "monthly": "keep_monthly", "yearly": "keep_yearly"}  # fmt: skip
_DURATION = re.compile(r"(\d+)([hdwmy])")
_DURATION_WHOLE = re.compile(r"(?:\d+[hdwmy])+")


class PolicyError(ValueError):
    """A policy that cannot be applied; `field` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Duration:
    """A calendar duration such as 30d, 12h, 2w, 1y or 1y6m (units h, d, w, m = months, y)."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0
    text: str = ""

    @classmethod
    def parse(cls, text: str, field: str = "keep_within") -> Duration:
        if not isinstance(text, str) or not _DURATION_WHOLE.fullmatch(text.strip()):
            raise PolicyError(
                field, f"{text!r} is not a duration: use a number and a unit, e.g. 30d, 12h, 2w, 6m, 1y"
            )
        parts = {"h": 0, "d": 0, "w": 0, "m": 0, "y": 0}
        for number, unit in _DURATION.findall(text.strip()):
            parts[unit] += int(number)
        if sum(parts.values()) == 0:
            raise PolicyError(field, f"{text!r} is an empty duration")
        if parts["y"] > 1000 or parts["m"] > 12_000 or parts["w"] > 52_000 or parts["d"] > 365_000:
            raise PolicyError(field, f"{text!r} is longer than any history")
        if parts["h"] > 8_760_000:
            raise PolicyError(field, f"{text!r} is longer than any history")
        return cls(parts["y"], parts["m"], parts["w"] * 7 + parts["d"], parts["h"], text.strip())

    def __str__(self) -> str:
        return self.text

    def before(self, moment: datetime, tz: tzinfo) -> datetime:
        """The instant this duration before `moment`: years, months and days on the wall clock of `tz`
        (the day clamped to the month's length), then hours as elapsed time."""
        local = moment.astimezone(tz)
        month_index = local.year * 12 + (local.month - 1) - self.years * 12 - self.months
        year, month = divmod(month_index, 12)
        year = max(year, 1)
        day = min(local.day, calendar.monthrange(year, month + 1)[1])
        wall = local.replace(year=year, month=month + 1, day=day) - timedelta(days=self.days)
        return wall.astimezone(UTC) - timedelta(hours=self.hours)


@dataclass(frozen=True)
class Policy:
    """A rotation scheme: gfs or custom counts (0 = rule off), keep-within, or unlimited."""

    scheme: str = "gfs"
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: Duration | None = None

    @classmethod
    def from_dict(cls, raw: Any) -> Policy:
        """Read a plan's rotation dict (current keep_* keys, or the legacy daily/weekly/... keys)."""
        if not isinstance(raw, dict):
            raise PolicyError("rotation", "must be an object")
        scheme = raw.get("scheme")
        if scheme is None:
            raise PolicyError("scheme", f"missing: choose one of {', '.join(SCHEMES)}")
        if scheme not in SCHEMES:
            raise PolicyError("scheme", f"{scheme!r} is not one of {', '.join(SCHEMES)}")
        counts: dict[str, int] = {}
        within: Duration | None = None
        for key, value in raw.items():
            if key == "scheme":
                continue
            name = LEGACY_KEYS.get(key, key)
            if name == "keep_within":
                if value is None:
                    continue
                within = Duration.parse(value, key)
                continue
            rule = name.removeprefix("keep_")
            if not name.startswith("keep_") or rule not in COUNT_RULES:
                raise PolicyError(key, "unknown rotation field")
            if rule in counts:
                raise PolicyError(key, f"given twice (as {key} and keep_{rule})")
            if isinstance(value, bool) or not isinstance(value, int):
                raise PolicyError(key, "must be a whole number")
            if value < 0:
                raise PolicyError(key, "must not be negative (0 turns the rule off)")
            if value > MAX_COUNT:
                raise PolicyError(key, f"must be at most {MAX_COUNT}")
            counts[rule] = value
        if scheme == "unlimited":
            given = [k for k in raw if k != "scheme"]
            if given:
                raise PolicyError(given[0], "the unlimited scheme keeps everything and takes no rules")
            return cls("unlimited")
        if scheme == "gfs":
            for rule in ("last",):
                if rule in counts:
                    raise PolicyError(f"keep_{rule}", "not part of gfs: use the custom scheme")
            if within is not None:
                raise PolicyError("keep_within", "not part of gfs: use the custom scheme")
            if not any(counts.values()):
                if counts:  # every count given as 0
                    raise PolicyError("keep_daily", "gfs needs at least one count above 0")
                counts = dict(GFS_DEFAULT)
        elif not any(counts.values()) and within is None:
            raise PolicyError(
                "keep_last",
                "a custom scheme needs at least one rule (keep_last, keep_within, keep_daily, ...)",
            )
        return cls(scheme, within=within, **counts)

    def to_dict(self) -> dict[str, Any]:
        """The canonical stored form: {"scheme": ..., "keep_daily": 7, ..., "keep_within": "30d"}."""
        out: dict[str, Any] = {"scheme": self.scheme}
        for rule in COUNT_RULES:
            if getattr(self, rule):
                out[f"keep_{rule}"] = getattr(self, rule)
        if self.within is not None:
            out["keep_within"] = str(self.within)
        return out

    def describe(self) -> str:
        if self.scheme == "unlimited":
            return "unlimited (never forget)"
        parts = [f"{rule} {getattr(self, rule)}" for rule in COUNT_RULES if getattr(self, rule)]
        if self.within is not None:
            parts.append(f"within {self.within}")
        return f"{self.scheme}: " + ", ".join(parts)


def period(rule: str, moment: datetime, tz: tzinfo) -> Hashable:
    """The calendar period of `moment` in `tz` for one rule (an ISO week for weekly)."""
    local = moment.astimezone(tz)
    if rule == "hourly":
        return (local.year, local.month, local.day, local.hour)
    if rule == "daily":
        return local.date()
    if rule == "weekly":
        iso = local.isocalendar()
        return (iso.year, iso.week)
    if rule == "monthly":
        return (local.year, local.month)
    if rule == "yearly":
        return local.year
    raise ValueError(rule)


@dataclass(frozen=True)
class Candidate:
    """A snapshot as the policy sees it: its project, its time (aware), and whether it is marked kept."""

    id: str
    project: str
    time: datetime
    marked: bool = False


@dataclass
class Verdict:
    id: str
    project: str
    time: datetime
    keep: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "time": self.time.astimezone(UTC).isoformat(timespec="milliseconds"),
            "keep": self.keep,
            "reasons": self.reasons,
        }


def decide(
    policy: Policy, candidates: Iterable[Candidate], tz: tzinfo, archived: Container[str] = ()
) -> list[Verdict]:
    """Keep or forget each candidate, newest first per project, with the reasons each kept one is kept.

    `archived` names projects that no longer exist in Jira: their newest snapshot is kept as "archive".
    """
    by_project: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_project.setdefault(c.project, []).append(c)
    out: list[Verdict] = []
    for project in sorted(by_project):
        group = sorted(by_project[project], key=lambda c: (c.time.astimezone(UTC), c.id), reverse=True)
        reasons: list[list[str]] = [[] for _ in group]
        if policy.scheme == "unlimited":
            for r in reasons:
                r.append("unlimited")
        else:
            if policy.last:
                for i in range(min(policy.last, len(group))):
                    reasons[i].append("last")
            for rule in CALENDAR_RULES:
                wanted = getattr(policy, rule)
                seen: set[Hashable] = set()
                for i, c in enumerate(group):
                    if len(seen) >= wanted:
                        break
                    key = period(rule, c.time, tz)
                    if key not in seen:  # the first met, newest first, is the newest of its period
                        seen.add(key)
                        reasons[i].append(rule)
            if policy.within is not None:
                cutoff = policy.within.before(group[0].time, tz)
                for i, c in enumerate(group):
                    if c.time.astimezone(UTC) > cutoff:
                        reasons[i].append(f"within {policy.within}")
        for i, c in enumerate(group):
            if c.marked:
                reasons[i].append("marked keep")
        if project in archived:
            reasons[0].append("archive")
        elif not reasons[0]:
            reasons[0].append("newest")
        out += [Verdict(c.id, c.project, c.time, bool(r), r) for c, r in zip(group, reasons, strict=True)]
    return out


def snapshot_time(info: SnapshotInfo) -> datetime:
    moment = datetime.fromisoformat(info.time)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class ForgetResult:
    policy: Policy
    verdicts: list[Verdict]
    dry_run: bool
    removed: list[str] = field(default_factory=list)
    # forgotten snapshots an immutable storage still retains: {"id", "project", "until"}; a later forget
    # removes them once the retention has ended
    retained: list[dict[str, str]] = field(default_factory=list)

    @property
    def kept(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.keep]

    @property
    def forgotten(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.keep]

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.to_dict(),
            "dry_run": self.dry_run,
            "keep": [v.to_dict() for v in self.kept],
            "forget": [v.to_dict() for v in self.forgotten],
            "removed": self.removed,
            "retained": self.retained,
        }

    def summary(self, limit: int = 8) -> list[str]:
        """One line per project: what was kept (grouped by the rules that kept it) and what was forgotten."""
        return list(self.by_project(limit).values())

    def by_project(self, limit: int = 8) -> dict[str, str]:
        lines = {}
        projects = sorted({v.project for v in self.verdicts})
        for project in projects:
            mine = [v for v in self.verdicts if v.project == project]
            kept = [v for v in mine if v.keep]
            gone = [v for v in mine if not v.keep]
            groups: dict[str, list[str]] = {}
            for v in kept:
                groups.setdefault(", ".join(v.reasons), []).append(v.id[:8])
            kept_text = "; ".join(f"{reason}: {_ids(ids, limit)}" for reason, ids in groups.items())
            verb = "would forget" if self.dry_run else "forgot"
            line = f"{project}: kept {len(kept)} of {len(mine)} ({kept_text})"
            line += f"; {verb} {len(gone)}" + (f": {_ids([v.id[:8] for v in gone], limit)}" if gone else "")
            held = [r for r in self.retained if r["project"] == project]
            if held:
                line += (
                    f"; {len(held)} of them still under retention (until {min(r['until'] for r in held)}, "
                    f"skipped: a later forget removes them): {_ids([r['id'][:8] for r in held], limit)}"
                )
            lines[project] = line
        return lines


def _ids(ids: list[str], limit: int) -> str:
    shown = " ".join(ids[:limit])
    return shown + (f" (+{len(ids) - limit} more)" if len(ids) > limit else "")


def forget(
    repo: Repository,
    policy: Policy,
    tz: tzinfo,
    *,
    include: Any = None,
    archived: Container[str] = (),
    dry_run: bool = False,
) -> ForgetResult:
    """Apply `policy` to the repository's snapshots (those `include(info)` accepts, default all).

    Takes the exclusive lock (RepositoryLocked while any backup writes), decides on a fresh listing,
    then removes the forgotten snapshot files oldest first. Each removal is atomic: a forget stopped
    half-way leaves a readable repository holding a superset of the kept snapshots, and running it again
    finishes the job. A dry run takes no lock and changes nothing.
    """

    def run() -> ForgetResult:
        infos = [s for s in repo.snapshots() if include is None or include(s)]
        marks = repo.keep_marks()
        candidates = [Candidate(s.id, s.project, snapshot_time(s), s.id in marks) for s in infos]
        result = ForgetResult(policy, decide(policy, candidates, tz, archived), dry_run)
        if dry_run:  # say what an immutable storage would keep (no request on the others)
            for verdict in result.forgotten:
                try:
                    until = repo.storage.retained_until("snapshots", verdict.id)
                except NotFound:
                    until = None
                if until is not None:
                    stamp = until.isoformat(timespec="seconds")
                    result.retained.append({"id": verdict.id, "project": verdict.project, "until": stamp})
        else:
            for verdict in sorted(result.forgotten, key=lambda v: v.time.astimezone(UTC)):
                try:
                    repo.forget(verdict.id)
                except NotFound:
                    pass  # already gone (another forget got there first): the outcome is the same
                except RetentionLocked as e:  # an immutable storage: skipped, and said
                    until = e.until.isoformat(timespec="seconds") if e.until else "unknown"
                    result.retained.append({"id": verdict.id, "project": verdict.project, "until": until})
                    continue
                result.removed.append(verdict.id)
        return result

    if dry_run:
        return run()
    with repo.lock(exclusive=True):
        return run()
