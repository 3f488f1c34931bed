"""Single issues: read, create, edit, delete, transitions, links, remote links, watchers, votes, properties."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox import catalog, render
from sandbox.generate import issue_content, materialise
from sandbox.model import Issue, Link
from sandbox.platform.fields_input import NOT_SETTABLE, parse_fields
from sandbox.web import JiraHTTPError, base, caller, issue_or_404, json_body, list_arg, site

PROPERTY_LIMIT = 32_768  # characters of an entity property's JSON value
bp = Blueprint("platform_issues", __name__, url_prefix="/rest/api/3")


@bp.get("/issue/<key>")
def issue_get(key: str):
    issue = issue_or_404(key)
    fields = list_arg("fields") or ["*all"]
    bean = render.issue_bean(site(), base(), issue, fields, set(list_arg("expand")))
    if props := list_arg("properties"):
        stored = issue_content(site(), issue)["properties"]
        bean["properties"] = {k: stored[k] for k in props if k in stored}
    return jsonify(bean)


def _issue_type(value: Any) -> str:
    for t in catalog.ISSUE_TYPES:
        if isinstance(value, dict) and (value.get("id") == t["id"] or value.get("name") == t["name"]):
            return t["id"]
    raise JiraHTTPError(400, [], {"issuetype": "Specify a valid issue type"})


def _record_change(issue: Issue, items: list[dict[str, Any]]) -> None:
    if not items:
        return
    content = materialise(site(), issue)
    now = render.now_ms()
    content["changelog"].append(
        {
            "id": site().next_id("histories", 900_000_000),
            "author": caller().account_id,
            "created": now,
            "items": items,
        }
    )
    issue.updated = now


@bp.post("/issue")
def issue_create():
    return jsonify(_create(json_body())), 201


BULK_LIMIT = 50


def _bulk_refused(n: int, message: str):
    error = {
        "status": 400,
        "elementErrors": {"errorMessages": [message], "errors": {}},
        "failedElementNumber": n,
    }
    return jsonify({"issues": [], "errors": [error]}), 400


@bp.post("/issue/bulk")
def issue_bulk_create():
    """Up to 50 issues a call; each refused one is an entry of `errors` (its index and Jira's error
    collection) while the others are created; all refused is a 400 with the same body."""
    body = json_body()
    updates = body.get("issueUpdates") if isinstance(body, dict) else None
    if not isinstance(updates, list):
        return _bulk_refused(0, "Issue updates must be a list (issueUpdates).")
    if len(updates) > BULK_LIMIT:
        return _bulk_refused(
            BULK_LIMIT, f"The number of issues in the request ({len(updates)}) exceeds {BULK_LIMIT}."
        )
    created, errors = [], []
    for n, item in enumerate(updates):
        try:
            if not isinstance(item, dict):
                raise JiraHTTPError(400, "An issue update must be an object.")
            created.append(_create(item))
        except JiraHTTPError as e:
            errors.append(
                {
                    "status": e.status,
                    "elementErrors": {"errorMessages": e.messages, "errors": e.errors},
                    "failedElementNumber": n,
                }
            )
    return jsonify({"issues": created, "errors": errors}), (201 if created or not updates else 400)


def _create(body: dict[str, Any]) -> dict[str, str]:
    fields = dict(body.get("fields") or {})
    project_ref = fields.pop("project", None) or {}
    project = site().project_by_key(str(project_ref.get("key") or project_ref.get("id") or ""))
    if project is None or caller().account_id in project.hidden_from:
        raise JiraHTTPError(400, [], {"project": "Specify a valid project ID or key"})
    if project.archived:
        raise JiraHTTPError(400, [], {"project": "The project is archived: issues cannot be created in it."})
    type_id = _issue_type(fields.pop("issuetype", None))
    parent_ref = fields.pop("parent", None)
    parent_id = None
    if parent_ref:
        parent = site().issue(str(parent_ref.get("key") or parent_ref.get("id") or ""))
        if parent is None or parent.project_id != project.id:
            raise JiraHTTPError(
                400, [], {"parent": "Given parent work item does not belong to appropriate hierarchy."}
            )
        if type_id == catalog.SUBTASK and parent.type_id in (catalog.SUBTASK, catalog.EPIC):
            raise JiraHTTPError(
                400, [], {"parent": "Given parent work item does not belong to appropriate hierarchy."}
            )
        if type_id == catalog.EPIC:
            raise JiraHTTPError(400, [], {"parent": "An epic cannot have a parent in this project."})
        parent_id = parent.id
    elif type_id == catalog.SUBTASK:
        raise JiraHTTPError(400, [], {"parent": "Sub-task work items must have a parent."})
    if "summary" not in fields:
        raise JiraHTTPError(400, [], {"summary": "You must specify a summary of the issue."})
    for banned in ("status", "created", "updated", "creator"):
        if banned in fields:
            raise JiraHTTPError(400, [], {banned: NOT_SETTABLE.format(banned)})
    parsed = parse_fields(site(), project, fields)
    properties = _create_properties(body.get("properties"))
    now = render.now_ms()
    with site().lock:
        issue_id = site().next_id("issues", 10_000 + len(site().issues) + 100_000)
        num = project.next_num
        project.next_num += 1
        issue = Issue(issue_id, f"{project.key}-{num}", project.id, num, type_id, parent_id, now, now)
        custom = {k: v for k, v in parsed.items() if k.startswith("customfield_")}
        issue.content = {
            "fields": {
                "summary": parsed["summary"],
                "description": parsed.get("description"),
                "environment": parsed.get("environment"),
                "status": catalog.STATUSES[0]["id"],
                "priority": parsed.get("priority", "3"),
                "resolution": None,
                "resolutiondate": None,
                "labels": parsed.get("labels", []),
                "components": parsed.get("components", []),
                "fixVersions": parsed.get("fixVersions", []),
                "versions": parsed.get("versions", []),
                "assignee": parsed.get("assignee"),
                "reporter": parsed.get("reporter", caller().account_id),
                "creator": caller().account_id,
                "duedate": parsed.get("duedate"),
                "timeoriginalestimate": None,
                "custom": custom,
            },
            "comments": [],
            "worklogs": [],
            "changelog": [],
            "remotelinks": [],
            "watchers": [caller().account_id],
            "votes": [],
            "properties": properties,
        }
        site().add_issue(issue)
    return {"id": str(issue_id), "key": issue.key, "self": f"{base()}/rest/api/3/issue/{issue_id}"}


def _create_properties(value: Any) -> dict[str, Any]:
    """Entity properties given in a create body (`properties: [{key, value}]`), checked as Jira does."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise JiraHTTPError(400, [], {"properties": "Properties must be a list of key and value."})
    out: dict[str, Any] = {}
    for item in value:
        key = item.get("key") if isinstance(item, dict) else None
        if not isinstance(key, str) or not key or len(key) > 255:
            raise JiraHTTPError(400, "The property key must be between 1 and 255 characters.")
        if len(json.dumps(item.get("value"), separators=(",", ":"))) > PROPERTY_LIMIT:
            raise JiraHTTPError(400, f"The property '{key}' exceeds the {PROPERTY_LIMIT} character limit.")
        out[key] = item.get("value")
    return out


