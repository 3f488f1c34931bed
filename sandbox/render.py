"""Turn the site's records into the JSON shapes Jira Cloud answers with (see reference/*.openapi.json)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sandbox import catalog
from sandbox.generate import issue_content
from sandbox.model import Attachment, Issue, Project, Site, User


def jira_time(ms: int | None, offset_minutes: int = 0) -> str | None:
    """Format epoch milliseconds as Jira does: 2024-01-01T10:00:00.000+0000 (or at a UTC offset)."""
    if ms is None:
        return None
    if not offset_minutes:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"
    zone = timezone(timedelta(minutes=offset_minutes))
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    stamp = datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%dT%H:%M:%S.")
    return f"{stamp}{ms % 1000:03d}{sign}{hours:02d}{minutes:02d}"


def now_ms() -> int:
    """Return the current time in epoch milliseconds."""
    return int(time.time() * 1000)


def avatar_urls(base: str, kind: str, ident: str) -> dict[str, str]:
    return {
        size: f"{base}/secure/{kind}avatar?size={size}&id={ident}"
        for size in ("16x16", "24x24", "32x32", "48x48")
    }


def user(base: str, u: User | None, full: bool = False) -> dict[str, Any] | None:
    """Render a user reference (or the full user for /myself and /user)."""
    if u is None:
        return None
    out: dict[str, Any] = {
        "self": f"{base}/rest/api/3/user?accountId={u.account_id}",
        "accountId": u.account_id,
        "accountType": "atlassian",
        "emailAddress": u.email,
        "avatarUrls": avatar_urls(base, "user", u.account_id),
        "displayName": u.display_name,
        "active": u.active,
        "timeZone": u.time_zone,
    }
    if full:
        out["locale"] = "en_US"
        out["groups"] = {"size": len(u.groups), "items": []}
        out["applicationRoles"] = {"size": 1, "items": []}
        out["expand"] = "groups,applicationRoles"
    return out


def user_ref(site: Site, base: str, account_id: str | None) -> dict[str, Any] | None:
    if account_id is None:
        return None
    u = site.users.get(account_id)
    if u is None:  # a user that left the site: Jira still answers with the id
        return {
            "accountId": account_id,
            "displayName": "Former user",
            "active": False,
            "accountType": "atlassian",
            "self": f"{base}/rest/api/3/user?accountId={account_id}",
        }
    return user(base, u)


def status(base: str, status_id: str) -> dict[str, Any]:
    s = catalog.STATUS_BY_ID[status_id]
    cat = catalog.STATUS_CATEGORIES[s["category"]]
    return {
        "self": f"{base}/rest/api/3/status/{status_id}",
        "id": status_id,
        "name": s["name"],
        "description": "",
        "iconUrl": f"{base}/images/icons/statuses/generic.png",
        "statusCategory": {"self": f"{base}/rest/api/3/statuscategory/{cat['id']}", **cat},
    }


def issue_type(base: str, type_id: str) -> dict[str, Any]:
    t = catalog.ISSUE_TYPE_BY_ID[type_id]
    return {
        "self": f"{base}/rest/api/3/issuetype/{type_id}",
        "id": type_id,
        "name": t["name"],
        "description": t["description"],
        "subtask": t["subtask"],
        "hierarchyLevel": t["hierarchyLevel"],
        "iconUrl": f"{base}/images/icons/issuetypes/{t['name'].lower()}.png",
        "avatarId": 10300 + int(type_id) % 100,
    }


def priority(base: str, priority_id: str | None) -> dict[str, Any] | None:
    if priority_id is None:
        return None
    p = catalog.PRIORITY_BY_ID[priority_id]
    return {
        "self": f"{base}/rest/api/3/priority/{priority_id}",
        "id": priority_id,
        "name": p["name"],
        "iconUrl": f"{base}/images/icons/priorities/{p['name'].lower()}.svg",
    }


def resolution(base: str, resolution_id: str | None) -> dict[str, Any] | None:
    if resolution_id is None:
        return None
    r = catalog.RESOLUTION_BY_ID[resolution_id]
    return {
        "self": f"{base}/rest/api/3/resolution/{resolution_id}",
        "id": resolution_id,
        **{k: r[k] for k in ("name", "description")},
    }


def component(base: str, project: Project, c: dict[str, Any]) -> dict[str, Any]:
    return {
        "self": f"{base}/rest/api/3/component/{c['id']}",
        "id": str(c["id"]),
        "name": c["name"],
        "description": c.get("description", ""),
        "project": project.key,
        "projectId": project.id,
        "assigneeType": c.get("assigneeType", "PROJECT_DEFAULT"),
    }


def version(base: str, project: Project, v: dict[str, Any]) -> dict[str, Any]:
    out = {
        "self": f"{base}/rest/api/3/version/{v['id']}",
        "id": str(v["id"]),
        "name": v["name"],
        "description": v.get("description", ""),
        "archived": v.get("archived", False),
        "released": v.get("released", False),
        "projectId": project.id,
    }
    if v.get("releaseDate"):
        out["releaseDate"] = v["releaseDate"]
    return out


def project(site: Site, base: str, p: Project, expand: set[str] | None = None) -> dict[str, Any]:
    """Render a project as GET /project/{key} does."""
    expand = expand or set()
    out: dict[str, Any] = {
        "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
        "self": f"{base}/rest/api/3/project/{p.id}",
        "id": str(p.id),
        "key": p.key,
        "name": p.name,
        "avatarUrls": avatar_urls(base, "project", str(p.id)),
        "projectTypeKey": p.type_key,
        "simplified": False,
        "style": "classic",
        "isPrivate": False,
        "properties": {},
        "archived": p.archived,
        "description": p.description,
        "lead": user_ref(site, base, p.lead),
        "assigneeType": "UNASSIGNED",
        "components": [component(base, p, c) for c in p.components],
        "versions": [version(base, p, v) for v in p.versions],
        "issueTypes": [issue_type(base, t["id"]) for t in catalog.ISSUE_TYPES],
        "roles": {name: f"{base}/rest/api/3/project/{p.id}/role/{rid}" for name, rid in ROLES.items()},
    }
    if p.category_id is not None:
        cat = next(c for c in site.categories if c["id"] == str(p.category_id))
        out["projectCategory"] = {"self": f"{base}/rest/api/3/projectCategory/{cat['id']}", **cat}
    if "insight" in expand:
        ids = site.issues_by_project.get(p.id, [])
        live = [site.issues[i] for i in ids if not site.issues[i].deleted]
        out["insight"] = {
            "totalIssueCount": len(live),
            "lastIssueUpdateTime": jira_time(max((i.updated for i in live), default=p.created)),
        }
    if "permissions" in expand:
        out["permissions"] = {"canEdit": True}
    if "url" in expand:
        out["url"] = f"{base}/browse/{p.key}"
    return out


ROLES = {"Administrators": 10002, "Developers": 10003, "Viewers": 10004}


def attachment(site: Site, base: str, a: Attachment) -> dict[str, Any]:
    return {
        "self": f"{base}/rest/api/3/attachment/{a.id}",
        "id": str(a.id),
        "filename": a.filename,
        "author": user_ref(site, base, a.author),
        "created": jira_time(a.created),
        "size": a.size,
        "mimeType": a.mime_type,
        "content": f"{base}/rest/api/3/attachment/content/{a.id}",
    }


def comment(site: Site, base: str, issue: Issue, c: dict[str, Any], rendered: bool = False) -> dict[str, Any]:
    out = {
        "self": f"{base}/rest/api/3/issue/{issue.id}/comment/{c['id']}",
        "id": str(c["id"]),
        "author": user_ref(site, base, c["author"]),
        "body": c["body"],
        "updateAuthor": user_ref(site, base, c["author"]),
        "created": jira_time(c["created"]),
        "updated": jira_time(c["updated"]),
        "jsdPublic": True,
    }
    if c.get("visibility"):
        out["visibility"] = c["visibility"]
    if rendered:
        out["renderedBody"] = adf_to_html(c["body"], media_urls(site, base, issue))
    return out


def worklog(site: Site, base: str, issue: Issue, w: dict[str, Any]) -> dict[str, Any]:
    out = {
        "self": f"{base}/rest/api/3/issue/{issue.id}/worklog/{w['id']}",
        "id": str(w["id"]),
        "issueId": str(issue.id),
        "author": user_ref(site, base, w["author"]),
        "updateAuthor": user_ref(site, base, w["author"]),
        "created": jira_time(w["created"]),
        "updated": jira_time(w["updated"]),
        "started": jira_time(w["started"], w.get("started_offset", 0)),
        "timeSpent": seconds_to_duration(w["timeSpentSeconds"]),
        "timeSpentSeconds": w["timeSpentSeconds"],
    }
    if w.get("comment") is not None:
        out["comment"] = w["comment"]
    if w.get("visibility"):
        out["visibility"] = w["visibility"]
    return out


def history(site: Site, base: str, h: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(h["id"]),
        "author": user_ref(site, base, h["author"]),
        "created": jira_time(h["created"]),
        "items": [{k: v for k, v in item.items() if v is not None} for item in h["items"]],
    }


def seconds_to_duration(seconds: int) -> str:
    """Render seconds the way Jira shows time spent: 1d 2h 30m (8h days)."""
    parts = []
    days, rest = divmod(seconds, 8 * 3600)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")):
        if value:
            parts.append(f"{value}{unit}")
    return " ".join(parts) or "0m"


def adf_to_html(doc: Any, media: dict[str, str] | None = None) -> str:
    """Render ADF as simple HTML (what renderedFields carries); media nodes become their attachment's URL.

    `media` maps a media file id to the attachment content URL: Jira's rendered HTML is where a client sees
    which attachment a media node shows.
    """
    if not isinstance(doc, dict):
        return "" if doc is None else str(doc)
    node_type = doc.get("type")
    inner = "".join(adf_to_html(child, media) for child in doc.get("content", []))
    if node_type in ("media", "mediaInline"):
        attrs = doc.get("attrs") or {}
        src = (media or {}).get(str(attrs.get("id")), "")
        alt = str(attrs.get("alt", "")).replace("&", "&amp;").replace('"', "&quot;")
        return f'<img src="{src}" alt="{alt}" data-media-id="{attrs.get("id", "")}">'
    if node_type == "text":
        return str(doc.get("text", "")).replace("&", "&amp;").replace("<", "&lt;")
    if node_type == "mention":
        return (
            f'<a class="user-hover" data-account-id="{doc["attrs"]["id"]}">{doc["attrs"].get("text", "")}</a>'
        )
    tag = {
        "paragraph": "p",
        "bulletList": "ul",
        "listItem": "li",
        "table": "table",
        "tableRow": "tr",
        "tableHeader": "th",
        "tableCell": "td",
        "codeBlock": "pre",
    }.get(str(node_type))
    return f"<{tag}>{inner}</{tag}>" if tag else inner


def may_see(site: Site, project: Project, visibility: dict[str, Any] | None) -> bool:
    """Whether the caller of this request sees a comment or worklog restricted to a role or a group.

    A group restriction shows it to the group's members; a role restriction to the role's members: the
    site admin and the project lead are in every role of a project, others as the site file lists them.
    """
    if not visibility:
        return True
    from flask import g, has_request_context

    me = g.get("user") if has_request_context() else None
    if me is None:
        return True
    if visibility.get("type") == "group":
        return visibility.get("value") in me.groups
    if "jira-administrators" in me.groups or me.account_id == project.lead:
        return True
    return me.account_id in project.roles.get(str(visibility.get("value")), set())


def visible(site: Site, issue: Issue, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comments or worklogs of an issue that the caller may see."""
    project = site.projects[issue.project_id]
    if not any(item.get("visibility") for item in items):
        return items
    return [item for item in items if may_see(site, project, item.get("visibility"))]


