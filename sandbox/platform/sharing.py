"""Filters as Jira writes them, and the share permissions filters and dashboards carry.

A filter is a record in `site.filters` (id, name, jql, owner, description, favourite, share, edit); `share`
and `edit` hold share permissions in their input shape (`{"type": "project", "projectId": "10000"}`), each
with an id, and are rendered as Jira answers them (`{"id": 1, "type": "project", "project": {...}}`).
Every board has a filter of its own (`board["filter_id"]`): `attach_board_filters` gives one to each board a
generator or a site file made, as Jira's board templates do ("Filter for ABC board", shared with the project).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from sandbox import render
from sandbox.model import Site
from sandbox.platform.site import _group_id
from sandbox.web import JiraHTTPError, base, caller, json_body, site

bp = Blueprint("platform_sharing", __name__, url_prefix="/rest/api/3")
SHARE_TYPES = ("user", "project", "group", "projectRole", "global", "authenticated")


def board_filter(s: Site, board: dict[str, Any], owner: str) -> dict[str, Any]:
    """Create the filter a new board of a project gets from Jira's template, and return it."""
    project = s.projects[board["project_id"]]
    f = {
        "id": str(s.next_id("filters", 10100)),
        "name": f"Filter for {board['name']}",
        "jql": board.pop("filter_jql", None) or f"project = {project.key} ORDER BY Rank ASC",
        "owner": owner,
        "description": "",
        "favourite": False,
        "share": [{"id": s.next_id("shares", 10000), "type": "project", "projectId": str(project.id)}],
        "edit": [],
    }
    s.filters.append(f)
    board["filter_id"] = f["id"]
    return f


def attach_board_filters(s: Site) -> None:
    """Give every board without a filter the one Jira's template would have made (owned by the lead)."""
    with s.lock:
        for board in s.boards:
            if not board.get("filter_id"):
                board_filter(s, board, s.projects[board["project_id"]].lead)


