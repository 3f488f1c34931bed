"""Read field values as clients send them on create and edit, and check them as Jira does."""

from __future__ import annotations

import re
from typing import Any

from sandbox import catalog
from sandbox.model import Project, Site
from sandbox.web import JiraHTTPError

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NOT_SETTABLE = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."


def _is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and isinstance(value.get("content"), list)


def _user(site: Site, value: Any) -> str | None:
    if value is None:
        return None
    account_id = value.get("accountId") if isinstance(value, dict) else None
    if not isinstance(account_id, str) or account_id not in site.users:
        raise ValueError(f"User '{account_id}' does not exist.")
    return account_id


def _pick(items: list[dict[str, Any]], value: Any, what: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"Specify the {what} by id or name.")
    for item in items:
        if ("id" in value and str(item["id"]) == str(value["id"])) or (
            "name" in value and item["name"] == value["name"]
        ):
            return item["id"]
    raise ValueError(
        f"{what.capitalize()} with {'id' if 'id' in value else 'name'} '{value.get('id', value.get('name'))}' does not exist."
    )


def _option(definition: dict[str, Any], value: Any) -> str:
    if isinstance(value, dict):
        for o in definition["options"]:
            if ("id" in value and o["id"] == str(value["id"])) or (
                "value" in value and o["value"] == value["value"]
            ):
                return o["id"]
    raise ValueError(f"Option value '{value}' is not valid.")


def parse_fields(site: Site, project: Project, fields: dict[str, Any]) -> dict[str, Any]:
    """Turn request fields into stored values; raise JiraHTTPError(400) with per-field errors."""
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, value in fields.items():
        try:
            out[name] = _parse_one(site, project, name, value)
        except ValueError as e:
            errors[name] = str(e)
    if errors:
        raise JiraHTTPError(400, [], errors)
    return out


def _parse_one(site: Site, project: Project, name: str, value: Any) -> Any:
    if name == "summary":
        if not isinstance(value, str) or not value.strip():
            raise ValueError("You must specify a summary of the issue.")
        if len(value) > 255:
            raise ValueError("Summary must be less than 255 characters.")
        return value
    if name in ("description", "environment"):
        if value is not None and not _is_adf(value):
            raise ValueError(
                "Operation value must be an Atlassian Document (see the Atlassian Document Format)."
            )
        return value
    if name == "priority":
        return _pick([{"id": p["id"], "name": p["name"]} for p in catalog.PRIORITIES], value, "priority")
    if name == "resolution":
        return None if value is None else _pick(catalog.RESOLUTIONS, value, "resolution")
    if name == "labels":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("Labels must be a list of strings.")
        for label in value:
            if " " in label:
                raise ValueError(f"The label '{label}' contains spaces which is invalid.")
        return sorted(set(value))
    if name == "components":
        if not isinstance(value, list):
            raise ValueError("Components must be a list.")
        return [_pick(project.components, v, "component") for v in value]
    if name in ("fixVersions", "versions"):
        if not isinstance(value, list):
            raise ValueError("Versions must be a list.")
        return [_pick(project.versions, v, "version") for v in value]
    if name in ("assignee", "reporter"):
        return _user(site, value)
    if name == "duedate":
        if value is not None and (not isinstance(value, str) or not DATE.match(value)):
            raise ValueError("Error parsing date string: " + str(value))
        return value
    if name in catalog.CUSTOM_FIELDS:
        return _parse_custom(site, catalog.CUSTOM_FIELDS[name], value)
    raise ValueError(NOT_SETTABLE.format(name))


def _parse_custom(site: Site, definition: dict[str, Any], value: Any) -> Any:
    if value is None:
        return None
    kind = definition["kind"]
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("Operation value must be a number.")
        return float(value)
    if kind == "select":
        return _option(definition, value)
    if kind == "multiselect":
        if not isinstance(value, list):
            raise ValueError("Operation value must be a list of options.")
        return sorted(_option(definition, v) for v in value)
    if kind == "date":
        if not isinstance(value, str) or not DATE.match(value):
            raise ValueError("Error parsing date string: " + str(value))
        return value
    if kind == "user":
        return _user(site, value)
    if kind == "multiuser":
        if not isinstance(value, list):
            raise ValueError("Operation value must be a list of users.")
        return sorted({_user(site, v) for v in value})
    if kind == "adf":
        if not _is_adf(value):
            raise ValueError(
                "Operation value must be an Atlassian Document (see the Atlassian Document Format)."
            )
        return value
    if kind == "labels":
        if not isinstance(value, list) or not all(isinstance(v, str) and " " not in v for v in value):
            raise ValueError("Labels must be a list of strings without spaces.")
        return sorted(set(value))
    if kind == "sprint":
        sprint_id = value if isinstance(value, int) else value.get("id") if isinstance(value, dict) else None
        if sprint_id not in {s["id"] for s in site.sprints}:
            raise ValueError(f"Sprint with id '{value}' does not exist.")
        return [sprint_id]
    if not isinstance(value, str):
        raise ValueError("Operation value must be a string.")
    return value
