"""Which event a run's final state is, and which channels want it."""

from __future__ import annotations

from typing import Any

EVENTS = ("failure", "warning", "success", "digest")
EVENT_NAMES = {
    "failure": "On failure",
    "warning": "On warning",
    "success": "On success",
    "digest": "Daily digest",
}
# A run's final state -> the event its notification is (a cancelled run was stopped by a person: none).
EVENT_OF_STATE = {"failed": "failure", "partial": "failure", "warning": "warning", "succeeded": "success"}


def event_of(state: str) -> str | None:
    """The event a run that ended in `state` raises, or None."""
    return EVENT_OF_STATE.get(state)


def wants(channel: Any, event: str, plan_public_id: str | None) -> bool:
    """Whether an enabled channel's rules ask for this event of this plan (no plans listed: every plan)."""
    if not channel.enabled or event not in (channel.events or []):
        return False
    plans = channel.plans or []
    return not plans or plan_public_id is None or plan_public_id in plans