def render_shares(shares: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Share permissions as Jira answers them (SharePermission)."""
    out = []
    for share in shares:
        kind = share["type"]
        item: dict[str, Any] = {"id": share["id"], "type": "loggedin" if kind == "authenticated" else kind}
        if kind in ("project", "projectRole"):
            project = site().projects.get(int(share["projectId"]))
            if project is None or project.deleted:
                item["type"] = "project-unknown"
            else:
                item["project"] = render.project(site(), base(), project)
                if kind == "projectRole":
                    role_id = int(share["projectRoleId"])
                    name = next((n for n, r in render.ROLES.items() if r == role_id), "")
                    item["role"] = {
                        "self": f"{base()}/rest/api/3/project/{project.id}/role/{role_id}",
                        "id": role_id,
                        "name": name,
                    }
        elif kind == "group":
            item["group"] = {
                "name": share["groupname"],
                "groupId": _group_id(share["groupname"]),
                "self": f"{base()}/rest/api/3/group?groupId={_group_id(share['groupname'])}",
            }
        elif kind == "user":
            item["user"] = render.user_ref(site(), base(), share["accountId"])
        out.append(item)
    return out


def _groups() -> set[str]:
    return {g for u in site().users.values() for g in u.groups}


def parse_share(raw: Any, field: str) -> dict[str, Any]:
    """One share permission from a request (SharePermissionInputBean, or the SharePermission shape Jira
    also accepts in filter and dashboard bodies); raises Jira's 400 for what it refuses."""
    if not isinstance(raw, dict) or raw.get("type") not in (*SHARE_TYPES, "loggedin"):
        raise JiraHTTPError(400, [], {field: f"Share type must be one of {', '.join(SHARE_TYPES)}."})
    kind = "authenticated" if raw["type"] == "loggedin" else raw["type"]
    out: dict[str, Any] = {"type": kind}
    if kind in ("project", "projectRole"):
        project_id = raw.get("projectId") or (raw.get("project") or {}).get("id")
        project = site().project_by_key(str(project_id or ""))
        if project is None:
            raise JiraHTTPError(400, [], {field: f"Project with id '{project_id}' does not exist."})
        out["projectId"] = str(project.id)
        if kind == "projectRole":
            role_id = raw.get("projectRoleId") or (raw.get("role") or {}).get("id")
            if str(role_id) not in {str(r) for r in render.ROLES.values()}:
                raise JiraHTTPError(400, [], {field: f"Project role with id '{role_id}' does not exist."})
            out["projectRoleId"] = str(role_id)
    elif kind == "group":
        group = raw.get("group") or {}
        name = raw.get("groupname") or group.get("name")
        group_id = raw.get("groupId") or group.get("groupId")
        if not name and group_id:
            name = next((g for g in _groups() if _group_id(g) == group_id), None)
        if not name or name not in _groups():
            raise JiraHTTPError(400, [], {field: f"Group '{name or group_id}' does not exist."})
        out["groupname"] = name
    elif kind == "user":
        account_id = raw.get("accountId") or (raw.get("user") or {}).get("accountId")
        if account_id not in site().users:
            raise JiraHTTPError(400, [], {field: f"User with accountId '{account_id}' does not exist."})
        out["accountId"] = account_id
    out["id"] = site().next_id("shares", 10000)
    return out


def parse_shares(raw: Any, field: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise JiraHTTPError(400, [], {field: "Share permissions must be a list."})
    return [parse_share(item, field) for item in raw]


def render_filter(f: dict[str, Any]) -> dict[str, Any]:
    """A filter as GET /filter/{id} answers it."""
    return {
        "self": f"{base()}/rest/api/3/filter/{f['id']}",
        "id": f["id"],
        "name": f["name"],
        "jql": f["jql"],
        "description": f["description"],
        "favourite": f["favourite"],
        "owner": render.user_ref(site(), base(), f["owner"]),
        "sharePermissions": render_shares(f.get("share") or []),
        "editPermissions": render_shares(f.get("edit") or []),
        "viewUrl": f"{base()}/issues/?filter={f['id']}",
        "searchUrl": f"{base()}/rest/api/3/search/jql?jql={f['jql']}",
    }


def _check_jql(jql: str) -> None:
    from sandbox.jql import JqlError, compile_query, parse

    try:  # Jira checks the values too: a filter on a project that is gone is refused
        compile_query(site(), parse(jql), caller().account_id)
    except JqlError as e:
        raise JiraHTTPError(400, [], {"jql": str(e)}) from None


def _filter_fields(data: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    name = str(data.get("name", current["name"] if current else "")).strip()
    if not name:
        raise JiraHTTPError(400, [], {"filterName": "You must specify a name for the filter."})
    owner = current["owner"] if current else caller().account_id
    if any(
        f["name"].lower() == name.lower() and f["owner"] == owner and f is not current for f in site().filters
    ):
        raise JiraHTTPError(400, [], {"filterName": "A filter with this name already exists."})
    jql = str(data.get("jql", current["jql"] if current else ""))
    if jql.strip():
        _check_jql(jql)
    out: dict[str, Any] = {"name": name, "jql": jql}
    if "description" in data or current is None:
        out["description"] = str(data.get("description") or "")
    if "favourite" in data or current is None:
        out["favourite"] = bool(data.get("favourite", False))
    if "sharePermissions" in data or current is None:
        out["share"] = parse_shares(data.get("sharePermissions"), "sharePermissions")
    if "editPermissions" in data or current is None:
        out["edit"] = parse_shares(data.get("editPermissions"), "editPermissions")
    return out


def _filter_or_400(filter_id: str) -> dict[str, Any]:
    found = next((f for f in site().filters if f["id"] == filter_id), None)
    if found is None:
        raise JiraHTTPError(400, "The selected filter is not available to you, perhaps it has been deleted.")
    return found


@bp.post("/filter")
def filter_create():
    data = json_body()
    with site().lock:
        fields = _filter_fields(data, None)
        f = {"id": str(site().next_id("filters", 10100)), "owner": caller().account_id, **fields}
        site().filters.append(f)
    return jsonify(render_filter(f))


@bp.put("/filter/<filter_id>")
def filter_update(filter_id: str):
    f = _filter_or_400(filter_id)
    if f["owner"] != caller().account_id:
        raise JiraHTTPError(400, "Only the owner of a filter can change it.")
    data = json_body()
    with site().lock:
        f.update(_filter_fields(data, f))
    return jsonify(render_filter(f))


@bp.get("/filter/<filter_id>/permission")
def filter_permissions(filter_id: str):
    return jsonify(render_shares(_filter_or_400(filter_id).get("share") or []))


@bp.post("/filter/<filter_id>/permission")
def filter_permission_add(filter_id: str):
    f = _filter_or_400(filter_id)
    if f["owner"] != caller().account_id:
        raise JiraHTTPError(400, "Only the owner of a filter can share it.")
    share = parse_share(request.get_json(silent=True), "type")
    with site().lock:
        f.setdefault("share", []).append(share)
    return jsonify(render_shares(f["share"])), 201


@bp.put("/filter/<filter_id>/owner")
def filter_owner(filter_id: str):
    """Give a filter to another user: its owner or a Jira administrator may; the new owner must exist and
    not own a filter of that name already."""
    f = _filter_or_400(filter_id)
    if f["owner"] != caller().account_id and "jira-administrators" not in caller().groups:
        raise JiraHTTPError(403, "You must own the filter or have the Administer Jira permission.")
    account_id = (request.get_json(silent=True) or {}).get("accountId")
    if account_id not in site().users:
        raise JiraHTTPError(400, [], {"accountId": f"User with accountId '{account_id}' does not exist."})
    if any(
        x["name"].lower() == f["name"].lower() and x["owner"] == account_id
        for x in site().filters
        if x is not f
    ):
        raise JiraHTTPError(400, "The new owner already has a filter with this name.")
    with site().lock:
        f["owner"] = account_id
    return "", 204
