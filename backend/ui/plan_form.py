"""The plan form: HTML form fields to the API's body and back, errors per field, previews.

The form is turned into exactly the JSON body the API takes, then loaded with the API's `PlanIn` (whose
spec is the engine's one `BackupSpecSchema`): the UI has no validation rules of its own. Project keys and the
exclusion JQL are asked of Jira by backend/plans_check.py, the same check the API makes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from backend.backup import BackupSpec, SpecError
from backend.backup.spec import DATA_DEFAULTS
from backend.plans_check import site_projects as site_projects  # the picker's list
from backend.repository.retention import DEFAULT_ROTATION, Policy, PolicyError
from backend.scheduler import DAYS, ScheduleError, trigger_for

DAY_NAMES = dict(zip(DAYS, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), strict=True))
KEEPS = (
    "keep_last",
    "keep_within",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
)
SCHEME_KEEPS = {
    "gfs": ("keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"),
    "custom": KEEPS,
    "unlimited": (),
}
PROJECT_TYPES = (("software", "Software"), ("business", "Business"), ("service_desk", "Service management"))
# What each switch backs up, and what it costs or needs (shown beside the switch).
DATA_TEXT: dict[str, tuple[str, str]] = {
    "issues": ("Issues", "Every field of every issue. The switches below need issues: with any of them on, issues are backed up too."),
    "comments": ("Comments", "Needs issues."),
    "worklogs": ("Worklogs", "Needs issues."),
    "attachments": ("Attachments", "Needs issues. The files themselves, deduplicated across snapshots."),
    "links": ("Issue links", "Needs issues. Links to issues in other projects are kept too."),
    "hierarchy": ("Parents and sub-tasks", "Needs issues."),
    "configuration": ("Project configuration", "Components, versions, roles and the project's settings."),
    "users": ("Users", "The people issues mention (names and account ids, no passwords)."),
    "changelog": ("Full change history", "Needs issues. Off by default: history beyond the last 40 changes costs one request per issue, so backups take several times longer."),
    "watchers": ("Watchers", "Needs issues. Off by default: Jira has no bulk read, one request per watched issue."),
    "votes": ("Votes", "Needs issues. Off by default: one request per issue with votes."),
    "remotelinks": ("Remote links", "Needs issues. Off by default: one request per issue."),
    "properties": ("Issue properties", "Needs issues. Off by default: one request per issue."),
}  # fmt: skip
SECTION_HEAD = {
    "spec": "mode",
    "projects": "mode",
    "schedule": "schedule_mode",
    "rotation": "scheme",
    "data": "data",
}
FIELDS = {
    "name", "enabled", "mode", "keys", "key_pattern", "name_pattern", "categories", "project_types",
    "include_archived", "data", "exclude_jql", "corrupt_attachments", "schedule_mode", "days", "hour",
    "time_zone", "cron", "scheme", *KEEPS, "storage_id", "replica_ids",
}  # fmt: skip


def zones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


def split_keys(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", " ").split() if part.strip()]


def new_form() -> MultiDict:
    """A new plan's form: every project, the default data, daily at 02:00, GFS 7/4/12/3."""
    return form_of(
        {
            "name": "",
            "enabled": True,
            "spec": BackupSpec().to_dict(),
            "schedule": {"days": list(DAYS), "hour": 2},
            "rotation": dict(DEFAULT_ROTATION),
            "storage_id": None,
            "replica_ids": [],
        }
    )


def form_of(plan: dict[str, Any]) -> MultiDict:
    """A plan (as the API answers it) as the form's fields."""
    spec, schedule, rotation = plan["spec"], plan["schedule"] or {}, plan["rotation"] or {}
    projects = spec.get("projects") or {}
    items: list[tuple[str, Any]] = [("name", plan.get("name", ""))]
    if plan.get("enabled"):
        items.append(("enabled", "on"))
    items.append(("mode", projects.get("mode", "all")))
    items += [("keys", k) for k in projects.get("keys") or []]
    items += [
        ("key_pattern", projects.get("key_pattern") or ""),
        ("name_pattern", projects.get("name_pattern") or ""),
        ("categories", ", ".join(projects.get("categories") or [])),
    ]
    items += [("project_types", t) for t in projects.get("project_types") or []]
    if projects.get("include_archived"):
        items.append(("include_archived", "on"))
    items += [(f"data_{k}", "on") for k, on in (spec.get("data") or {}).items() if on]
    items += [
        ("exclude_jql", spec.get("exclude_jql") or ""),
        ("corrupt_attachments", spec.get("corrupt_attachments", "skip")),
    ]
    items.append(("schedule_mode", "cron" if schedule.get("cron") else "days"))
    items += [("days", d) for d in schedule.get("days") or []]
    items += [
        ("hour", str(schedule.get("hour", 2))),
        ("cron", schedule.get("cron") or ""),
        ("time_zone", schedule.get("time_zone") or ""),
    ]
    items.append(("scheme", rotation.get("scheme", "gfs")))
    items += [(k, str(rotation[k])) for k in KEEPS if rotation.get(k) is not None]
    items.append(("storage_id", plan.get("storage_id") or ""))
    items += [("replica_ids", r) for r in plan.get("replica_ids") or []]
    return MultiDict(items)