def media_urls(site: Site, base: str, issue: Issue) -> dict[str, str]:
    """Media file id -> attachment content URL, for the attachments of one issue."""
    out = {}
    for attachment_id in site.attachments_by_issue.get(issue.id, []):
        a = site.attachments[attachment_id]
        if a.media_id and not a.deleted:
            out[a.media_id] = f"{base}/rest/api/3/attachment/content/{a.id}"
    return out


INLINE_COMMENTS = 20
INLINE_WORKLOGS = 20
INLINE_CHANGELOG = 40


def issue_link(site: Site, base: str, issue: Issue, link_id: int) -> dict[str, Any] | None:
    link = site.links[link_id]
    other_id = link.outward_id if link.inward_id == issue.id else link.inward_id
    other = site.issues.get(other_id)
    if other is None or other.deleted or site.projects[other.project_id].deleted:
        return None
    t = site.link_type(link.type_id)
    out = {
        "id": str(link.id),
        "self": f"{base}/rest/api/3/issueLink/{link.id}",
        "type": {
            "id": t["id"],
            "name": t["name"],
            "inward": t["inward"],
            "outward": t["outward"],
            "self": f"{base}/rest/api/3/issueLinkType/{t['id']}",
        },
    }
    # Seen from `issue`: the link's inward issue shows the outward one and the other way round.
    side = "outwardIssue" if link.inward_id == issue.id else "inwardIssue"
    out[side] = issue_stub(site, base, other)
    return out