@bp.put("/issue/<key>")
def issue_edit(key: str):
    issue = issue_or_404(key)
    body = json_body()
    project = site().projects[issue.project_id]
    fields = dict(body.get("fields") or {})
    for banned in ("status", "project", "issuetype", "created", "updated", "creator"):
        if banned in fields:
            raise JiraHTTPError(400, [], {banned: NOT_SETTABLE.format(banned)})
    parent_ref = fields.pop("parent", None) if "parent" in fields else False
    parsed = parse_fields(site(), project, fields)
    label_ops = (body.get("update") or {}).get("labels") or []
    with site().lock:
        content = materialise(site(), issue)
        f = content["fields"]
        items = []
        for name, value in parsed.items():
            target = f["custom"] if name.startswith("customfield_") else f
            old = target.get(name)
            if old != value:
                items.append(
                    {
                        "field": catalog.FIELD_NAMES.get(name, name),
                        "fieldtype": "custom" if name.startswith("customfield_") else "jira",
                        "fieldId": name,
                        "from": None,
                        "fromString": _short(old),
                        "to": None,
                        "toString": _short(value),
                    }
                )
                target[name] = value
        for op in label_ops:
            if "add" in op and op["add"] not in f["labels"]:
                f["labels"] = sorted({*f["labels"], op["add"]})
            if "remove" in op:
                f["labels"] = [x for x in f["labels"] if x != op["remove"]]
        if parent_ref is not False:
            parent = (
                site().issue(str((parent_ref or {}).get("key") or (parent_ref or {}).get("id") or ""))
                if parent_ref
                else None
            )
            if parent_ref and (parent is None or parent.project_id != issue.project_id):
                raise JiraHTTPError(
                    400, [], {"parent": "Given parent work item does not belong to appropriate hierarchy."}
                )
            if issue.parent_id is not None and issue.id in site().children.get(issue.parent_id, []):
                site().children[issue.parent_id].remove(issue.id)
            issue.parent_id = parent.id if parent else None
            if parent:
                site().children.setdefault(parent.id, []).append(issue.id)
        _record_change(issue, items)
        issue.updated = render.now_ms()
    return Response(status=204)


