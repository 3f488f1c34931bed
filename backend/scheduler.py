"""Plan schedules with APScheduler 3 and a persistent SQLAlchemy job store.

A plan's schedule is days of the week + hour in a time zone (or a cron expression). Missed runs follow
the misfire policy: coalesced into one run if the backend was down for less than the grace time, else
skipped. Several backend processes may run schedulers on one database: each fire claims its (plan, slot)
row first, so one slot starts one run however many schedulers fire it.

The plans table is the truth, the job store follows it: a process that runs a scheduler writes a plan's
job when the API changes the plan, and every scheduler also reconciles the store with the plans table at
start and every `sync_seconds` (a web process started with KEEPSTONE_SCHEDULER=off writes plans but no
jobs; the scheduler process picks its changes up there).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

log = logging.getLogger(__name__)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ACTIVE: dict[str, Any] = {}


class ScheduleError(ValueError):
    """The schedule cannot be run; `field` says which part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError("time_zone", f"unknown time zone {name!r}") from None


def trigger_for(schedule: dict[str, Any], default_tz: str) -> CronTrigger:
    """The cron trigger of a schedule; ScheduleError if it is impossible."""
    tz = zone(schedule.get("time_zone") or default_tz)
    if schedule.get("cron"):
        try:
            return CronTrigger.from_crontab(schedule["cron"], timezone=tz)
        except ValueError as e:
            raise ScheduleError("cron", f"not a valid cron expression: {e}") from None
    days = schedule.get("days") or []
    if not days:
        raise ScheduleError("days", "choose at least one day of the week")
    bad = [d for d in days if d not in DAYS]
    if bad:
        raise ScheduleError("days", f"unknown days {bad}: use {', '.join(DAYS)}")
    hour = schedule.get("hour")
    if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
        raise ScheduleError("hour", "the hour must be a whole number from 0 to 23")
    ordered = [d for d in DAYS if d in days]
    return CronTrigger(day_of_week=",".join(ordered), hour=hour, minute=0, timezone=tz)


def next_fire(schedule: dict[str, Any], default_tz: str, now: datetime | None = None) -> datetime | None:
    trigger = trigger_for(schedule, default_tz)
    return trigger.get_next_fire_time(None, now or datetime.now(UTC))


def current_slot(schedule: dict[str, Any], default_tz: str, now: datetime, grace_seconds: int) -> datetime:
    """The latest scheduled time at or before `now` (the slot a fire belongs to; the same in every process)."""
    trigger = trigger_for(schedule, default_tz)
    slot = trigger.get_next_fire_time(None, now - timedelta(seconds=grace_seconds)) or now
    while True:
        following = trigger.get_next_fire_time(slot, slot + timedelta(seconds=1))
        if following is None or following > now:
            return min(slot, now)
        slot = following


def fire_plan(plan_id: int) -> None:
    """The job every schedule runs (module level, so the job store can persist a reference to it)."""
    runs = _ACTIVE.get("runs")
    if runs is None:
        log.warning("schedule fired with no run service", extra={"plan_id": plan_id})
        return
    runs.start_scheduled(plan_id)


def _same_trigger(a: CronTrigger, b: CronTrigger) -> bool:
    return str(a) == str(b) and str(a.timezone) == str(b.timezone)


class PlanScheduler:
    def __init__(self, database_url: str, runs, grace_seconds: int, sync_seconds: int = 30) -> None:
        self.runs = runs
        self.sync_seconds = sync_seconds
        self.scheduler = BackgroundScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(url=database_url, tablename="apscheduler_jobs"),
                "local": MemoryJobStore(),  # this process's own upkeep, never shared
            },
            job_defaults={"coalesce": True, "misfire_grace_time": grace_seconds, "max_instances": 1},
            timezone=UTC,
        )

    def start(self) -> None:
        _ACTIVE["runs"] = self.runs
        self.scheduler.start()
        self.reconcile()
        self.scheduler.add_job(
            self.reconcile, "interval", seconds=self.sync_seconds, id="reconcile", jobstore="local"
        )

    def reconcile(self) -> int:
        """Make the job store match the plans table; return how many jobs were added, moved or removed.

        A plan that should run (enabled, with a schedule, of an active organisation) keeps its job as it is
        when the trigger is the same (its next run time, a missed slot included, stays), gets it replaced
        when the schedule or the time zone changed, and added when it has none; a job whose plan should
        not run or is gone is removed."""
        from backend.db.models import Plan

        with self.runs.db.session() as s:
            wanted = {}
            for plan in s.query(Plan).join(Plan.organisation):
                if not (plan.enabled and plan.schedule and plan.organisation.state == "active"):
                    continue
                try:
                    wanted[f"plan-{plan.id}"] = (
                        plan.id,
                        trigger_for(plan.schedule, plan.organisation.time_zone),
                    )
                except ScheduleError as e:
                    log.warning("plan not scheduled", extra={"plan_id": plan.id, "error": str(e)})
        changed = 0
        jobs = {job.id: job for job in self.scheduler.get_jobs(jobstore="default")}
        for job_id, (plan_id, trigger) in wanted.items():
            job = jobs.get(job_id)
            if job is None or not _same_trigger(job.trigger, trigger):
                self.scheduler.add_job(
                    fire_plan, trigger, args=[plan_id], id=job_id, replace_existing=True, jobstore="default"
                )
                changed += 1
        for job_id in jobs.keys() - wanted.keys():
            if job_id.startswith("plan-"):
                self.scheduler.remove_job(job_id, jobstore="default")
                changed += 1
        if changed:
            log.info("schedules reconciled with the plans", extra={"changed": changed})
        return changed

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        _ACTIVE.pop("runs", None)

    def sync(self, plan_id: int, schedule: dict[str, Any], time_zone: str, enabled: bool) -> None:
        """Create, move or remove a plan's job to match its schedule."""
        job_id = f"plan-{plan_id}"
        if not enabled or not schedule:
            if self.scheduler.get_job(job_id):
                self.scheduler.remove_job(job_id)
            return
        self.scheduler.add_job(
            fire_plan, trigger_for(schedule, time_zone), args=[plan_id], id=job_id, replace_existing=True
        )

    def next_run(self, plan_id: int) -> datetime | None:
        job = self.scheduler.get_job(f"plan-{plan_id}")
        return job.next_run_time if job else None