def issue_stub(site: Site, base: str, issue: Issue) -> dict[str, Any]:
    fields = issue_content(site, issue)["fields"]
    return {
        "id": str(issue.id),
        "key": issue.key,
        "self": f"{base}/rest/api/3/issue/{issue.id}",
        "fields": {
            "summary": fields["summary"],
            "status": status(base, fields["status"]),
            "priority": priority(base, fields["priority"]),
            "issuetype": issue_type(base, issue.type_id),
        },
    }


def custom_value(site: Site, base: str, field_id: str, value: Any) -> Any:
    """Render one stored custom field value in Jira's shape."""
    if value is None:
        return None
    definition = site.custom_fields[field_id]
    kind = definition["kind"]
    if kind in ("select", "multiselect"):
        options = {o["id"]: o for o in definition["options"]}

        def opt(option_id: str) -> dict[str, Any]:
            o = options.get(option_id, {"id": option_id, "value": option_id})
            return {
                "self": f"{base}/rest/api/3/customFieldOption/{o['id']}",
                "value": o["value"],
                "id": o["id"],
            }

        return [opt(v) for v in value] if kind == "multiselect" else opt(value)
    if kind == "cascading":
        parent_id, child_id = value[0], value[1] if len(value) > 1 else None
        parent = next((o for o in definition["options"] if o["id"] == parent_id), None)
        parent = parent or {"id": parent_id, "value": parent_id, "children": []}
        out = {"self": f"{base}/rest/api/3/customFieldOption/{parent['id']}", "value": parent["value"]}
        out["id"] = parent["id"]
        if child_id is not None:
            child = next((c for c in parent.get("children") or [] if c["id"] == child_id), None)
            child = child or {"id": child_id, "value": child_id}
            out["child"] = {
                "self": f"{base}/rest/api/3/customFieldOption/{child['id']}",
                "value": child["value"],
                "id": child["id"],
            }
        return out
    if kind in ("group", "multigroup"):

        def group(name: str) -> dict[str, Any]:
            import uuid

            group_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"group:{name}"))
            return {"name": name, "groupId": group_id, "self": f"{base}/rest/api/3/group?groupId={group_id}"}

        return [group(v) for v in value] if kind == "multigroup" else group(value)
    if kind in ("version", "multiversion"):
        found = []
        for vid in value if kind == "multiversion" else [value]:
            for p in site.projects.values():
                v = next((v for v in p.versions if v["id"] == vid), None)
                if v is not None:
                    found.append(version(base, p, v))
                    break
        return found if kind == "multiversion" else (found[0] if found else None)
    if kind == "project":
        p = site.projects.get(value)
        if p is None:
            return None
        return {
            "self": f"{base}/rest/api/3/project/{p.id}",
            "id": str(p.id),
            "key": p.key,
            "name": p.name,
            "projectTypeKey": p.type_key,
            "simplified": False,
            "avatarUrls": avatar_urls(base, "project", str(p.id)),
        }
    if kind == "user":
        return user_ref(site, base, value)
    if kind == "multiuser":
        return [user_ref(site, base, v) for v in value]
    if kind == "sprint":
        sprints = {s["id"]: s for s in site.sprints}
        return [
            {
                "id": sid,
                "name": sprints[sid]["name"],
                "state": sprints[sid]["state"],
                "boardId": sprints[sid]["board_id"],
                "goal": sprints[sid]["goal"],
                "startDate": jira_time(sprints[sid]["startDate"]),
                "endDate": jira_time(sprints[sid]["endDate"]),
            }
            for sid in value
            if sid in sprints
        ]
    return value


