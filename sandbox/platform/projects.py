"""Projects and their configuration: search, get, create, delete, components, versions, statuses, roles."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request

from sandbox import catalog, render
from sandbox.model import Project
from sandbox.web import (
    JiraHTTPError,
    base,
    caller,
    can_browse,
    int_arg,
    json_body,
    list_arg,
    page_bean,
    project_or_404,
    site,
)

bp = Blueprint("platform_projects", __name__, url_prefix="/rest/api/3")
PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")


def _visible() -> list[Project]:
    return [p for p in site().projects.values() if not p.deleted and can_browse(p)]


@bp.get("/project/search")
def project_search():
    projects = _visible()
    keys = {k.upper() for k in list_arg("keys")}
    if keys:
        projects = [p for p in projects if p.key in keys]
    ids = set(list_arg("id"))
    if ids:
        projects = [p for p in projects if str(p.id) in ids]
    if query := request.args.get("query"):
        projects = [p for p in projects if query.lower() in p.key.lower() or query.lower() in p.name.lower()]
    if type_key := request.args.get("typeKey"):
        projects = [p for p in projects if p.type_key in type_key.split(",")]
    if category := request.args.get("categoryId"):
        projects = [p for p in projects if str(p.category_id) == category]
    status = set(list_arg("status")) or {"live"}
    projects = [p for p in projects if ("archived" if p.archived else "live") in status]
    projects.sort(key=lambda p: p.key)
    expand = set(list_arg("expand"))
    values = [render.project(site(), base(), p, expand) for p in projects]
    return jsonify(
        page_bean(
            values, int_arg("startAt", 0), int_arg("maxResults", 50, 1, 100), "/rest/api/3/project/search"
        )
    )


@bp.get("/project")
def project_list():
    return jsonify([render.project(site(), base(), p) for p in sorted(_visible(), key=lambda p: p.key)])


@bp.get("/project/<key>")
def project_get(key: str):
    return jsonify(render.project(site(), base(), project_or_404(key), set(list_arg("expand"))))


@bp.post("/project")
def project_create():
    data = json_body()
    errors: dict[str, str] = {}
    key = str(data.get("key", "")).strip()
    name = str(data.get("name", "")).strip()
    if not key:
        errors["projectKey"] = "You must specify a unique project key."
    elif not PROJECT_KEY.match(key):
        errors["projectKey"] = (
            "Project keys must start with an uppercase letter, followed by one or more uppercase "
            "alphanumeric characters."
        )
    elif any(p.key == key for p in site().projects.values() if not p.deleted):
        errors["projectKey"] = f"Project '{key}' uses this project key."
    if not name:
        errors["projectName"] = "You must specify a valid project name."
    elif any(p.name.lower() == name.lower() for p in site().projects.values() if not p.deleted):
        errors["projectName"] = "A project with that name already exists."
    type_key = data.get("projectTypeKey")
    if type_key not in ("software", "business", "service_desk"):
        errors["projectTypeKey"] = (
            "A valid project type must be specified (software, business or service_desk)."
        )
    lead = data.get("leadAccountId", caller().account_id)
    if lead not in site().users:
        errors["projectLead"] = "The project lead you specified does not exist."
    if errors:
        raise JiraHTTPError(400, [], errors)
    with site().lock:
        project_id = site().next_id("projects", 10_000 + len(site().projects) + 1000)
        project = Project(
            id=project_id,
            key=key,
            name=name,
            type_key=type_key,
            lead=lead,
            description=str(data.get("description", "")),
            category_id=data.get("categoryId"),
            created=render.now_ms(),
        )
        site().projects[project_id] = project
        if type_key == "software":  # Jira's scrum template comes with a board
            board_id = site().next_id("boards", len(site().boards) + 1)
            board = {"id": board_id, "name": f"{key} board", "type": "scrum", "project_id": project_id}
            site().boards.append(board)
            from sandbox.platform.sharing import board_filter

            board_filter(site(), board, caller().account_id)  # owned by who created the project
    return jsonify({"self": f"{base()}/rest/api/3/project/{project_id}", "id": project_id, "key": key}), 201


@bp.delete("/project/<key>")
def project_delete(key: str):
    project = project_or_404(key)
    with site().lock:
        project.deleted = True
        for issue_id in site().issues_by_project.get(project.id, []):
            issue = site().issues[issue_id]
            issue.deleted = True
            site().issue_by_key.pop(issue.key, None)
    return Response(status=204)


@bp.get("/project/<key>/components")
def components(key: str):
    project = project_or_404(key)
    return jsonify([render.component(base(), project, c) for c in project.components])


@bp.get("/project/<key>/versions")
def versions(key: str):
    project = project_or_404(key)
    return jsonify([render.version(base(), project, v) for v in project.versions])


@bp.get("/project/<key>/version")
def versions_paged(key: str):
    project = project_or_404(key)
    values = [render.version(base(), project, v) for v in project.versions]
    return jsonify(
        page_bean(
            values,
            int_arg("startAt", 0),
            int_arg("maxResults", 50, 1, 50),
            f"/rest/api/3/project/{key}/version",
        )
    )


@bp.get("/project/<key>/statuses")
def project_statuses(key: str):
    project_or_404(key)
    return jsonify(
        [
            {
                "self": f"{base()}/rest/api/3/issuetype/{t['id']}",
                "id": t["id"],
                "name": t["name"],
                "subtask": t["subtask"],
                "statuses": [render.status(base(), s["id"]) for s in catalog.STATUSES],
            }
            for t in catalog.ISSUE_TYPES
        ]
    )


@bp.get("/project/<key>/role")
def project_roles(key: str):
    project = project_or_404(key)
    return jsonify(
        {name: f"{base()}/rest/api/3/project/{project.id}/role/{rid}" for name, rid in render.ROLES.items()}
    )


def _role_name(role_id: int) -> str:
    name = next((n for n, r in render.ROLES.items() if r == role_id), None)
    if name is None:
        raise JiraHTTPError(404, "Can not retrieve a role actor for a null project role.")
    return name


def _role(project: Project, role_id: int) -> dict:
    """A project role with its actors (users, then groups), as GET and POST .../role/{id} answer it."""
    from sandbox.platform.site import _group_id

    name = _role_name(role_id)
    members = ([project.lead] if name == "Administrators" else []) + sorted(
        project.roles.get(name, set()) - {project.lead if name == "Administrators" else ""}
    )
    actors = [
        {
            "id": 10000 + i,
            "displayName": site().users[account_id].display_name,
            "type": "atlassian-user-role-actor",
            "actorUser": {"accountId": account_id},
        }
        for i, account_id in enumerate(members)
        if account_id in site().users
    ]
    for i, group in enumerate(sorted(project.role_groups.get(name, set()))):
        actors.append(
            {
                "id": 20000 + i,
                "displayName": group,
                "name": group,
                "type": "atlassian-group-role-actor",
                "actorGroup": {"name": group, "displayName": group, "groupId": _group_id(group)},
            }
        )
    return {
        "self": f"{base()}/rest/api/3/project/{project.id}/role/{role_id}",
        "name": name,
        "id": role_id,
        "description": f"{name} of the project",
        "actors": actors,
    }


@bp.get("/project/<key>/role/<int:role_id>")
def project_role(key: str, role_id: int):
    return jsonify(_role(project_or_404(key), role_id))


@bp.post("/project/<key>/role/<int:role_id>")
def project_role_add(key: str, role_id: int):
    """Add users (accountIds) and groups (names or ids) to a project role, as Jira does: all or nothing,
    refusing unknown users and groups and actors already in the role."""
    from sandbox.platform.site import _group_id

    project = project_or_404(key)
    name = _role_name(role_id)
    data = json_body()
    users = data.get("user") or []
    groups = list(data.get("group") or [])
    known = {g for u in site().users.values() for g in u.groups}
    for group_id in data.get("groupId") or []:
        found = next((g for g in known if _group_id(g) == group_id), None)
        if found is None:
            raise JiraHTTPError(400, f"Group with id '{group_id}' does not exist.")
        groups.append(found)
    if not isinstance(users, list) or not isinstance(groups, list) or not (users or groups):
        raise JiraHTTPError(400, "You must specify users or groups to add to the project role.")
    in_role = set(project.roles.get(name, set())) | ({project.lead} if name == "Administrators" else set())
    for account_id in users:
        if account_id not in site().users:
            raise JiraHTTPError(400, f"User with accountId '{account_id}' does not exist.")
        if account_id in in_role:
            raise JiraHTTPError(400, f"'{account_id}' is already a member of the project role {name}.")
    for group in groups:
        if group not in known:
            raise JiraHTTPError(400, f"Group '{group}' does not exist.")
        if group in project.role_groups.get(name, set()):
            raise JiraHTTPError(400, f"'{group}' is already a member of the project role {name}.")
    with site().lock:
        project.roles.setdefault(name, set()).update(users)
        project.role_groups.setdefault(name, set()).update(groups)
    return jsonify(_role(project, role_id))


@bp.delete("/project/<key>/role/<int:role_id>")
def project_role_remove(key: str, role_id: int):
    """Remove one user (accountId) or group (name or id) from a project role."""
    from sandbox.platform.site import _group_id

    project = project_or_404(key)
    name = _role_name(role_id)
    user, group, group_id = (request.args.get(k) for k in ("user", "group", "groupId"))
    if group_id:
        group = next((g for g in project.role_groups.get(name, set()) if _group_id(g) == group_id), group_id)
    with site().lock:
        if user and user in project.roles.get(name, set()):
            project.roles[name].discard(user)
        elif group and group in project.role_groups.get(name, set()):
            project.role_groups[name].discard(group)
        else:
            raise JiraHTTPError(404, f"The actor is not a member of the project role {name}.")
    return Response(status=204)


@bp.get("/project/<key>/properties")
def project_properties(key: str):
    project = project_or_404(key)
    return jsonify(
        {
            "keys": [
                {"self": f"{base()}/rest/api/3/project/{project.id}/properties/{k}", "key": k}
                for k in project.properties
            ]
        }
    )


@bp.post("/component")
def component_create():
    data = json_body()
    project = site().project_by_key(str(data.get("project") or data.get("projectId") or ""))
    errors = {}
    if project is None:
        errors["project"] = "The project is not valid."
    if not str(data.get("name", "")).strip():
        errors["name"] = "The component name must not be empty."
    elif project is not None and any(
        c["name"].lower() == str(data["name"]).lower() for c in project.components
    ):
        errors["name"] = "A component with the name " + str(data["name"]) + " already exists in this project."
    if errors:
        raise JiraHTTPError(400, [], errors)
    c = {
        "id": site().next_id("components", 10000),
        "name": str(data["name"]).strip(),
        "description": str(data.get("description", "")),
        "lead": data.get("leadAccountId"),
        "assigneeType": data.get("assigneeType", "PROJECT_DEFAULT"),
    }
    project.components.append(c)
    return jsonify(render.component(base(), project, c)), 201


@bp.post("/version")
def version_create():
    data = json_body()
    project = site().project_by_key(str(data.get("projectId") or data.get("project") or ""))
    errors = {}
    if project is None:
        errors["projectId"] = "The project is not valid."
    if not str(data.get("name", "")).strip():
        errors["name"] = "You must specify a valid version name"
    elif project is not None and any(v["name"] == data["name"] for v in project.versions):
        errors["name"] = "A version with this name already exists in this project."
    if errors:
        raise JiraHTTPError(400, [], errors)
    v = {
        "id": site().next_id("versions", 10000),
        "name": str(data["name"]).strip(),
        "description": str(data.get("description", "")),
        "released": bool(data.get("released", False)),
        "archived": bool(data.get("archived", False)),
        "releaseDate": data.get("releaseDate"),
    }
    project.versions.append(v)
    return jsonify(render.version(base(), project, v)), 201
