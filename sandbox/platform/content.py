"""What hangs off an issue in pages: comments, worklogs, changelog, and attachments (metadata and bytes)."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request, stream_with_context

from sandbox import render
from sandbox.generate import attachment_bytes, issue_content, materialise, real_size
from sandbox.model import Attachment
from sandbox.v2 import api_version
from sandbox.web import (
    JiraHTTPError,
    base,
    caller,
    decode_token,
    encode_token,
    int_arg,
    issue_or_404,
    json_body,
    page_bean,
    site,
)
from sandbox.wiki import wiki_to_adf

bp = Blueprint("platform_content", __name__, url_prefix="/rest/api/3")
media = Blueprint("media", __name__)
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and isinstance(value.get("content"), list)


DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([wdhm])\s*")
UNIT_SECONDS = {"w": 5 * 8 * 3600, "d": 8 * 3600, "h": 3600, "m": 60}


def parse_duration(text: Any) -> int | None:
    """Seconds in a Jira duration ("1h 30m", "2d", "1.5h"; 8-hour days, 5-day weeks), None if not one."""
    if not isinstance(text, str) or not text.strip():
        return None
    total, pos = 0.0, 0
    while pos < len(text):
        m = DURATION.match(text, pos)
        if not m:
            return None
        total += float(m.group(1)) * UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return round(total)


def parse_jira_time(text: str) -> tuple[int, int] | None:
    """(epoch ms, UTC offset in minutes) of 2024-03-01T09:00:00.000+0100, or None when it is not one."""
    from datetime import datetime

    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            moment = datetime.strptime(text, fmt)
        except ValueError:
            continue
        offset = moment.utcoffset()
        return int(moment.timestamp() * 1000), int(offset.total_seconds() // 60) if offset else 0
    return None


def _visibility(value: Any) -> dict[str, str] | None:
    """A comment's or worklog's visibility: {"type": "role"|"group", "value": name}."""
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or value.get("type") not in ("role", "group")
        or not isinstance(value.get("value") or value.get("identifier"), str)
    ):
        raise JiraHTTPError(400, [], {"visibility": "Visibility must name a role or a group."})
    if value["type"] == "role" and value.get("value") not in render.ROLES:
        raise JiraHTTPError(400, [], {"visibility": f"Role '{value.get('value')}' does not exist."})
    name = str(value.get("value") or value.get("identifier"))
    if value["type"] == "group" and not any(name in u.groups for u in site().users.values()):
        raise JiraHTTPError(400, [], {"visibility": f"Group: {name} does not exist."})
    return {"type": value["type"], "value": str(value.get("value") or value.get("identifier"))}


@bp.get("/issue/<key>/comment")
def comments(key: str):
    issue = issue_or_404(key)
    items = list(render.visible(site(), issue, issue_content(site(), issue)["comments"]))
    if request.args.get("orderBy", "created").lstrip("+") == "-created":
        items.reverse()
    start, limit = int_arg("startAt", 0), int_arg("maxResults", 100, 0, 100)
    rendered = "renderedBody" in request.args.get("expand", "")
    page = [render.comment(site(), base(), issue, c, rendered) for c in items[start : start + limit]]
    return jsonify({"startAt": start, "maxResults": limit, "total": len(items), "comments": page})


@bp.get("/issue/<key>/comment/<int:comment_id>")
def comment_get(key: str, comment_id: int):
    issue = issue_or_404(key)
    for c in render.visible(site(), issue, issue_content(site(), issue)["comments"]):
        if c["id"] == comment_id:
            return jsonify(
                render.comment(site(), base(), issue, c, "renderedBody" in request.args.get("expand", ""))
            )
    raise JiraHTTPError(404, "Can not find a comment for the id: " + str(comment_id) + ".")


@bp.post("/issue/<key>/comment")
def comment_add(key: str):
    issue = issue_or_404(key)
    body = json_body()
    text = body.get("body")
    if api_version() == 2 and isinstance(text, str) and text.strip():
        text = wiki_to_adf(text)
    if not _is_adf(text):
        message = "Comment body can not be empty!" + (
            "" if api_version() == 2 else " It must be an Atlassian Document."
        )
        raise JiraHTTPError(400, [], {"comment": message})
    visibility = _visibility(body.get("visibility"))
    now = render.now_ms()
    with site().lock:
        c = {
            "id": site().next_id("comments", 900_000_000),
            "author": caller().account_id,
            "body": text,
            "created": now,
            "updated": now,
            "visibility": visibility,
        }
        materialise(site(), issue)["comments"].append(c)
        issue.updated = now
    return jsonify(render.comment(site(), base(), issue, c)), 201


def _items_by_id(part: str, raw_ids: Any) -> list[tuple[Any, dict[str, Any]]]:
    """(issue, item) for comment or worklog ids, without generating every issue of the site.

    Generated items are numbered issue id * 1000 + n; items written later live on materialised issues.
    """
    if not isinstance(raw_ids, list) or not all(
        isinstance(i, int | str) and str(i).isdigit() for i in raw_ids
    ):
        raise JiraHTTPError(400, "ids must be a list of numeric ids.")
    if len(raw_ids) > 1000:
        raise JiraHTTPError(400, f"At most 1000 {part} ids may be requested at once.")
    ids = {int(i) for i in raw_ids}
    s = site()
    candidates = {i // 1000 for i in ids if i // 1000 in s.issues}
    candidates |= {issue.id for issue in s.issues.values() if issue.content is not None}
    found = []
    for issue_id in sorted(candidates):
        issue = s.issues[issue_id]
        if not issue.deleted:
            items = render.visible(s, issue, issue_content(s, issue)[part])
            found += [(issue, item) for item in items if item["id"] in ids]
    return found


@bp.post("/comment/list")
def comment_list():
    found = [
        render.comment(site(), base(), issue, c)
        for issue, c in _items_by_id("comments", json_body().get("ids"))
    ]
    return jsonify({"startAt": 0, "maxResults": 1000, "total": len(found), "isLast": True, "values": found})


@bp.get("/issue/<key>/worklog")
def worklogs(key: str):
    issue = issue_or_404(key)
    items = render.visible(site(), issue, issue_content(site(), issue)["worklogs"])
    start, limit = int_arg("startAt", 0), int_arg("maxResults", 5000, 0, 5000)
    return jsonify(
        {
            "startAt": start,
            "maxResults": limit,
            "total": len(items),
            "worklogs": [render.worklog(site(), base(), issue, w) for w in items[start : start + limit]],
        }
    )


@bp.post("/issue/<key>/worklog")
def worklog_add(key: str):
    issue = issue_or_404(key)
    body = json_body()
    seconds = body.get("timeSpentSeconds")
    if seconds is None and body.get("timeSpent") is not None:
        # Jira takes the duration as typed ("1h 30m", "2d", "1w 1d") when timeSpentSeconds is absent.
        seconds = parse_duration(body["timeSpent"])
        if seconds is None:
            raise JiraHTTPError(400, [], {"timeLogged": "Invalid time duration entered."})
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
        raise JiraHTTPError(
            400, [], {"timeLogged": "You must indicate the time spent working (timeSpentSeconds > 0)."}
        )
    started, offset = render.now_ms(), 0
    if body.get("started"):
        parsed = parse_jira_time(str(body["started"]))
        if parsed is None:
            raise JiraHTTPError(400, [], {"started": "Invalid date format. Use yyyy-MM-dd'T'HH:mm:ss.SSSZ."})
        started, offset = parsed
    comment = body.get("comment")
    if comment is not None:
        if api_version() == 2 and isinstance(comment, str):
            comment = wiki_to_adf(comment)
        elif not _is_adf(comment):
            raise JiraHTTPError(400, [], {"comment": "Worklog comment must be an Atlassian Document."})
    visibility = _visibility(body.get("visibility"))
    now = render.now_ms()
    with site().lock:
        w = {
            "id": site().next_id("worklogs", 900_000_000),
            "author": caller().account_id,
            "started": started,
            "started_offset": offset,
            "created": now,
            "updated": now,
            "timeSpentSeconds": seconds,
            "comment": comment,
            "visibility": visibility,
        }
        materialise(site(), issue)["worklogs"].append(w)
        issue.updated = now
    return jsonify(render.worklog(site(), base(), issue, w)), 201


@bp.get("/worklog/updated")
def worklogs_updated():
    since = int_arg("since", 0)
    values = []
    for issue in site().issues.values():
        if issue.deleted or issue.updated < since:
            continue
        for w in issue_content(site(), issue)["worklogs"]:
            if w["updated"] >= since:
                values.append({"worklogId": w["id"], "updatedTime": w["updated"], "properties": []})
    values.sort(key=lambda v: v["updatedTime"])
    page = values[:1000]
    last = len(values) <= 1000
    out = {
        "values": page,
        "since": since,
        "until": page[-1]["updatedTime"] if page else since,
        "self": f"{base()}/rest/api/3/worklog/updated?since={since}",
        "lastPage": last,
    }
    if not last:
        out["nextPage"] = f"{base()}/rest/api/3/worklog/updated?since={page[-1]['updatedTime']}"
    return jsonify(out)


@bp.post("/worklog/list")
def worklog_list():
    return jsonify(
        [
            render.worklog(site(), base(), issue, w)
            for issue, w in _items_by_id("worklogs", json_body().get("ids"))
        ]
    )


@bp.get("/issue/<key>/changelog")
def changelog(key: str):
    issue = issue_or_404(key)
    histories = issue_content(site(), issue)["changelog"]
    start, limit = int_arg("startAt", 0), int_arg("maxResults", 100, 0, 100)
    out = page_bean(histories, start, limit, f"/rest/api/3/issue/{issue.key}/changelog")
    out["values"] = [render.history(site(), base(), h) for h in out["values"]]
    return jsonify(out)


@bp.post("/changelog/bulkfetch")
def changelog_bulkfetch():
    body = json_body()
    ids = body.get("issueIdsOrKeys")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 1000:
        raise JiraHTTPError(400, "issueIdsOrKeys must list between 1 and 1000 issues.")
    field_ids = body.get("fieldIds") or []
    if len(field_ids) > 10:
        raise JiraHTTPError(400, "At most 10 fieldIds may be given.")
    limit = max(1, min(int(body.get("maxResults") or 1000), 10000))
    offset = decode_token(body["nextPageToken"]).get("o", 0) if body.get("nextPageToken") else 0
    # Flatten every (issue, history) pair in request order, then cut a page of `limit` histories.
    pairs: list[tuple[Any, dict[str, Any]]] = []
    for ident in ids:
        issue = site().issue(str(ident))
        if issue is None or caller().account_id in site().projects[issue.project_id].hidden_from:
            continue
        for h in issue_content(site(), issue)["changelog"]:
            if field_ids and not any(item.get("fieldId") in field_ids for item in h["items"]):
                continue
            pairs.append((issue, h))
    page = pairs[offset : offset + limit]
    grouped: dict[int, dict[str, Any]] = {}
    for issue, h in page:
        grouped.setdefault(issue.id, {"issueId": str(issue.id), "changeHistories": []})[
            "changeHistories"
        ].append(render.history(site(), base(), h))
    out: dict[str, Any] = {"issueChangeLogs": list(grouped.values())}
    if offset + limit < len(pairs):
        out["nextPageToken"] = encode_token({"o": offset + limit})
    return jsonify(out)


# --- attachments ---------------------------------------------------------------------------------------


def _attachment_or_404(attachment_id: int) -> Attachment:
    a = site().attachments.get(attachment_id)
    if a is None or a.deleted:
        raise JiraHTTPError(404, f"The attachment with id '{attachment_id}' does not exist.")
    issue_or_404(str(a.issue_id))
    return a


@bp.get("/attachment/<int:attachment_id>")
def attachment_meta(attachment_id: int):
    meta = render.attachment(site(), base(), _attachment_or_404(attachment_id))
    meta["id"] = int(meta["id"])  # AttachmentMetadata has a numeric id, the issue field a string one
    return jsonify(meta)


@bp.delete("/attachment/<int:attachment_id>")
def attachment_delete(attachment_id: int):
    _attachment_or_404(attachment_id).deleted = True
    return Response(status=204)


@bp.get("/attachment/meta")
def attachment_settings():
    return jsonify({"enabled": True, "uploadLimit": 1_073_741_824})


def _media_signature(ident: str) -> str:
    return hmac.new(site().cloud_id.encode(), ident.encode(), hashlib.sha256).hexdigest()[:32]


@bp.get("/attachment/content/<int:attachment_id>")
def attachment_content(attachment_id: int):
    a = _attachment_or_404(attachment_id)
    if request.args.get("redirect", "true").lower() != "false":
        # Jira sends the browser to a signed media URL named by the media file id (what ADF media nodes
        # name); clients that follow redirects get the bytes there.
        ident = a.media_id or str(a.id)
        location = f"{base()}/_media/file/{ident}/binary?token={_media_signature(ident)}"
        return Response(status=303, headers={"Location": location})
    return _stream(a)


@media.get("/_media/file/<ident>")
@media.get("/_media/file/<ident>/binary")
def media_file(ident: str):
    if ident.isdigit():
        a = site().attachments.get(int(ident))
    else:
        a = next((x for x in site().attachments.values() if x.media_id == ident), None)
    if (
        a is None
        or a.deleted
        or not hmac.compare_digest(request.args.get("token", ""), _media_signature(ident))
    ):
        return jsonify({"error": "The media token is missing, invalid or expired."}), 401
    return _stream(a)


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback `filename` and the exact name as UTF-8 in `filename*` (RFC 5987)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _stream(a: Attachment) -> Response:
    if a.corrupt == "error":
        raise JiraHTTPError(500, "Internal server error while reading the attachment from the media store.")
    size = real_size(a)
    start, end, status = 0, size, 200
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": a.mime_type,
        "Content-Disposition": content_disposition(a.filename),
    }
    if rng := request.headers.get("Range"):
        m = RANGE.match(rng.strip())
        if not m or (m.group(1) == "" and m.group(2) == ""):
            return Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        if m.group(1) == "":
            start = max(0, size - int(m.group(2)))
        else:
            start = int(m.group(1))
            end = min(size, int(m.group(2)) + 1) if m.group(2) else size
        if start >= size or start >= end:
            return Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    s = site()
    if a.corrupt == "truncated":
        # Announce the full length but stop half way, as a broken media store does.
        cut = start + (end - start) // 2
        body = attachment_bytes(s, a, start, cut)
    else:
        body = attachment_bytes(s, a, start, end)
    return Response(stream_with_context(body), status=status, headers=headers, direct_passthrough=True)


@bp.post("/issue/<key>/attachments")
def attachment_upload(key: str):
    issue = issue_or_404(key)
    if request.headers.get("X-Atlassian-Token", "").lower() != "no-check":
        raise JiraHTTPError(403, "XSRF check failed")
    files = request.files.getlist("file")
    if not files:
        raise JiraHTTPError(400, "No file was sent: send the file in a multipart field named 'file'.")
    out = []
    now = render.now_ms()
    for f in files:
        data = f.read()
        a = Attachment(
            id=site().next_id("attachments", 900_000_000),
            issue_id=issue.id,
            filename=f.filename or "file",
            mime_type=f.mimetype or "application/octet-stream",
            size=len(data),
            created=now,
            author=caller().account_id,
            data=data,
        )
        a.media_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{site().cloud_id}/attachment/{a.id}"))
        site().add_attachment(a)
        out.append(render.attachment(site(), base(), a))
    issue.updated = now
    return jsonify(out)