def _number(text: str) -> Any:
    """A whole number typed in a form; anything else goes to the schema as typed, which refuses it."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return text


def body_of(form: MultiDict, base_spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """The API body (PlanIn) the form stands for. `base_spec` keeps what the form does not show."""
    base = base_spec or BackupSpec().to_dict()
    mode = form.get("mode", "all")
    projects: dict[str, Any] = {"mode": mode}
    if mode == "selected":
        projects["keys"] = list(
            dict.fromkeys([*form.getlist("keys"), *split_keys(form.get("keys_text", ""))])
        )
    elif mode == "rule":
        for name in ("key_pattern", "name_pattern"):
            value = form.get(name, "").strip()
            if value:
                projects[name] = value
        categories = [c.strip() for c in form.get("categories", "").split(",") if c.strip()]
        if categories:
            projects["categories"] = categories
        if form.getlist("project_types"):
            projects["project_types"] = form.getlist("project_types")
    if mode != "selected":
        projects["include_archived"] = bool(form.get("include_archived"))
    jql = form.get("exclude_jql", "")
    spec = {
        "projects": projects,
        "data": {kind: bool(form.get(f"data_{kind}")) for kind in DATA_DEFAULTS},
        "exclude_jql": jql if jql.strip() else None,
        "corrupt_attachments": form.get("corrupt_attachments", "skip"),
        "max_workers": base.get("max_workers", 8),
        "incremental": base.get("incremental", True),
    }
    schedule: dict[str, Any] = {}
    if form.get("schedule_mode") == "cron":
        schedule["cron"] = form.get("cron", "").strip()
    else:
        schedule["days"] = form.getlist("days")
        schedule["hour"] = _number(form.get("hour", ""))
    if form.get("time_zone", "").strip():
        schedule["time_zone"] = form.get("time_zone", "").strip()
    scheme = form.get("scheme", "gfs")
    rotation: dict[str, Any] = {"scheme": scheme}
    for key in SCHEME_KEEPS.get(scheme, ()):
        value = form.get(key, "").strip()
        if value:
            rotation[key] = value if key == "keep_within" else _number(value)
    return {
        "name": form.get("name", "").strip(),
        "enabled": bool(form.get("enabled")),
        "spec": spec,
        "schedule": schedule,
        "rotation": rotation,
        "storage_id": form.get("storage_id") or None,
        "replica_ids": form.getlist("replica_ids"),
    }


ORDER = (
    "form", "name", "enabled", "mode", "keys", "key_pattern", "name_pattern", "categories", "project_types",
    "include_archived", "data", "exclude_jql", "corrupt_attachments", "schedule_mode", "days", "hour", "cron",
    "time_zone", "scheme", *KEEPS, "storage_id", "replica_ids",
)  # fmt: skip


def field_rank(name: str) -> int:
    """Where a field is on the form (errors are listed in that order)."""
    return ORDER.index(name) if name in ORDER else len(ORDER)


def field_of(path: list[str]) -> str:
    """The form field an error at this (dotted) place belongs beside."""
    parts = [p for p in path if p != "_schema" and not p.isdigit()]
    if not parts:
        return "form"
    if "data" in parts:
        return "data"
    last = parts[-1]
    if last in FIELDS:
        return last
    return SECTION_HEAD.get(last, "form")


def errors_of(
    messages: Any, path: list[str] | None = None, out: dict[str, list[str]] | None = None
) -> dict[str, list[str]]:
    """marshmallow's nested messages as {form field: [messages]}."""
    path = path or []
    out = {} if out is None else out
    if isinstance(messages, dict):
        for key, value in messages.items():
            errors_of(value, [*path, str(key)], out)
    elif isinstance(messages, list):
        for m in messages:
            errors_of(m, path, out)
    else:
        where = field_of(path)
        text = str(messages)
        if where == "data" and path and path[-1] not in ("data", "_schema"):
            text = f"{path[-1]}: {text}"
        out.setdefault(where, [])
        if text not in out[where]:
            out[where].append(text)
    return out


def next_runs(schedule: dict[str, Any], default_tz: str, count: int = 5) -> tuple[list[datetime], str]:
    """The next `count` fire times of a schedule (in its time zone), or [] when it is impossible."""
    try:
        trigger = trigger_for(schedule, default_tz)
    except ScheduleError:
        return [], ""
    out: list[datetime] = []
    previous, now = None, datetime.now(UTC)
    while len(out) < count:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        out.append(fire)
        previous, now = fire, fire + timedelta(seconds=1)
    return out, str(trigger.timezone)


