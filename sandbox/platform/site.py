"""Who am I, what is this site, and its site-wide objects: users, groups, fields, types, schemes, filters."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from sandbox import catalog, render
from sandbox.web import JiraHTTPError, base, caller, int_arg, page_bean, site, state

bp = Blueprint("platform_site", __name__, url_prefix="/rest/api/3")
edge = Blueprint("edge", __name__)


@edge.get("/_edge/tenant_info")
def tenant_info():
    return jsonify({"cloudId": site().cloud_id})


@bp.get("/myself")
def myself():
    return jsonify(render.user(base(), caller(), full=True))


@bp.get("/serverInfo")
def server_info():
    datacenter = state().config.flavor == "datacenter"
    return jsonify(
        {
            "baseUrl": base(),
            "displayUrl": base(),
            "version": "9.12.0" if datacenter else "1001.0.0-SNAPSHOT",
            "versionNumbers": [9, 12, 0] if datacenter else [1001, 0, 0],
            "deploymentType": "Server" if datacenter else "Cloud",
            "buildNumber": 100290,
            "buildDate": "2026-11-01T00:00:00.000+0000",
            "serverTime": render.jira_time(render.now_ms()),
            "scmInfo": "0123456789abcdef0123456789abcdef01234567",
            "serverTitle": "Keepstone Sandbox",
            "serverTimeZone": "UTC",
        }
    )


def _people() -> list[Any]:
    return list(site().users.values())


@bp.get("/users/search")
@bp.get("/users")
@bp.get("/user/search")
def users():
    start, limit = int_arg("startAt", 0), int_arg("maxResults", 50, 0, 1000)
    people = _people()
    query = (request.args.get("query") or "").lower()
    if query:
        people = [u for u in people if query in u.email.lower() or query in u.display_name.lower()]
    if account_id := request.args.get("accountId"):
        people = [u for u in people if u.account_id == account_id]
    return jsonify([render.user(base(), u) for u in people[start : start + limit]])


@bp.get("/groups/picker")
def groups_picker():
    query = (request.args.get("query") or "").lower()
    names = sorted({g for u in site().users.values() for g in u.groups if query in g.lower()})
    limit = int_arg("maxResults", 20, 0, 1000)
    found = [{"name": n, "html": n, "groupId": _group_id(n), "labels": []} for n in names[:limit]]
    return jsonify(
        {
            "header": f"Showing {len(found)} of {len(names)} matching groups",
            "total": len(names),
            "groups": found,
        }
    )


def _group_id(name: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"group:{name}"))


@bp.get("/user")
def user():
    account_id = request.args.get("accountId")
    if not account_id:
        raise JiraHTTPError(400, "The accountId query parameter needs to be provided.")
    u = site().users.get(account_id)
    if u is None:
        raise JiraHTTPError(404, "Specified user does not exist or you do not have required permissions.")
    return jsonify(render.user(base(), u, full=True))


@bp.get("/user/bulk")
def user_bulk():
    ids = request.args.getlist("accountId")
    found = [render.user(base(), site().users[i]) for i in ids if i in site().users]
    return jsonify(
        page_bean(found, int_arg("startAt", 0), int_arg("maxResults", 10, 1, 200), "/rest/api/3/user/bulk")
    )


@bp.get("/group/bulk")
def groups():
    names = sorted({g for u in site().users.values() for g in u.groups})
    values = [{"name": n, "groupId": _group_id(n)} for n in names]
    return jsonify(
        page_bean(values, int_arg("startAt", 0), int_arg("maxResults", 50, 1, 50), "/rest/api/3/group/bulk")
    )


def _group_name() -> str:
    name = request.args.get("groupname")
    if not name and request.args.get("groupId"):
        names = {g for u in site().users.values() for g in u.groups}
        name = next((n for n in names if _group_id(n) == request.args["groupId"]), None)
    if not name:
        raise JiraHTTPError(400, "You must specify a group name or a group id.")
    return name


@bp.post("/group/user")
def group_user_add():
    """Add a user to a group (the group exists while someone is in it)."""
    name = _group_name()
    account = (request.get_json(silent=True) or {}).get("accountId")
    user = site().users.get(str(account))
    if user is None:
        raise JiraHTTPError(400, [], {"accountId": "The user does not exist."})
    with site().lock:
        if name not in user.groups:
            user.groups = (*user.groups, name)
    return jsonify(
        {
            "name": name,
            "groupId": _group_id(name),
            "self": f"{base()}/rest/api/3/group?groupId={_group_id(name)}",
        }
    ), 201


@bp.delete("/group/user")
def group_user_remove():
    name = _group_name()
    user = site().users.get(request.args.get("accountId", ""))
    if user is None or name not in user.groups:
        raise JiraHTTPError(404, f"The user is not a member of the group '{name}'.")
    with site().lock:
        user.groups = tuple(g for g in user.groups if g != name)
    return "", 200


@bp.delete("/user")
def user_delete():
    """Remove a user from the site (site admins only); what referred to them shows a former user."""
    if "site-admins" not in caller().groups:
        raise JiraHTTPError(403, "You do not have the permission to delete users.")
    account_id = request.args.get("accountId")
    if not account_id:
        raise JiraHTTPError(400, "The accountId parameter is required.")
    if account_id not in site().users:
        raise JiraHTTPError(404, f"The user with accountId '{account_id}' does not exist.")
    if account_id == caller().account_id:
        raise JiraHTTPError(400, "You cannot delete yourself.")
    with site().lock:
        del site().users[account_id]
        for project in site().projects.values():
            for members in project.roles.values():
                members.discard(account_id)
    return "", 204


@bp.get("/field")
def fields():
    out = []
    for fid, name, schema in catalog.SYSTEM_FIELDS:
        item = {
            "id": fid,
            "key": fid,
            "name": name,
            "custom": False,
            "orderable": True,
            "navigable": True,
            "searchable": True,
            "clauseNames": [fid],
        }
        if schema is not None:
            item["schema"] = schema
        out.append(item)
    for fid, d in site().custom_fields.items():
        number = int(fid.split("_")[1])
        out.append(
            {
                "id": fid,
                "key": fid,
                "name": d["name"],
                "custom": True,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [f"cf[{number}]", d["name"]],
                "schema": {
                    "type": _schema_type(d["kind"]),
                    "custom": f"com.atlassian.jira.plugin.system.customfieldtypes:{d['type']}",
                    "customId": number,
                    **({"items": _schema_items(d["kind"])} if _schema_items(d["kind"]) else {}),
                },
            }
        )
    return jsonify(out)


def _schema_type(kind: str) -> str:
    return {
        "number": "number",
        "select": "option",
        "multiselect": "array",
        "date": "date",
        "user": "user",
        "multiuser": "array",
        "adf": "string",
        "labels": "array",
        "url": "string",
        "string": "string",
        "sprint": "array",
        "cascading": "option-with-child",
        "datetime": "datetime",
        "group": "group",
        "multigroup": "array",
        "version": "version",
        "multiversion": "array",
        "project": "project",
    }[kind]


def _schema_items(kind: str) -> str | None:
    return {
        "multiselect": "option",
        "multiuser": "user",
        "labels": "string",
        "sprint": "json",
        "multigroup": "group",
        "multiversion": "version",
    }.get(kind)


@bp.get("/field/<field_id>/context/<int:context_id>/option")
def field_options(field_id: str, context_id: int):
    definition = site().custom_fields.get(field_id)
    if definition is None or "options" not in definition:
        raise JiraHTTPError(404, "The custom field was not found.")
    values = []
    for o in definition["options"]:
        if o.get("deleted"):  # an option deleted after use: gone from the list, still on old issues
            continue
        values.append({"id": o["id"], "value": o["value"], "disabled": False})
        for child in o.get("children") or []:
            if not child.get("deleted"):
                values.append(
                    {"id": child["id"], "value": child["value"], "disabled": False, "optionId": o["id"]}
                )
    return jsonify(
        page_bean(
            values,
            int_arg("startAt", 0),
            int_arg("maxResults", 100, 1, 1000),
            f"/rest/api/3/field/{field_id}/context/{context_id}/option",
        )
    )


@bp.get("/issuetype")
def issue_types():
    return jsonify([render.issue_type(base(), t["id"]) for t in catalog.ISSUE_TYPES])


@bp.get("/priority")
def priorities():
    return jsonify(
        [
            {**render.priority(base(), p["id"]), "statusColor": p["statusColor"], "description": p["name"]}
            for p in catalog.PRIORITIES
        ]
    )


@bp.get("/status")
def statuses():
    return jsonify([render.status(base(), s["id"]) for s in catalog.STATUSES])


@bp.get("/resolution")
def resolutions():
    return jsonify([render.resolution(base(), r["id"]) for r in catalog.RESOLUTIONS])


@bp.get("/issueLinkType")
def link_types():
    return jsonify(
        {
            "issueLinkTypes": [
                {**t, "self": f"{base()}/rest/api/3/issueLinkType/{t['id']}"} for t in site().link_types
            ]
        }
    )


@bp.get("/projectCategory")
def project_categories():
    return jsonify(
        [{"self": f"{base()}/rest/api/3/projectCategory/{c['id']}", **c} for c in site().categories]
    )


def _filters() -> list[dict[str, Any]]:
    from sandbox.platform.sharing import render_filter

    return [render_filter(f) for f in site().filters]


@bp.get("/filter/my")
def my_filters():
    return jsonify([f for f in _filters() if f["owner"]["accountId"] == caller().account_id])


@bp.get("/filter/favourite")
def favourite_filters():
    return jsonify([f for f in _filters() if f["favourite"]])


@bp.get("/filter/<filter_id>")
def filter_get(filter_id: str):
    found = next((f for f in _filters() if f["id"] == filter_id), None)
    if found is None:
        raise JiraHTTPError(400, "The selected filter is not available to you, perhaps it has been deleted.")
    return jsonify(found)


@bp.get("/filter/search")
def filters():
    values = _filters()
    if name := (request.args.get("filterName") or "").lower():
        values = [f for f in values if name in f["name"].lower()]
    return jsonify(
        page_bean(
            values, int_arg("startAt", 0), int_arg("maxResults", 50, 1, 100), "/rest/api/3/filter/search"
        )
    )


@bp.get("/dashboard")
def dashboards():
    start, limit = int_arg("startAt", 0), int_arg("maxResults", 20, 1, 1000)
    from sandbox.platform.dashboards import render_dashboard

    values = [render_dashboard(d) for d in site().dashboards]
    return jsonify(
        {
            "startAt": start,
            "maxResults": limit,
            "total": len(values),
            "dashboards": values[start : start + limit],
        }
    )


@bp.get("/dashboard/<dashboard_id>")
def dashboard(dashboard_id: str):
    d = next((d for d in site().dashboards if d["id"] == dashboard_id), None)
    if d is None:
        raise JiraHTTPError(404, f"The dashboard with id '{dashboard_id}' does not exist.")
    from sandbox.platform.dashboards import render_dashboard

    return jsonify(render_dashboard(d))


@bp.get("/workflow/search")
def workflows():
    statuses = [{"id": s["id"], "name": s["name"]} for s in catalog.STATUSES]
    transitions = [
        {
            "id": t["id"],
            "name": f"To {catalog.STATUS_BY_ID[t['to']]['name']}",
            "description": "",
            "from": [],
            "to": t["to"],
            "type": "global",
        }
        for t in catalog.TRANSITIONS
    ]
    values = [
        {
            "id": {
                "name": "Software Simplified Workflow",
                "entityId": "00000000-0000-4000-8000-000000000001",
            },
            "description": "The workflow every generated project uses.",
            "statuses": statuses,
            "transitions": transitions,
        }
    ]
    return jsonify(
        page_bean(
            values, int_arg("startAt", 0), int_arg("maxResults", 50, 1, 50), "/rest/api/3/workflow/search"
        )
    )


def _user_bean(account_id: str) -> dict[str, Any]:
    """The smaller UserBean shape some endpoints (dashboards) use for owners."""
    full = render.user_ref(site(), base(), account_id) or {}
    return {k: full[k] for k in ("self", "accountId", "displayName", "active", "avatarUrls") if k in full}
