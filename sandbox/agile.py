"""The Jira Software (agile) REST API: boards, board configuration and sprints."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from sandbox import catalog, render
from sandbox.platform.search import matching_issues
from sandbox.web import JiraHTTPError, base, caller, int_arg, list_arg, site

bp = Blueprint("agile", __name__, url_prefix="/rest/agile/1.0")


def _visible_boards() -> list[dict[str, Any]]:
    out = []
    for board in site().boards:
        project = site().projects.get(board["project_id"])
        if project is None or project.deleted or caller().account_id in project.hidden_from:
            continue
        out.append(board)
    return out


def _board(board: dict[str, Any]) -> dict[str, Any]:
    project = site().projects[board["project_id"]]
    return {
        "id": board["id"],
        "self": f"{base()}/rest/agile/1.0/board/{board['id']}",
        "name": board["name"],
        "type": board["type"],
        "location": {
            "projectId": project.id,
            "projectKey": project.key,
            "projectName": project.name,
            "projectTypeKey": project.type_key,
            "displayName": f"{project.name} ({project.key})",
            "name": project.name,
        },
    }


def _page(values: list[Any]) -> dict[str, Any]:
    start, limit = int_arg("startAt", 0), int_arg("maxResults", 50, 1, 50)
    page = values[start : start + limit]
    return {
        "maxResults": limit,
        "startAt": start,
        "total": len(values),
        "isLast": start + len(page) >= len(values),
        "values": page,
    }


def _board_or_404(board_id: int) -> dict[str, Any]:
    board = next((b for b in _visible_boards() if b["id"] == board_id), None)
    if board is None:
        raise JiraHTTPError(404, "Board does not exist or you do not have permission to see it.")
    return board


@bp.get("/board")
def boards():
    values = _visible_boards()
    if wanted := request.args.get("projectKeyOrId"):
        project = site().project_by_key(wanted)
        values = [b for b in values if project is not None and b["project_id"] == project.id]
    if board_type := request.args.get("type"):
        values = [b for b in values if b["type"] in board_type.split(",")]
    return jsonify(_page([_board(b) for b in values]))


BOARD_TYPES = ("scrum", "kanban")


@bp.post("/board")
def board_create():
    """Create a board on an existing filter, located in a project (Jira: name, type, filterId, location)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise JiraHTTPError(400, "The request body must be a JSON object.")
    errors = {}
    name = str(body.get("name") or "").strip()
    if not name:
        errors["name"] = "The board name must not be empty."
    elif len(name) > 255:
        errors["name"] = "The board name must be 255 characters or fewer."
    if body.get("type") not in BOARD_TYPES:
        errors["type"] = f"The board type must be one of {', '.join(BOARD_TYPES)}."
    found = next((f for f in site().filters if f["id"] == str(body.get("filterId"))), None)
    if found is None:
        errors["filterId"] = "The filter does not exist or you do not have permission to see it."
    location = body.get("location") or {}
    project = None
    if location.get("type", "project") != "project":
        errors["location"] = "The sandbox places boards in projects only."
    else:
        project = site().project_by_key(str(location.get("projectKeyOrId") or ""))
        if project is None or caller().account_id in project.hidden_from:
            errors["location"] = "The project does not exist or you do not have permission to see it."
    if errors:
        raise JiraHTTPError(400, [], errors)
    with site().lock:
        b = {
            "id": site().next_id("boards", len(site().boards) + 1),
            "name": name,
            "type": body["type"],
            "project_id": project.id,
            "filter_id": found["id"],
        }
        site().boards.append(b)
    return jsonify(_board(b)), 201


@bp.get("/board/<int:board_id>")
def board(board_id: int):
    return jsonify(_board(_board_or_404(board_id)))


@bp.get("/board/<int:board_id>/configuration")
def board_configuration(board_id: int):
    b = _board_or_404(board_id)
    project = site().projects[b["project_id"]]
    # Columns are set in the board's settings only (Jira's REST API reads them, never writes them):
    # a board's own `columns` (a site file's, or a test's) or one column a status.
    layout = b.get("columns") or [{"name": s["name"], "statuses": [s["id"]]} for s in catalog.STATUSES]
    columns = [
        {
            "name": c["name"],
            "statuses": [{"id": sid, "self": f"{base()}/rest/api/3/status/{sid}"} for sid in c["statuses"]],
        }
        for c in layout
    ]
    filter_id = str(b.get("filter_id") or 20000 + b["id"])
    out = {
        "id": b["id"],
        "name": b["name"],
        "type": b["type"],
        "self": f"{base()}/rest/agile/1.0/board/{b['id']}/configuration",
        "location": {"type": "project", "projectKeyOrId": project.key},
        "filter": {"id": filter_id, "self": f"{base()}/rest/api/3/filter/{filter_id}"},
        "columnConfig": {"columns": columns, "constraintType": "issueCount"},
        "ranking": {"rankCustomFieldId": 10019},
    }
    if b["type"] == "scrum":
        out["estimation"] = {
            "type": "field",
            "field": {"fieldId": "customfield_10010", "displayName": "Story Points"},
        }
    return jsonify(out)


