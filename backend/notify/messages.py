"""The message document (what happened, why, counts, a link) and its renderings for each kind of channel.

The document is what the outbox stores; a body is rendered from it at each try, the same bytes every time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

STATE_WORDS = {
    "failed": "failed",
    "partial": "partly failed",
    "warning": "finished with warnings",
    "succeeded": "succeeded",
    "cancelled": "was cancelled",
}
COLOURS = {
    "failure": "attention",
    "warning": "warning",
    "success": "good",
    "digest": "accent",
    "test": "accent",
}
MAX_REASON = 2000


def link(public_url: str, path: str, **query: str) -> str:
    """An address in the service: KEEPSTONE_PUBLIC_URL + path (the path alone if that is not set)."""
    return public_url.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def run_document(org: Any, plan: Any, run: Any, projects: list[Any], event: str, public_url: str) -> dict:
    """The message for a finished run: plan, state, reason (the run's error, the failed projects), counts."""
    failed = [p for p in projects if p.status in ("failed", "partial")]
    reasons = [run.error] if run.error else []
    for p in failed:
        first = "; ".join(str(e) for e in (p.errors or [])[:3]) or p.status
        reasons.append(f"{p.project}: {first}")
    reason = "; ".join(r for r in reasons if r)[:MAX_REASON]
    counts = {
        "projects": len(projects),
        "projects_ok": sum(1 for p in projects if p.status == "ok"),
        "projects_warning": sum(1 for p in projects if p.status == "warning"),
        "projects_failed": len(failed),
        "issues": sum(int((p.counts or {}).get("issues", 0) or 0) for p in projects),
        "attachments": sum(int((p.counts or {}).get("attachments", 0) or 0) for p in projects),
        "requests": run.requests or 0,
    }
    url = link(public_url, f"/runs/{run.public_id}")  # the run detail page
    org_name = org.display_name or org.site_url
    subject = f"Backup {STATE_WORDS.get(run.state, run.state)}: {plan.name} ({org_name})"
    lines = [
        f"The backup plan “{plan.name}” of {org_name} {STATE_WORDS.get(run.state, run.state)}.",
        "",
        f"State: {run.state}",
    ]
    if reason:
        lines.append(f"Reason: {reason}")
    lines += [
        f"Projects: {counts['projects']} ({counts['projects_ok']} ok, {counts['projects_warning']} with "
        f"warnings, {counts['projects_failed']} failed)",
        f"Issues: {counts['issues']}, attachments: {counts['attachments']}, Jira requests: {counts['requests']}",
        f"Started: {iso(run.started) or '-'}, finished: {iso(run.finished) or '-'} (UTC)",
        "",
        f"Open the run: {url}",
    ]
    return {
        "type": f"keepstone.run.{event}",
        "event": event,
        "subject": subject,
        "text": "\n".join(lines),
        "organisation": {"cloud_id": org.cloud_id, "name": org_name, "site_url": org.site_url},
        "plan": {"id": plan.public_id, "name": plan.name},
        "run": {
            "id": run.public_id,
            "state": run.state,
            "trigger": run.trigger,
            "started": iso(run.started),
            "finished": iso(run.finished),
            "url": url,
        },
        "reason": reason,
        "counts": counts,
        "failed_projects": [
            {"project": p.project, "status": p.status, "errors": [str(e) for e in (p.errors or [])[:5]]}
            for p in failed
        ],
        "url": url,
    }


def test_message(org: Any, channel: Any, public_url: str) -> dict:
    """A test message: says which channel it came through."""
    org_name = org.display_name or org.site_url
    url = link(public_url, "/notifications", org=org.cloud_id)
    return {
        "type": "keepstone.test",
        "event": "test",
        "subject": f"Keepstone test message ({org_name})",
        "text": f"This is a test message from Keepstone for {org_name}: the channel “{channel.name}” "
        f"works.\n\nNotification settings: {url}",
        "organisation": {"cloud_id": org.cloud_id, "name": org_name, "site_url": org.site_url},
        "channel": {"id": channel.public_id, "name": channel.name},
        "url": url,
    }


def digest_document(org: Any, day: str, runs: list[dict[str, Any]], public_url: str) -> dict:
    """The daily digest: every run of the day (in the organisation's time zone) of the channel's plans."""
    org_name = org.display_name or org.site_url
    url = link(public_url, "/runs", org=org.cloud_id)
    by_state: dict[str, int] = {}
    for r in runs:
        by_state[r["state"]] = by_state.get(r["state"], 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(by_state.items())) or "no runs"
    lines = [f"Backups of {org_name} on {day} ({org.time_zone}): {summary}.", ""]
    lines += [f"- {r['plan']}: {r['state']}" + (f" ({r['reason']})" if r["reason"] else "") for r in runs]
    lines += ["", f"Open the runs: {url}"]
    return {
        "type": "keepstone.digest",
        "event": "digest",
        "subject": f"Keepstone daily digest for {day}: {summary} ({org_name})",
        "text": "\n".join(lines),
        "organisation": {"cloud_id": org.cloud_id, "name": org_name, "site_url": org.site_url},
        "day": day,
        "counts": by_state,
        "runs": runs,
        "url": url,
    }


def webhook_body(doc: dict[str, Any], fmt: str, key: str) -> bytes:
    """The raw body a webhook of this format receives (the bytes that are signed)."""
    if fmt == "slack":
        body: dict[str, Any] = {
            "text": doc["subject"],
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": doc["subject"][:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": doc["text"][:2900]}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Keepstone · {key}"}]},
            ],
        }
    elif fmt == "teams":
        facts = [{"title": "Event", "value": doc["event"]}]
        if doc.get("plan"):
            facts.append({"title": "Plan", "value": doc["plan"]["name"]})
        if doc.get("reason"):
            facts.append({"title": "Reason", "value": doc["reason"][:500]})
        body = {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {
                                "type": "TextBlock",
                                "size": "Medium",
                                "weight": "Bolder",
                                "wrap": True,
                                "color": COLOURS.get(doc["event"], "default"),
                                "text": doc["subject"],
                            },
                            {"type": "TextBlock", "wrap": True, "text": doc["text"]},
                            {"type": "FactSet", "facts": facts},
                        ],
                        "actions": [
                            {"type": "Action.OpenUrl", "title": "Open in Keepstone", "url": doc["url"]}
                        ]
                        if doc["url"].startswith(("http://", "https://"))
                        else [],
                    },
                }
            ],
        }
    else:
        body = {"id": key, **doc}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
