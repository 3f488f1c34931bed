"""Helpers every sandbox endpoint shares: the site state, the caller, Jira-shaped errors, paging."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, g, jsonify, request

from sandbox.config import SandboxConfig
from sandbox.model import Issue, Project, Site, User


@dataclass
class SandboxState:
    """What one running sandbox holds: its configuration, its site and its counters."""

    config: SandboxConfig
    site: Site
    limiter: Any = None
    faults: Any = None
    stats: Any = None


class JiraHTTPError(Exception):
    """An answer in Jira's error shape: {"errorMessages": [...], "errors": {...}}."""

    def __init__(
        self,
        status: int,
        messages: list[str] | str | None = None,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(messages)
        self.status = status
        self.messages = [messages] if isinstance(messages, str) else list(messages or [])
        self.errors = errors or {}
        self.headers = headers or {}

    def response(self) -> Response:
        resp = jsonify({"errorMessages": self.messages, "errors": self.errors})
        resp.status_code = self.status
        for k, v in self.headers.items():
            resp.headers[k] = v
        return resp


def state() -> SandboxState:
    return current_app.extensions["sandbox"]


def site() -> Site:
    return state().site


def base() -> str:
    """The site URL as the caller sees it (no trailing slash)."""
    return state().config.base_url or request.host_url.rstrip("/")


def caller() -> User:
    """The authenticated user of this request (set by the auth guard)."""
    return g.user


def can_browse(project: Project) -> bool:
    return caller().account_id not in project.hidden_from


def project_or_404(key_or_id: str) -> Project:
    project = site().project_by_key(key_or_id)
    if project is None or not can_browse(project):
        raise JiraHTTPError(404, f"No project could be found with key '{key_or_id}'.")
    return project


def issue_or_404(key_or_id: str) -> Issue:
    issue = site().issue(key_or_id)
    if issue is None or not can_browse(site().projects[issue.project_id]):
        raise JiraHTTPError(404, "Issue does not exist or you do not have permission to see it.")
    return issue


def json_body() -> Any:
    """The request's JSON body, or Jira's 400 when it is not JSON."""
    data = request.get_json(silent=True)
    if data is None:
        raise JiraHTTPError(400, "Unexpected character in request body: the body must be valid JSON.")
    return data


def int_arg(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise JiraHTTPError(400, f"The value '{raw}' is not valid for the parameter '{name}'.") from None
    if value < minimum:
        raise JiraHTTPError(400, f"The value of '{name}' must be at least {minimum}.")
    return value if maximum is None else min(value, maximum)


def list_arg(name: str) -> list[str]:
    """A parameter that may repeat or hold comma-separated values."""
    out: list[str] = []
    for raw in request.args.getlist(name):
        out.extend(part.strip() for part in raw.split(",") if part.strip())
    return out


def page_bean(values: list[Any], start_at: int, max_results: int, path: str) -> dict[str, Any]:
    """The PageBean shape: startAt, maxResults, total, isLast, values."""
    page = values[start_at : start_at + max_results]
    out = {
        "self": f"{base()}{path}?startAt={start_at}&maxResults={max_results}",
        "startAt": start_at,
        "maxResults": max_results,
        "total": len(values),
        "isLast": start_at + len(page) >= len(values),
        "values": page,
    }
    if not out["isLast"]:
        out["nextPage"] = f"{base()}{path}?startAt={start_at + max_results}&maxResults={max_results}"
    return out


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict):
            raise ValueError
        return data
    except (ValueError, UnicodeDecodeError):
        raise JiraHTTPError(400, "The provided next page token is invalid or expired.") from None