def issue_fields(site: Site, base: str, issue: Issue) -> dict[str, Any]:
    """Render every field of an issue (what fields=*all gives)."""
    content = issue_content(site, issue)
    f = content["fields"]
    project_obj = site.projects[issue.project_id]
    comps = {c["id"]: c for c in project_obj.components}
    vers = {v["id"]: v for v in project_obj.versions}
    comments = visible(site, issue, content["comments"])
    worklogs = visible(site, issue, content["worklogs"])
    out: dict[str, Any] = {
        "summary": f["summary"],
        "description": f["description"],
        "environment": f.get("environment"),
        "issuetype": issue_type(base, issue.type_id),
        "project": {
            "self": f"{base}/rest/api/3/project/{project_obj.id}",
            "id": str(project_obj.id),
            "key": project_obj.key,
            "name": project_obj.name,
            "projectTypeKey": project_obj.type_key,
            "simplified": False,
            "avatarUrls": avatar_urls(base, "project", str(project_obj.id)),
        },
        "status": status(base, f["status"]),
        "priority": priority(base, f["priority"]),
        "resolution": resolution(base, f["resolution"]),
        "resolutiondate": jira_time(f.get("resolutiondate")),
        "labels": list(f["labels"]),
        "components": [component(base, project_obj, comps[c]) for c in f["components"] if c in comps],
        "fixVersions": [version(base, project_obj, vers[v]) for v in f["fixVersions"] if v in vers],
        "versions": [version(base, project_obj, vers[v]) for v in f["versions"] if v in vers],
        "assignee": user_ref(site, base, f["assignee"]),
        "reporter": user_ref(site, base, f["reporter"]),
        "creator": user_ref(site, base, f["creator"]),
        "created": jira_time(issue.created),
        "updated": jira_time(issue.updated),
        "statuscategorychangedate": jira_time(issue.updated),
        "duedate": f.get("duedate"),
        "timetracking": (
            {
                "originalEstimate": seconds_to_duration(f["timeoriginalestimate"]),
                "originalEstimateSeconds": f["timeoriginalestimate"],
            }
            if f.get("timeoriginalestimate")
            else {}
        ),
        "issuelinks": [
            x
            for x in (issue_link(site, base, issue, lid) for lid in site.links_by_issue.get(issue.id, []))
            if x
        ],
        "subtasks": [
            issue_stub(site, base, site.issues[c])
            for c in site.children.get(issue.id, [])
            if not site.issues[c].deleted and site.issues[c].type_id == catalog.SUBTASK
        ],
        "attachment": [
            attachment(site, base, site.attachments[a])
            for a in site.attachments_by_issue.get(issue.id, [])
            if not site.attachments[a].deleted
        ],
        "comment": {
            "comments": [comment(site, base, issue, c) for c in comments[:INLINE_COMMENTS]],
            "self": f"{base}/rest/api/3/issue/{issue.id}/comment",
            "maxResults": INLINE_COMMENTS,
            "total": len(comments),
            "startAt": 0,
        },
        "worklog": {
            "startAt": 0,
            "maxResults": INLINE_WORKLOGS,
            "total": len(worklogs),
            "worklogs": [worklog(site, base, issue, w) for w in worklogs[:INLINE_WORKLOGS]],
        },
        "watches": {
            "self": f"{base}/rest/api/3/issue/{issue.key}/watchers",
            "watchCount": len(content["watchers"]),
            "isWatching": False,
        },
        "votes": {
            "self": f"{base}/rest/api/3/issue/{issue.key}/votes",
            "votes": len(content["votes"]),
            "hasVoted": False,
        },
    }
    if (
        issue.parent_id is not None
        and issue.parent_id in site.issues
        and not site.issues[issue.parent_id].deleted
    ):
        out["parent"] = issue_stub(site, base, site.issues[issue.parent_id])
    for fid in site.custom_fields:
        out[fid] = custom_value(site, base, fid, f["custom"].get(fid))
    return out


