"""Dashboards as Jira writes them: create (with share and edit permissions) and their gadgets.

A dashboard is a record in `site.dashboards` (id, name, description, owner, share, edit, gadgets); the reads
(GET /dashboard, GET /dashboard/{id}) live in `site.py` and render `share`/`edit` with `sharing.py`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from sandbox.platform.sharing import parse_shares, render_shares
from sandbox.web import JiraHTTPError, base, caller, json_body, site

bp = Blueprint("platform_dashboards", __name__, url_prefix="/rest/api/3")
COLORS = ("blue", "red", "yellow", "green", "cyan", "purple", "gray", "white")
MAX_GADGETS = 20  # the sandbox's stand-in for Jira's "maximum number of gadgets the dashboard can hold"


def render_dashboard(d: dict[str, Any]) -> dict[str, Any]:
    from sandbox.platform.site import _user_bean

    return {
        "self": f"{base()}/rest/api/3/dashboard/{d['id']}",
        "id": d["id"],
        "name": d["name"],
        "description": d["description"],
        "owner": _user_bean(d["owner"]),
        "isFavourite": False,
        "view": f"{base()}/jira/dashboards/{d['id']}",
        "sharePermissions": render_shares(d.get("share") or []),
        "editPermissions": render_shares(d.get("edit") or []),
    }


def _dashboard_or_404(dashboard_id: str) -> dict[str, Any]:
    d = next((d for d in site().dashboards if d["id"] == dashboard_id), None)
    if d is None:
        raise JiraHTTPError(
            404,
            "The dashboard you requested either does not exist or you don't have the required permissions "
            "to perform this action.",
        )
    return d


@bp.post("/dashboard")
def dashboard_create():
    data = json_body()
    name = str(data.get("name") or "").strip()
    errors = {}
    if not name:
        errors["name"] = "The name of the dashboard must be set."
    for field in ("sharePermissions", "editPermissions"):
        if not isinstance(data.get(field), list):
            errors[field] = f"{field} must be set (a list, empty for private)."
    if errors:
        raise JiraHTTPError(400, [], errors)
    share = parse_shares(data["sharePermissions"], "sharePermissions")
    edit = parse_shares(data["editPermissions"], "editPermissions")
    with site().lock:
        d = {
            "id": str(site().next_id("dashboards", 10100)),
            "name": name,
            "description": str(data.get("description") or ""),
            "owner": caller().account_id,
            "share": share,
            "edit": edit,
            "gadgets": [],
        }
        site().dashboards.append(d)
    return jsonify(render_dashboard(d))


def _gadget(g: dict[str, Any]) -> dict[str, Any]:
    out = {"id": g["id"], "color": g["color"], "position": dict(g["position"]), "title": g["title"]}
    out.update({k: g[k] for k in ("moduleKey", "uri") if g.get(k)})
    return out


@bp.get("/dashboard/<dashboard_id>/gadget")
def gadgets(dashboard_id: str):
    d = _dashboard_or_404(dashboard_id)
    found = d.get("gadgets") or []
    for arg, key in (("moduleKey", "moduleKey"), ("uri", "uri"), ("gadgetId", "id")):
        wanted = request.args.getlist(arg)
        if wanted:
            found = [g for g in found if str(g.get(key)) in wanted]
    return jsonify({"gadgets": [_gadget(g) for g in found]})


@bp.post("/dashboard/<dashboard_id>/gadget")
def gadget_add(dashboard_id: str):
    d = _dashboard_or_404(dashboard_id)
    if d["owner"] != caller().account_id:
        raise JiraHTTPError(
            404,
            "The dashboard you requested either does not exist or you don't have the "
            "required permissions to perform this action.",
        )
    data = json_body()
    module_key, uri = data.get("moduleKey"), data.get("uri")
    if bool(module_key) == bool(uri):
        raise JiraHTTPError(400, "Either moduleKey or uri must be provided, not both.")
    color = data.get("color") or "blue"
    if color not in COLORS:
        raise JiraHTTPError(400, [], {"color": f"The color must be one of {', '.join(COLORS)}."})
    gadgets_now = d.setdefault("gadgets", [])
    if len(gadgets_now) >= MAX_GADGETS:
        raise JiraHTTPError(
            400,
            "Cannot add another gadget. The maximum number of gadgets the dashboard can hold has been reached.",
        )
    position = data.get("position") or {}
    if not isinstance(position, dict):
        raise JiraHTTPError(400, [], {"position": "The position must be an object with row and column."})
    row = position.get("row", len(gadgets_now))
    column = position.get("column", 0)
    if not isinstance(row, int) or not isinstance(column, int) or row < 0 or column not in (0, 1, 2):
        raise JiraHTTPError(400, [], {"position": "Row must be 0 or more, column 0, 1 or 2."})
    if any(g["position"] == {"row": row, "column": column} for g in gadgets_now):
        raise JiraHTTPError(400, [], {"position": "Cannot add a gadget to a position that is taken."})
    with site().lock:
        g = {
            "id": site().next_id("gadgets", 10000),
            "moduleKey": module_key,
            "uri": uri,
            "color": color,
            "position": {"row": row, "column": column},
            "title": str(data.get("title") or ""),
        }
        gadgets_now.append(g)
    return jsonify(_gadget(g))


@bp.put("/dashboard/bulk/edit")
def dashboards_bulk_edit():
    """Bulk edit (at most 100): the sandbox does `changeOwner` (owner or, with extendAdminPermissions, a Jira
    administrator; per-dashboard errors in entityErrors, as Jira answers them)."""
    data = json_body()
    action = data.get("action")
    ids = data.get("entityIds")
    if action not in ("changeOwner", "changePermission", "addPermission", "removePermission"):
        raise JiraHTTPError(400, [], {"action": "The action is not valid."})
    if not isinstance(ids, list) or not ids or len(ids) > 100:
        raise JiraHTTPError(400, [], {"entityIds": "Give between 1 and 100 dashboard ids."})
    if action != "changeOwner":
        raise JiraHTTPError(400, f"The sandbox does not simulate the bulk action {action}.")
    details = data.get("changeOwnerDetails") or {}
    new_owner = details.get("newOwner")
    if new_owner not in site().users:
        raise JiraHTTPError(
            400, [], {"changeOwnerDetails": f"User with accountId '{new_owner}' does not exist."}
        )
    admin = bool(data.get("extendAdminPermissions")) and "jira-administrators" in caller().groups
    errors: dict[str, Any] = {}
    with site().lock:
        for entity in ids:
            d = next((x for x in site().dashboards if x["id"] == str(entity)), None)
            if d is None:
                errors[str(entity)] = {"errorMessages": ["The dashboard does not exist."], "errors": {}}
            elif d["owner"] != caller().account_id and not admin:
                errors[str(entity)] = {
                    "errorMessages": ["Only the owner can change the owner."],
                    "errors": {},
                }
            else:
                taken = {
                    x["name"].lower() for x in site().dashboards if x["owner"] == new_owner and x is not d
                }
                if d["name"].lower() in taken:
                    if not details.get("autofixName"):
                        errors[str(entity)] = {
                            "errorMessages": ["The new owner already has a dashboard with this name."],
                            "errors": {},
                        }
                        continue
                    d["name"] = f"{d['name']} (copy)"
                d["owner"] = new_owner
    return jsonify({"action": action, "entityErrors": errors})


def _item(dashboard_id: str, item_id: str) -> dict[str, Any]:
    d = _dashboard_or_404(dashboard_id)
    g = next((g for g in d.get("gadgets") or [] if str(g["id"]) == item_id), None)
    if g is None:
        raise JiraHTTPError(404, f"The dashboard item with id '{item_id}' does not exist.")
    return g


PROPERTIES = "/dashboard/<dashboard_id>/items/<item_id>/properties"


@bp.get(PROPERTIES)
def item_property_keys(dashboard_id: str, item_id: str):
    g = _item(dashboard_id, item_id)
    path = f"{base()}/rest/api/3/dashboard/{dashboard_id}/items/{item_id}/properties"
    return jsonify({"keys": [{"key": k, "self": f"{path}/{k}"} for k in g.get("properties") or {}]})


@bp.get(PROPERTIES + "/<key>")
def item_property(dashboard_id: str, item_id: str, key: str):
    g = _item(dashboard_id, item_id)
    if key not in (g.get("properties") or {}):
        raise JiraHTTPError(404, f"The property '{key}' does not exist.")
    return jsonify({"key": key, "value": g["properties"][key]})


@bp.put(PROPERTIES + "/<key>")
def item_property_set(dashboard_id: str, item_id: str, key: str):
    d = _dashboard_or_404(dashboard_id)
    g = _item(dashboard_id, item_id)
    if d["owner"] != caller().account_id and "jira-administrators" not in caller().groups:
        raise JiraHTTPError(403, "You cannot change this dashboard's items.")
    if len(key) > 255:
        raise JiraHTTPError(400, "The property key cannot be longer than 255 characters.")
    value = request.get_json(silent=True)
    if value is None or len(request.get_data()) > 32768:
        raise JiraHTTPError(400, "The property value must be JSON of at most 32768 characters.")
    with site().lock:
        props = g.setdefault("properties", {})
        created = key not in props
        props[key] = value
    return jsonify({}), 201 if created else 200
