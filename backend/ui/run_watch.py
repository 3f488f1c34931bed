"""What one run's page shows beyond its rows: each project's live progress and time left, the warnings
grouped by kind, and the log's filters (level, text) shared by the page and its text download.

Live figures come from the run's progress as the engine writes it (backend/runs.py `_progress`):
per project the issues done of total and when it started fetching; for the run its requests so far,
the request rate over the last ten seconds and the 429s Jira answered (backend/run_meter.py).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select

from backend.db.models import ProjectRun, Run, RunLog
from keepstone.terminal import size

LEVELS = ("error", "warning", "info")
AT_LEAST = {
    "error": ("error",),
    "warning": ("error", "warning"),
    "info": ("error", "warning", "info", "debug"),
}
DONE = ("ok", "succeeded", "warning", "partial", "failed", "cancelled")
_SKIPPED = re.compile(r"attachment (\S+) \((.*)\) of (\S+) skipped: (.*)")
_OVERFLOW = re.compile(
    r".*\b(comments?|worklogs?|changelog|history)\b.*(truncated|cut|limit).*", re.IGNORECASE
)


def left_text(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 60:
        return f"about {seconds} s left"
    minutes = round(seconds / 60)
    return f"about {minutes} min left" if minutes < 90 else f"about {minutes / 60:.1f} h left"


def project_rows(run: Run, projects: list[ProjectRun], now: float | None = None) -> list[dict[str, Any]]:
    """Per project: status, issues done of total, attachment bytes, requests, time left while fetching."""
    now = time.time() if now is None else now
    live = (run.progress or {}).get("projects") or {}
    rows = []
    for p in projects:
        mine = live.get(p.project) or {}
        done, total = int(mine.get("done", 0)), int(mine.get("total", 0))
        finished = p.status in DONE
        eta = ""
        if not finished and total and 0 < done < total and mine.get("started"):
            elapsed = max(0.001, now - float(mine["started"]))
            eta = left_text((total - done) * elapsed / done)
        fetched = p.counts.get("fetched", done) if finished else done
        rows.append(
            {
                "row": p,
                "done": fetched,
                "total": p.counts.get("fetched", total) if finished else total,
                "issues": p.counts.get("issues"),
                "bytes": size(p.counts["attachment_bytes"]) if p.counts.get("attachment_bytes") else "",
                # while it runs: what the snapshot references so far, and how much of it was new
                "live_bytes": size(mine["bytes"]) if not finished and mine.get("bytes") else "",
                "live_new": size(mine["new_bytes"]) if not finished and mine.get("new_bytes") else "",
                "eta": eta,
                "fetching": not finished and bool(mine),
                "reached": bool(mine) or bool(p.counts),  # a project cancelled before its turn: neither
                "status": "running" if not finished and mine else p.status,  # its row says so only at the end
            }
        )
    return rows


def traffic(run: Run) -> dict[str, Any]:
    """The run's requests, rate now and 429s, as its progress last recorded them."""
    progress = run.progress or {}
    return {
        "requests": max(int(progress.get("requests", 0)), run.requests or 0),
        "rate": progress.get("rate"),
        "throttled": int(progress.get("throttled", 0)),
        "throttling": bool(progress.get("throttling")) and run.state in ("queued", "running"),
    }


@dataclass
class Group:
    """Warnings of one kind: '27 attachments skipped', each line kept for the expandable list."""

    kind: str
    title: str
    lines: list[str] = field(default_factory=list)


def _text(item: object) -> str:
    if isinstance(item, dict):
        return str(item.get("message") or item.get("reason") or item)
    return str(item)


def warning_groups(projects: list[ProjectRun]) -> list[Group]:
    """Every project's warnings by kind, the biggest group first."""
    groups: dict[str, Group] = {}
    for p in projects:
        for item in p.warnings:
            line = _text(item)
            m = _SKIPPED.fullmatch(line)
            if m:
                kind, shown = "attachments skipped", f"{m.group(3)}: {m.group(2)} ({m.group(4)})"
            elif _OVERFLOW.match(line):
                kind, shown = "items cut short", f"{p.project}: {line}"
            else:
                kind, shown = "other warnings", f"{p.project}: {line}"
            groups.setdefault(kind, Group(kind, kind)).lines.append(shown)
    out = sorted(groups.values(), key=lambda g: (g.kind == "other warnings", -len(g.lines)))
    for g in out:
        n = len(g.lines)
        if g.kind == "attachments skipped":
            g.title = f"{n} attachment{'' if n == 1 else 's'} skipped"
        elif g.kind == "items cut short":
            g.title = f"{n} item{'' if n == 1 else 's'} cut short"
        else:
            g.title = f"{n} other warning{'' if n == 1 else 's'}"
    return out


@dataclass
class LogFilter:
    level: str = ""
    text: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.level or self.text)

    def query(self, run_id: int) -> Select[Any]:
        query = select(RunLog).where(RunLog.run_id == run_id)
        if self.level:
            query = query.where(RunLog.level.in_(AT_LEAST[self.level]))
        if self.text:
            needle = self.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(func.lower(RunLog.message).like(f"%{needle}%", escape="\\"))
        return query.order_by(RunLog.id)


def log_filter(args: Any) -> LogFilter:
    """The log's filters from a query string: a level (error, warning, info) and a text to find."""
    level = str(args.get("level", "")).strip()
    text = str(args.get("q", "")).strip()
    out = LogFilter(level, text)
    if level and level not in LEVELS:
        out.errors["level"] = ["Choose error, warning or info."]
        out.level = ""
    if len(text) > 200:
        out.errors["q"] = ["Search for at most 200 characters."]
        out.text = ""
    return out