def select_fields(all_fields: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    """Apply a `fields` parameter: *all, *navigable, names, and -name exclusions."""
    if not wanted:
        wanted = ["*navigable"]
    include: set[str] = set()
    exclude = {w[1:] for w in wanted if w.startswith("-")}
    for w in wanted:
        if w == "*all":
            include |= set(all_fields)
        elif w == "*navigable":
            include |= set(all_fields) - catalog.NAVIGABLE_SKIP
        elif not w.startswith("-"):
            include.add(w)
    return {k: all_fields[k] for k in all_fields if k in include and k not in exclude}


CHEAP_FIELDS = {"id", "key", "updated", "created", "issuetype", "project"}


def cheap_field(site: Site, base: str, issue: Issue, name: str) -> Any:
    """Render a field that the compact record alone holds."""
    if name == "updated":
        return jira_time(issue.updated)
    if name == "created":
        return jira_time(issue.created)
    if name == "issuetype":
        return issue_type(base, issue.type_id)
    p = site.projects[issue.project_id]
    return {
        "self": f"{base}/rest/api/3/project/{p.id}",
        "id": str(p.id),
        "key": p.key,
        "name": p.name,
        "projectTypeKey": p.type_key,
        "simplified": False,
        "avatarUrls": avatar_urls(base, "project", str(p.id)),
    }


def issue_bean(
    site: Site, base: str, issue: Issue, fields: list[str] | None, expand: set[str]
) -> dict[str, Any]:
    """Render an IssueBean with the requested fields and expansions."""
    out: dict[str, Any] = {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": str(issue.id),
        "self": f"{base}/rest/api/3/issue/{issue.id}",
        "key": issue.key,
    }
    if fields and set(fields) <= {"id", "key"}:
        return out
    if fields and set(fields) <= CHEAP_FIELDS and not expand:
        # Listing pages ask for a few record fields; answer them without generating the content.
        out["fields"] = {f: cheap_field(site, base, issue, f) for f in fields if f not in ("id", "key")}
        return out
    all_fields = issue_fields(site, base, issue)
    out["fields"] = select_fields(all_fields, fields)
    if "renderedFields" in expand:
        out["renderedFields"] = {
            k: (adf_to_html(v, media_urls(site, base, issue)) if k in ("description", "environment") else v)
            for k, v in out["fields"].items()
            if k in ("description", "environment", "created", "updated")
        }
    if "names" in expand:
        out["names"] = {k: catalog.FIELD_NAMES.get(k, k) for k in out["fields"]}
    if "changelog" in expand:
        histories = issue_content(site, issue)["changelog"]
        out["changelog"] = {
            "startAt": 0,
            "maxResults": min(len(histories), INLINE_CHANGELOG),
            "total": len(histories),
            "histories": [history(site, base, h) for h in histories[:INLINE_CHANGELOG]],
        }
    return out
