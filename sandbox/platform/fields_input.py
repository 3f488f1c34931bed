"""Read field values as clients send them on create and edit, and check them as Jira does."""

from __future__ import annotations

import re
from typing import Any

from sandbox import catalog
from sandbox.model import Project, Site
from sandbox.v2 import rich_input
from sandbox.web import JiraHTTPError

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{3})?)?([+-]\d{2}:?\d{2}|Z)$")
NOT_SETTABLE = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."


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


def _option(definition: dict[str, Any], value: Any, options: list[dict[str, Any]] | None = None) -> str:
    if isinstance(value, dict):
        for o in definition["options"] if options is None else options:
            if o.get("deleted"):
                continue
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
        return rich_input(value, name)
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
    if name in site.custom_fields:
        return _parse_custom(site, site.custom_fields[name], value)
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
    if kind == "cascading":
        parent_id = _option(definition, value)
        if not isinstance(value, dict) or value.get("child") is None:
            return [parent_id]
        parent = next(o for o in definition["options"] if o["id"] == parent_id)
        return [parent_id, _option(definition, value["child"], parent.get("children") or [])]
    if kind == "datetime":
        if not isinstance(value, str) or not DATETIME.match(value):
            raise ValueError("Error parsing date-time string: " + str(value))
        return value
    if kind in ("group", "multigroup"):
        groups = {g for u in site.users.values() for g in u.groups}
        items = value if kind == "multigroup" else [value]
        if not isinstance(items, list):
            raise ValueError("Operation value must be a list of groups.")
        names = []
        for item in items:
            name = item.get("name") if isinstance(item, dict) else None
            if name not in groups:
                raise ValueError(f"Group '{name}' does not exist.")
            names.append(name)
        return sorted(set(names)) if kind == "multigroup" else names[0]
    if kind in ("version", "multiversion"):
        items = value if kind == "multiversion" else [value]
        if not isinstance(items, list):
            raise ValueError("Operation value must be a list of versions.")
        every = [v for p in site.projects.values() if not p.deleted for v in p.versions]
        ids = [_pick(every, item, "version") for item in items]
        return ids if kind == "multiversion" else ids[0]
    if kind == "project":
        ref = value.get("key") or value.get("id") if isinstance(value, dict) else None
        project = site.project_by_key(str(ref)) if ref is not None else None
        if project is None:
            raise ValueError(f"Project '{ref}' does not exist.")
        return project.id
    if kind == "user":
        return _user(site, value)
    if kind == "multiuser":
        if not isinstance(value, list):
            raise ValueError("Operation value must be a list of users.")
        return sorted({_user(site, v) for v in value})
    if kind == "adf":
        return rich_input(value, definition["name"])
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