def when(value: datetime | None, tz: str = "UTC") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(ZoneInfo(tz))
    same_year = local.year == datetime.now(UTC).astimezone(ZoneInfo(tz)).year
    return f"{local:%a} {local.day} {local:%b}{'' if same_year else f' {local.year}'}, {local:%H:%M}"


def summary(plan: dict[str, Any]) -> dict[str, str]:
    """One line each for the plan list: projects, schedule, rotation."""
    projects = plan["spec"].get("projects") or {}
    mode = projects.get("mode", "all")
    if mode == "all":
        covered = "All projects" + (" (archived too)" if projects.get("include_archived") else "")
    elif mode == "selected":
        covered = ", ".join(projects.get("keys") or [])
    else:
        parts = []
        if projects.get("key_pattern"):
            parts.append(f"key {projects['key_pattern']}")
        if projects.get("name_pattern"):
            parts.append(f"name ~ {projects['name_pattern']}")
        if projects.get("categories"):
            parts.append("category " + " / ".join(projects["categories"]))
        if projects.get("project_types"):
            parts.append("type " + " / ".join(projects["project_types"]))
        covered = "Rule: " + ", ".join(parts)
    schedule = plan["schedule"] or {}
    if schedule.get("cron"):
        when_text = f"cron {schedule['cron']}"
    else:
        days = schedule.get("days") or []
        day_text = "Every day" if len(days) == 7 else ", ".join(DAY_NAMES.get(d, d) for d in days)
        when_text = f"{day_text} at {int(schedule.get('hour', 0)):02d}:00"
    rotation = plan["rotation"] or {}
    scheme = rotation.get("scheme", "gfs")
    if scheme == "unlimited":
        keep = "Unlimited: keep every snapshot"
    else:
        counts = [
            f"{rotation[k]} {k.removeprefix('keep_')}" for k in KEEPS if rotation.get(k) not in (None, 0)
        ]
        keep = ("GFS: " if scheme == "gfs" else "Custom: ") + (" · ".join(counts) or "defaults")
    return {"projects": covered, "schedule": when_text, "rotation": keep}


def load_plan(schema: Any, body: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """Load the body with the API's schema: (data, {}) or (None, errors per form field)."""
    try:
        return schema.load(body), {}
    except ValidationError as e:
        return None, errors_of(e.messages)


def spec_notes(spec: dict[str, Any]) -> list[str]:
    try:
        return BackupSpec.from_dict(spec).resolved()[1]
    except SpecError:
        return []


# --- the rotation preview and projects in other plans (issue 16) ----------------------------------------

PREVIEW_ROWS = 40  # snapshots listed per project; the counts cover all of them


def rotation_preview(plan: Any, org: Any, body: dict[str, Any], site: list[dict[str, Any]]) -> dict[str, Any]:
    """What the form's rotation would keep of the plan's existing snapshots, per project, with the rules
    that keep each (retention's forget as a dry run on the plan's repository); or why nothing is shown."""
    from backend.services import services
    from backend.ui import coverage, repositories

    if plan is None:
        return {"problem": "a new plan has no snapshots yet: the preview works once it has run"}
    try:
        policy = Policy.from_dict(body["rotation"])
    except PolicyError as e:
        return {"problem": f"fix the rotation first ({e.field}: {e.message})"}
    try:
        tz = ZoneInfo(org.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    projects = coverage.covered(body["spec"]["projects"], site or None)
    result, why = repositories.rotation_preview(plan, policy, tz, projects, services().config, org.cloud_id)
    if result is None:
        return {"problem": why, "policy": policy.describe()}
    groups: dict[str, list[Any]] = {}
    for verdict in result.verdicts:
        groups.setdefault(verdict.project, []).append(verdict)
    out = []
    for project in sorted(groups):
        verdicts = groups[project]
        kept = [v for v in verdicts if v.keep]
        out.append(
            {
                "project": project,
                "total": len(verdicts),
                "kept": len(kept),
                "forgotten": len(verdicts) - len(kept),
                "rows": [
                    {
                        "id": v.id[:8],
                        "when": when(v.time, org.time_zone or "UTC"),
                        "keep": v.keep,
                        "reasons": ", ".join(v.reasons),
                    }
                    for v in verdicts[:PREVIEW_ROWS]
                ],
                "more": max(0, len(verdicts) - PREVIEW_ROWS),
            }
        )
    return {
        "problem": "",
        "policy": policy.describe(),
        "projects": out,
        "kept": len(result.kept),
        "forgotten": len(result.forgotten),
        "time_zone": org.time_zone or "UTC",
    }


def also_in_plans(
    org: Any, plan: Any, body: dict[str, Any], site: list[dict[str, Any]]
) -> dict[str, list[str]]:
    """For each project the form's selection covers: the organisation's other plans covering it too."""
    from backend.ui import coverage

    others = [
        (p.public_id, p.name, (p.spec or {}).get("projects") or {})
        for p in org.plans
        if plan is None or p.id != plan.id
    ]
    mine = coverage.covered(body["spec"]["projects"], site or None)
    return coverage.also_in(mine, others, site or None)