def _short(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) < 200 else text[:197] + "..."


@bp.delete("/issue/<key>")
def issue_delete(key: str):
    issue = issue_or_404(key)
    children = [
        site().issues[c]
        for c in site().children.get(issue.id, [])
        if not site().issues[c].deleted and site().issues[c].type_id == catalog.SUBTASK
    ]
    if children and request.args.get("deleteSubtasks", "false").lower() != "true":
        raise JiraHTTPError(
            400, "The issue has subtasks. Set deleteSubtasks to true to delete them with the issue."
        )
    with site().lock:
        for victim in [issue, *children]:
            victim.deleted = True
            site().issue_by_key.pop(victim.key, None)
    return Response(status=204)


@bp.get("/issue/<key>/transitions")
def transitions(key: str):
    issue = issue_or_404(key)
    current = issue_content(site(), issue)["fields"]["status"]
    return jsonify(
        {
            "expand": "transitions",
            "transitions": [
                {
                    "id": t["id"],
                    "name": f"To {catalog.STATUS_BY_ID[t['to']]['name']}",
                    "to": render.status(base(), t["to"]),
                    "hasScreen": False,
                    "isGlobal": True,
                    "isInitial": False,
                    "isAvailable": t["to"] != current,
                    "isConditional": False,
                    "isLooped": False,
                }
                for t in catalog.TRANSITIONS
            ],
        }
    )


@bp.post("/issue/<key>/transitions")
def transition(key: str):
    issue = issue_or_404(key)
    body = json_body()
    transition_id = str((body.get("transition") or {}).get("id", ""))
    target = next((t["to"] for t in catalog.TRANSITIONS if t["id"] == transition_id), None)
    if target is None:
        raise JiraHTTPError(400, "Transition id '" + transition_id + "' is not valid for this issue.")
    with site().lock:
        f = materialise(site(), issue)["fields"]
        old = f["status"]
        f["status"] = target
        done = catalog.STATUS_BY_ID[target]["category"] == "done"
        resolution = (body.get("fields") or {}).get("resolution") or {}
        if done:
            f["resolution"] = next(
                (
                    r["id"]
                    for r in catalog.RESOLUTIONS
                    if r["name"] == resolution.get("name") or r["id"] == resolution.get("id")
                ),
                "10000",
            )
            f["resolutiondate"] = render.now_ms()
        else:
            f["resolution"], f["resolutiondate"] = None, None
        _record_change(
            issue,
            [
                {
                    "field": "status",
                    "fieldtype": "jira",
                    "fieldId": "status",
                    "from": old,
                    "fromString": catalog.STATUS_BY_ID[old]["name"],
                    "to": target,
                    "toString": catalog.STATUS_BY_ID[target]["name"],
                }
            ],
        )
    return Response(status=204)


