"""The test-only admin API under /_sandbox/: reset, mutate, delete, faults, statistics, the site's keys.

No auth: it exists for tests and benchmarks on 127.0.0.1 and is not part of Jira's API.
"""

from __future__ import annotations

import random

from flask import Blueprint, Response, jsonify, request

from sandbox import render
from sandbox.generate import attachment_sha256, materialise, real_size
from sandbox.web import JiraHTTPError, site, state

bp = Blueprint("sandbox_admin", __name__, url_prefix="/_sandbox")


@bp.errorhandler(JiraHTTPError)
def _error(e: JiraHTTPError):
    return e.response()


@bp.post("/reset")
def reset():
    s = state()
    from sandbox.app import load_site

    s.site = load_site(s.config)
    s.faults.clear()
    s.stats.reset()
    return jsonify({"cloudId": s.site.cloud_id, "issues": len(s.site.issues)})


@bp.post("/mutate")
def mutate():
    """Change a share of live issues (summary, a label, a comment), as a day of work would."""
    body = request.get_json(silent=True) or {}
    share = float(body.get("share", 0.01))
    rng = random.Random(body.get("seed", 1))
    s = site()
    live = [i for i in s.issues.values() if not i.deleted and not s.projects[i.project_id].deleted]
    if body.get("project"):
        live = [i for i in live if s.projects[i.project_id].key == str(body["project"]).upper()]
    count = max(1, round(len(live) * share)) if live and share > 0 else 0
    chosen = sorted(rng.sample(live, min(count, len(live))), key=lambda i: i.id)
    now = render.now_ms()
    with s.lock:
        for issue in chosen:
            content = materialise(s, issue)
            content["fields"]["summary"] = content["fields"]["summary"] + " (edited)"
            content["fields"]["labels"] = sorted({*content["fields"]["labels"], "mutated"})
            content["comments"].append(
                {
                    "id": s.next_id("comments", 900_000_000),
                    "author": issue_author(content),
                    "body": {
                        "type": "doc",
                        "version": 1,
                        "content": [
                            {
                                "type": "paragraph",
                                "content": [{"type": "text", "text": "Followed up after the change."}],
                            }
                        ],
                    },
                    "created": now,
                    "updated": now,
                }
            )
            issue.updated = now
    return jsonify({"changed": [i.key for i in chosen]})


def issue_author(content: dict) -> str:
    return content["fields"]["reporter"]


@bp.post("/delete")
def delete():
    """Delete issues by key, or a whole project: the disaster a restore answers."""
    body = request.get_json(silent=True) or {}
    s = site()
    deleted = []
    with s.lock:
        if body.get("project"):
            project = s.project_by_key(str(body["project"]))
            if project is None:
                raise JiraHTTPError(404, f"No project could be found with key '{body['project']}'.")
            project.deleted = True
            deleted.append(project.key)
        for key in body.get("issues") or []:
            issue = s.issue(str(key))
            if issue is not None:
                issue.deleted = True
                s.issue_by_key.pop(issue.key, None)
                deleted.append(issue.key)
    return jsonify({"deleted": deleted})


@bp.post("/faults")
def faults_add():
    body = request.get_json(silent=True) or {}
    if "path" not in body:
        raise JiraHTTPError(400, "A fault needs a 'path' regular expression.")
    state().faults.add(
        str(body["path"]),
        int(body.get("status", 500)),
        int(body.get("count", 1)),
        body.get("retry_after"),
        body.get("method"),
    )
    return jsonify({"ok": True})


@bp.delete("/faults")
def faults_clear():
    state().faults.clear()
    return Response(status=204)


@bp.get("/stats")
def stats():
    return jsonify(state().stats.snapshot())


@bp.post("/stats/reset")
def stats_reset():
    state().stats.reset()
    return Response(status=204)


@bp.get("/site")
def site_keys():
    s = site()
    projects = []
    for p in s.projects.values():
        if p.deleted:
            continue
        keys = [s.issues[i].key for i in s.issues_by_project.get(p.id, []) if not s.issues[i].deleted]
        projects.append(
            {"key": p.key, "id": p.id, "name": p.name, "issues": keys, "hiddenFrom": sorted(p.hidden_from)}
        )
    return jsonify(
        {
            "cloudId": s.cloud_id,
            "projects": projects,
            "users": [
                {"accountId": u.account_id, "email": u.email, "displayName": u.display_name}
                for u in s.users.values()
            ],
        }
    )


@bp.get("/attachments")
def attachments():
    """Every attachment with its issue, announced size, real size and corruption (sha256 with ?sha=1)."""
    s = site()
    with_sha = request.args.get("sha") == "1"
    out = []
    for a in s.attachments.values():
        if a.deleted:
            continue
        issue = s.issues[a.issue_id]
        item = {
            "id": str(a.id),
            "issue": issue.key,
            "filename": a.filename,
            "size": a.size,
            "realSize": real_size(a),
            "corrupt": a.corrupt,
            "mediaId": a.media_id,
        }
        if with_sha and a.corrupt is None:
            item["sha256"] = attachment_sha256(s, a)
        out.append(item)
    return jsonify(out)