def _sprint(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": s["id"],
        "self": f"{base()}/rest/agile/1.0/sprint/{s['id']}",
        "state": s["state"],
        "name": s["name"],
        "startDate": render.jira_time(s["startDate"]),
        "endDate": render.jira_time(s["endDate"]),
        "originBoardId": s["board_id"],
        "goal": s["goal"],
        **({"completeDate": render.jira_time(s["endDate"])} if s["state"] == "closed" else {}),
    }


@bp.get("/board/<int:board_id>/sprint")
def board_sprints(board_id: int):
    b = _board_or_404(board_id)
    if b["type"] != "scrum":
        raise JiraHTTPError(400, "The board does not support sprints")
    values = [s for s in site().sprints if s["board_id"] == board_id]
    if state := request.args.get("state"):
        values = [s for s in values if s["state"] in state.split(",")]
    return jsonify(_page([_sprint(s) for s in values]))


@bp.get("/sprint/<int:sprint_id>")
def sprint(sprint_id: int):
    s = next((s for s in site().sprints if s["id"] == sprint_id), None)
    if s is None:
        raise JiraHTTPError(404, "Sprint does not exist or you do not have permission to see it.")
    _board_or_404(s["board_id"])
    return jsonify(_sprint(s))


def _issues_page(found: list) -> dict[str, Any]:
    start, limit = int_arg("startAt", 0), int_arg("maxResults", 50, 1, 100)
    fields = list_arg("fields") or ["*navigable"]
    page = found[start : start + limit]
    return {
        "expand": "schema,names",
        "startAt": start,
        "maxResults": limit,
        "total": len(found),
        "issues": [render.issue_bean(site(), base(), i, fields, set(list_arg("expand"))) for i in page],
    }


@bp.get("/board/<int:board_id>/issue")
def board_issues(board_id: int):
    b = _board_or_404(board_id)
    project = site().projects[b["project_id"]]
    return jsonify(_issues_page(matching_issues(f"project = {project.key}")))


@bp.get("/sprint/<int:sprint_id>/issue")
def sprint_issues(sprint_id: int):
    s = next((s for s in site().sprints if s["id"] == sprint_id), None)
    if s is None:
        raise JiraHTTPError(404, "Sprint does not exist or you do not have permission to see it.")
    b = _board_or_404(s["board_id"])
    project = site().projects[b["project_id"]]
    return jsonify(_issues_page(matching_issues(f"project = {project.key} AND sprint = {sprint_id}")))


def _parse_time(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    from datetime import datetime

    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return int(datetime.strptime(value, fmt).timestamp() * 1000)
        except ValueError:
            continue
    raise JiraHTTPError(400, [], {field: "Invalid date format: use yyyy-MM-ddTHH:mm:ss.SSSZ."})


@bp.post("/sprint")
def sprint_create():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise JiraHTTPError(400, "The request body must be a JSON object.")
    errors = {}
    if not str(body.get("name", "")).strip():
        errors["name"] = "The sprint name must not be empty."
    board = next((b for b in _visible_boards() if b["id"] == body.get("originBoardId")), None)
    if board is None:
        errors["originBoardId"] = "The board does not exist or you do not have permission to see it."
    elif board["type"] != "scrum":
        errors["originBoardId"] = "The board does not support sprints."
    if errors:
        raise JiraHTTPError(400, [], errors)
    start = _parse_time(body.get("startDate"), "startDate") or render.now_ms()
    end = _parse_time(body.get("endDate"), "endDate") or start + 14 * 86_400_000
    s = {
        "id": site().next_id("sprints", len(site().sprints) + 1),
        "name": str(body["name"]).strip(),
        "state": "future",
        "board_id": board["id"],
        "startDate": start,
        "endDate": end,
        "goal": str(body.get("goal") or ""),
    }
    site().sprints.append(s)
    return jsonify(_sprint(s)), 201


SPRINT_MOVES = {("future", "active"), ("active", "closed")}


@bp.post("/sprint/<int:sprint_id>")
def sprint_update(sprint_id: int):
    """Partial update: name, goal, dates, and the state moves Jira allows (future -> active -> closed; one
    active sprint per board)."""
    s = next((x for x in site().sprints if x["id"] == sprint_id), None)
    if s is None or not any(b["id"] == s["board_id"] for b in _visible_boards()):
        raise JiraHTTPError(404, "The sprint does not exist or you do not have permission to see it.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise JiraHTTPError(400, "The request body must be a JSON object.")
    state = body.get("state", s["state"])
    if state != s["state"] and (s["state"], state) not in SPRINT_MOVES:
        raise JiraHTTPError(400, [], {"state": f"A {s['state']} sprint cannot become {state}."})
    busy = any(x["state"] == "active" and x["board_id"] == s["board_id"] for x in site().sprints)
    if state == "active" and s["state"] == "future" and busy:
        raise JiraHTTPError(400, "This board already has an active sprint.")
    start = _parse_time(body.get("startDate"), "startDate") or s["startDate"]
    end = _parse_time(body.get("endDate"), "endDate") or s["endDate"]
    with site().lock:
        s.update(state=state, startDate=start, endDate=end)
        if "name" in body:
            s["name"] = str(body["name"]).strip() or s["name"]
        if "goal" in body:
            s["goal"] = str(body.get("goal") or "")
    return jsonify(_sprint(s))