@bp.post("/issueLink")
def link_create():
    body = json_body()
    type_ref = body.get("type") or {}
    link_type = next(
        (
            t
            for t in site().link_types
            if t["name"] == type_ref.get("name") or t["id"] == str(type_ref.get("id"))
        ),
        None,
    )
    if link_type is None:
        raise JiraHTTPError(404, f"No issue link type with name '{type_ref.get('name')}' found.")
    ends = []
    for side in ("inwardIssue", "outwardIssue"):
        ref = body.get(side) or {}
        ends.append(issue_or_404(str(ref.get("key") or ref.get("id") or "")))
    inward, outward = ends
    with site().lock:
        for lid in site().links_by_issue.get(inward.id, []):
            existing = site().links[lid]
            if (existing.type_id, existing.inward_id, existing.outward_id) == (
                link_type["id"],
                inward.id,
                outward.id,
            ):
                return Response(status=201)
        site().add_link(Link(site().next_id("links", 900_000), link_type["id"], inward.id, outward.id))
        for issue in ends:
            issue.updated = render.now_ms()
    return Response(status=201)


@bp.get("/issueLink/<int:link_id>")
def link_get(link_id: int):
    link = site().links.get(link_id)
    if link is None:
        raise JiraHTTPError(404, "No issue link with id '" + str(link_id) + "' exists.")
    inward, outward = site().issues[link.inward_id], site().issues[link.outward_id]
    t = site().link_type(link.type_id)
    return jsonify(
        {
            "id": str(link.id),
            "type": {**t, "self": f"{base()}/rest/api/3/issueLinkType/{t['id']}"},
            "inwardIssue": render.issue_stub(site(), base(), inward),
            "outwardIssue": render.issue_stub(site(), base(), outward),
        }
    )


@bp.delete("/issueLink/<int:link_id>")
def link_delete(link_id: int):
    with site().lock:
        link = site().links.pop(link_id, None)
        if link is None:
            raise JiraHTTPError(404, "No issue link with id '" + str(link_id) + "' exists.")
        for issue_id in (link.inward_id, link.outward_id):
            site().links_by_issue[issue_id].remove(link_id)
    return Response(status=204)


@bp.get("/issue/<key>/remotelink")
def remote_links(key: str):
    issue = issue_or_404(key)
    out = []
    for r in issue_content(site(), issue)["remotelinks"]:
        item = {"id": r["id"], "self": f"{base()}/rest/api/3/issue/{issue.key}/remotelink/{r['id']}"}
        item |= {k: r[k] for k in ("globalId", "relationship") if r.get(k) is not None}
        out.append(item | {"object": r["object"]})
    if global_id := request.args.get("globalId"):
        match = [r for r in out if r.get("globalId") == global_id]
        if not match:
            raise JiraHTTPError(404, "No remote link with this global id.")
        return jsonify(match[0])
    return jsonify(out)


@bp.post("/issue/<key>/remotelink")
def remote_link_create(key: str):
    issue = issue_or_404(key)
    body = json_body()
    obj = body.get("object") or {}
    if not obj.get("url") or not obj.get("title"):
        raise JiraHTTPError(400, [], {"object": "The remote link needs an object with url and title."})
    with site().lock:
        links = materialise(site(), issue)["remotelinks"]
        existing = next(
            (r for r in links if body.get("globalId") and r.get("globalId") == body.get("globalId")), None
        )
        if existing:
            existing["object"] = obj
            link_id, status = existing["id"], 200
        else:
            link_id, status = site().next_id("remotelinks", 900_000), 201
            links.append(
                {
                    "id": link_id,
                    "globalId": body.get("globalId"),
                    "relationship": body.get("relationship"),
                    "object": obj,
                }
            )
        issue.updated = render.now_ms()
    return jsonify(
        {"id": link_id, "self": f"{base()}/rest/api/3/issue/{issue.key}/remotelink/{link_id}"}
    ), status


@bp.get("/issue/<key>/watchers")
def watchers(key: str):
    issue = issue_or_404(key)
    ids = issue_content(site(), issue)["watchers"]
    users = [render.user_ref(site(), base(), a) for a in ids]
    return jsonify(
        {
            "self": f"{base()}/rest/api/3/issue/{issue.key}/watchers",
            "isWatching": caller().account_id in ids,
            "watchCount": len(ids),
            "watchers": users,
        }
    )


@bp.post("/issue/<key>/watchers")
def watcher_add(key: str):
    issue = issue_or_404(key)
    account_id = request.get_json(silent=True) or caller().account_id
    if not isinstance(account_id, str) or account_id not in site().users:
        raise JiraHTTPError(400, "The user does not exist or cannot watch this issue.")
    with site().lock:
        ids = materialise(site(), issue)["watchers"]
        if account_id not in ids:
            ids.append(account_id)
    return Response(status=204)


@bp.delete("/issue/<key>/watchers")
def watcher_remove(key: str):
    issue = issue_or_404(key)
    with site().lock:
        ids = materialise(site(), issue)["watchers"]
        if request.args.get("accountId") in ids:
            ids.remove(request.args["accountId"])
    return Response(status=204)


@bp.get("/issue/<key>/votes")
def votes(key: str):
    issue = issue_or_404(key)
    ids = issue_content(site(), issue)["votes"]
    return jsonify(
        {
            "self": f"{base()}/rest/api/3/issue/{issue.key}/votes",
            "votes": len(ids),
            "hasVoted": caller().account_id in ids,
            "voters": [render.user_ref(site(), base(), a) for a in ids],
        }
    )


@bp.post("/issue/<key>/votes")
def vote(key: str):
    issue = issue_or_404(key)
    with site().lock:
        ids = materialise(site(), issue)["votes"]
        if caller().account_id not in ids:
            ids.append(caller().account_id)
    return Response(status=204)


@bp.get("/issue/<key>/properties")
def properties(key: str):
    issue = issue_or_404(key)
    return jsonify(
        {
            "keys": [
                {"self": f"{base()}/rest/api/3/issue/{issue.id}/properties/{k}", "key": k}
                for k in issue_content(site(), issue)["properties"]
            ]
        }
    )


@bp.get("/issue/<key>/properties/<prop>")
def property_get(key: str, prop: str):
    issue = issue_or_404(key)
    stored = issue_content(site(), issue)["properties"]
    if prop not in stored:
        raise JiraHTTPError(404, f"The property with key '{prop}' does not exist.")
    return jsonify({"key": prop, "value": stored[prop]})


@bp.put("/issue/<key>/properties/<prop>")
def property_set(key: str, prop: str):
    issue = issue_or_404(key)
    value = request.get_json(silent=True)
    if value is None and request.get_data():
        raise JiraHTTPError(400, "The property value must be valid JSON.")
    if len(prop) > 255:
        raise JiraHTTPError(400, "The property key is too long (at most 255 characters).")
    if len(json.dumps(value, separators=(",", ":"))) > PROPERTY_LIMIT:
        raise JiraHTTPError(400, f"The property '{prop}' exceeds the {PROPERTY_LIMIT} character limit.")
    with site().lock:
        stored = materialise(site(), issue)["properties"]
        created = prop not in stored
        stored[prop] = value
    return Response(status=201 if created else 200)


@bp.delete("/issue/<key>/properties/<prop>")
def property_delete(key: str, prop: str):
    issue = issue_or_404(key)
    with site().lock:
        stored = materialise(site(), issue)["properties"]
        if stored.pop(prop, None) is None:
            raise JiraHTTPError(404, f"The property with key '{prop}' does not exist.")
    return Response(status=204)
