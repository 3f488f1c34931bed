"""The fidelity report: how closely the restored issues match the backup, item by item.

Fields are compared by meaning (users by accountId, options by value, versions by name, parents and links
through the key mapping); fields Jira does not let a client set are counted apart as API limits.
"""

from __future__ import annotations

import hashlib
from typing import Any

from backend.jira import JiraClient, JiraNotFound
from backend.repository import Repository
from backend.restore.config_objects import Backup, wanted
from backend.restore.configuration_report import compare_configuration
from backend.restore.execute import NOTE_ID, RestoreResult, _first_text, media_refs
from backend.restore.mapping import (
    ATTACHMENTS_PROPERTY,
    HANDLED_ELSEWHERE,
    LOST_BY_API,
    marker_label,
    strip_note,
)
from backend.restore.plan import RestorePlan


def _norm(value: Any) -> Any:
    if isinstance(value, list):
        return sorted((_norm(v) for v in value), key=repr)
    if isinstance(value, dict):
        if value.get("type") == "doc":
            return _without_media(value)  # media ids must change with the attachments; `_media` checks them
        for key in ("accountId", "value", "name", "key"):
            if key in value:
                return value[key]
        if "id" in value:
            return value["id"]
    return value


def fidelity_report(
    client: JiraClient, repo: Repository, plan: RestorePlan, result: RestoreResult
) -> dict[str, Any]:
    """Compare every restored issue with its backup; return counts and the differences found."""
    report: dict[str, Any] = {
        "issues": 0,
        "fields": {"compared": 0, "identical": 0, "changed": [], "lost": [], "api_limited": 0},
        "status": {"identical": 0, "changed": []},
        "resolution": {"identical": 0, "changed": []},
        "visibility": {"identical": 0, "changed": []},
        "media": {"identical": 0, "changed": []},
        "hierarchy": {"identical": 0, "changed": []},
        "links": {"identical": 0, "changed": [], "outside": 0},
        "comments": {"backed_up": 0, "identical": 0, "missing": []},
        "worklogs": {"backed_up": 0, "identical": 0, "missing": []},
        "attachments": {"backed_up": 0, "byte_identical": 0, "missing": []},
        "not_compared": [
            "comment and worklog authors and creation times (Jira sets them; kept in the origin note)",
            "attachment authors and upload times (Jira sets them; kept in the keepstone.attachments property)",
            "issue keys, ids, creators and created/updated times (kept in the keepstone.restore property)",
            "changelog (Jira writes its own; the backed-up one is kept in the keepstone.changelog property)",
        ],
        "api_limits": sorted(
            LOST_BY_API | {"key", "id", "author of comments/worklogs/attachments", "creation times"}
        ),
    }
    entries = plan.snapshot.entries
    mapping = result.mapping
    for p in plan.issues:
        new_key = mapping.get(p.key)
        if new_key is None or (
            new_key == p.key and plan.request.target == "original" and not plan.request.overwrite
        ):
            continue
        report["issues"] += 1
        restored = client.get_json(f"/rest/api/3/issue/{new_key}", fields="*all")
        old_f, new_f = p.doc.get("fields") or {}, restored.get("fields") or {}
        for name, old in old_f.items():
            if name in HANDLED_ELSEWHERE:
                continue
            if name in LOST_BY_API:
                report["fields"]["api_limited"] += 1
                continue
            new = new_f.get(name)
            if name == "labels":
                new = [x for x in new or [] if x != marker_label(p.key)]
            report["fields"]["compared"] += 1
            if _norm(old) == _norm(new):
                report["fields"]["identical"] += 1
            elif new in (None, [], "") and old not in (None, [], ""):
                report["fields"]["lost"].append(f"{p.key}.{name}")
            else:
                report["fields"]["changed"].append(f"{p.key}.{name}")
        old_status = (old_f.get("status") or {}).get("name")
        if old_status == (new_f.get("status") or {}).get("name"):
            report["status"]["identical"] += 1
        else:
            report["status"]["changed"].append(p.key)
        if _norm(old_f.get("resolution")) == _norm(new_f.get("resolution")):
            report["resolution"]["identical"] += 1
        else:
            report["resolution"]["changed"].append(p.key)
        old_parent = (old_f.get("parent") or {}).get("key")
        new_parent = (new_f.get("parent") or {}).get("key")
        if mapping.get(old_parent, old_parent) == new_parent:
            report["hierarchy"]["identical"] += 1
        else:
            report["hierarchy"]["changed"].append(p.key)
        ends = {**result.outside, **mapping}
        _links(report, p.key, old_f, new_f, ends)
        _comments(report, client, repo, entries, p.key, new_key)
        media = _attachments(report, client, repo, entries, p.key, new_key, new_f)
        _media(report, client, repo, entries, p.key, new_key, old_f, new_f, media)
    compared = report["fields"]["compared"]
    report["fields"]["identical_share"] = (
        round(report["fields"]["identical"] / compared, 4) if compared else 1.0
    )
    if wanted(plan.request) and result.target_project:
        _configuration(client, repo, plan, result, report)
    return report


def _link_set(fields: dict[str, Any], own: str, mapping: dict[str, str] | None) -> set[tuple[str, str, str]]:
    out = set()
    for link in fields.get("issuelinks") or []:
        if "outwardIssue" in link:
            pair = (own, link["outwardIssue"]["key"])
        else:
            pair = (link["inwardIssue"]["key"], own)
        if mapping is not None:
            pair = (mapping.get(pair[0], pair[0]), mapping.get(pair[1], pair[1]))
        out.add((link["type"]["name"], *pair))
    return out


def _links(report: dict[str, Any], key: str, old_f: dict, new_f: dict, ends: dict[str, str]) -> None:
    """Every backed-up link whose other end was restored or is still in the site must be there."""
    new_key = ends[key]
    expected = {t for t in _link_set(old_f, key, ends) if t[1] in ends.values() and t[2] in ends.values()}
    report["links"]["outside"] += sum(
        1
        for t in _link_set(old_f, key, None)
        if (t[1] != key and t[1] not in ends) or (t[2] != key and t[2] not in ends)
    )
    if expected <= _link_set(new_f, new_key, None):
        report["links"]["identical"] += 1
    else:
        report["links"]["changed"].append(key)


def _comments(
    report: dict[str, Any], client: JiraClient, repo: Repository, entries, key: str, new_key: str
) -> None:
    for part, path, list_key, body_key in (
        ("comments", "comment", "comments", "body"),
        ("worklogs", "worklog", "worklogs", "comment"),
    ):
        entry = entries.get(f"{part}/{key}")
        if entry is None:
            continue
        restored = {}
        for item in client.paged(f"/rest/api/3/issue/{new_key}/{path}", list_key, 100):
            m = NOTE_ID.search(_first_text(item.get(body_key)))
            if m:
                restored[m.group(1)] = item
        for item in repo.read_json(entry):
            report[part]["backed_up"] += 1
            twin = restored.get(str(item["id"]))
            if twin is None:
                report[part]["missing"].append(f"{key}:{item['id']}")
                continue
            body, _ = strip_note(twin.get(body_key))
            same = _without_media((body or {}).get("content")) == _without_media(
                (item.get(body_key) or {}).get("content") or []
            )
            if (twin.get("visibility") or None) == (item.get("visibility") or None):
                report["visibility"]["identical"] += 1 if item.get("visibility") else 0
            else:
                report["visibility"]["changed"].append(f"{key}:{part[:-1]} {item['id']}")
            if part == "worklogs":
                same = same and twin.get("timeSpentSeconds") == item.get("timeSpentSeconds")
            if same:
                report[part]["identical"] += 1
            else:
                report[part]["missing"].append(f"{key}:{item['id']} (differs)")


def _attachments(
    report: dict[str, Any],
    client: JiraClient,
    repo: Repository,
    entries,
    key: str,
    new_key: str,
    new_f: dict[str, Any],
) -> dict[str, str]:
    """Each backed-up attachment by its id, through the keepstone.attachments marker, and its bytes by SHA-256
    (never by filename and size). Returns backed-up id -> media id of the restored one."""
    mine = [e for e in entries.values() if e.kind == "attachment" and e.name.split("/")[1] == key]
    if not mine:
        return {}
    present = {a["id"] for a in new_f.get("attachment") or []}
    try:
        marker = client.get_json(f"/rest/api/3/issue/{new_key}/properties/{ATTACHMENTS_PROPERTY}")["value"]
    except JiraNotFound:
        marker = {}
    for entry in mine:
        report["attachments"]["backed_up"] += 1
        twin = marker.get(str(entry.attrs.get("id")))
        if twin is None or twin.get("id") not in present:
            report["attachments"]["missing"].append(entry.name)
            continue
        original = hashlib.sha256()
        for chunk in repo.open_stream(entry):
            original.update(chunk)
        restored = hashlib.sha256()
        for chunk in client.download(twin["id"]):
            restored.update(chunk)
        if original.hexdigest() == restored.hexdigest() == twin.get("sha256"):
            report["attachments"]["byte_identical"] += 1
        else:
            report["attachments"]["missing"].append(f"{entry.name} (bytes differ)")
    return {k: v.get("mediaId") for k, v in marker.items() if v.get("mediaId")}


def _media(
    report: dict[str, Any],
    client: JiraClient,
    repo: Repository,
    entries,
    key: str,
    new_key: str,
    old_f: dict[str, Any],
    new_f: dict[str, Any],
    media: dict[str, str],
) -> None:
    """Media nodes of the description and comments: as many as backed up, each naming a restored attachment
    of this issue (none left pointing at an old one)."""
    old_refs = media_refs([old_f.get("description"), old_f.get("environment")])
    new_refs = media_refs([new_f.get("description"), new_f.get("environment")])
    if f"comments/{key}" in entries:
        old_refs += media_refs([c.get("body") for c in repo.read_json(entries[f"comments/{key}"])])
        new_refs += media_refs(
            [c.get("body") for c in client.paged(f"/rest/api/3/issue/{new_key}/comment", "comments", 100)]
        )
    if not old_refs:
        return
    ours = set(media.values())
    if len(old_refs) == len(new_refs) and all(mid in ours for mid, _ in new_refs):
        report["media"]["identical"] += 1
    else:
        report["media"]["changed"].append(key)


def _configuration(
    client: JiraClient, repo: Repository, plan: RestorePlan, result: RestoreResult, report: dict[str, Any]
) -> None:
    """Boards, filters, dashboards and role members compared (`configuration.py`), and what is not."""
    backup = Backup(repo, plan.snapshot.entries, plan.project)
    report["configuration"] = compare_configuration(
        client,
        backup,
        result.target_project,
        result.configuration,
        result.target_project == plan.source_project,
        result.mapping,
    )
    report["not_compared"] += [
        "gadget settings outside dashboard item properties (legacy gadget preferences: the REST API has none)",
        "board settings beyond name, type, filter and columns (swimlanes, quick filters, card layout: not backed up)",
    ]


def _without_media(content: Any) -> Any:
    """ADF content with media ids blanked (they must differ after a restore; `_media` checks them)."""
    if isinstance(content, list):
        return [_without_media(x) for x in content]
    if isinstance(content, dict):
        out = {k: _without_media(v) for k, v in content.items()}
        if content.get("type") in ("media", "mediaInline") and isinstance(out.get("attrs"), dict):
            out["attrs"] = {k: v for k, v in out["attrs"].items() if k != "id"}
        return out
    return content


def format_report(report: dict[str, Any]) -> list[str]:
    f = report["fields"]
    lines = [
        f"fidelity: {report['issues']} issues restored",
        f"  fields: {f['identical']}/{f['compared']} identical ({f['identical_share']:.2%}), "
        f"{len(f['changed'])} changed, {len(f['lost'])} lost, {f['api_limited']} set by Jira (API limits)",
        f"  status: {report['status']['identical']} identical, {len(report['status']['changed'])} changed",
        f"  hierarchy: {report['hierarchy']['identical']} identical, {len(report['hierarchy']['changed'])} changed",
        f"  resolution: {report['resolution']['identical']} identical, "
        f"{len(report['resolution']['changed'])} changed",
        f"  links: {report['links']['identical']} issues identical, {len(report['links']['changed'])} changed"
        f" ({report['links']['outside']} to issues neither restored nor in the site)",
        f"  visibility: {report['visibility']['identical']} restricted items identical, "
        f"{len(report['visibility']['changed'])} changed",
        f"  media references: {report['media']['identical']} issues identical, "
        f"{len(report['media']['changed'])} changed",
    ]
    for part in ("comments", "worklogs"):
        r = report[part]
        lines.append(
            f"  {part}: {r['identical']}/{r['backed_up']} identical (authors and times kept in a note)"
        )
    a = report["attachments"]
    lines.append(f"  attachments: {a['byte_identical']}/{a['backed_up']} byte-identical")
    for name in ("changed", "lost"):
        if f[name]:
            lines.append(f"  fields {name}: {', '.join(f[name][:20])}")
    for part, r in (report.get("configuration") or {}).items():
        if part == "role members":
            lines.append(
                f"  role members: {r['identical']} identical, {len(r['missing'])} missing, "
                f"{len(r['not in target'])} not in the target site"
            )
        else:
            lines.append(f"  {part}: {r['identical']} identical, {len(r['changed'])} changed")
            lines += [f"    {line}" for line in r["changed"][:10]]
    lines.append(f"  not settable through Jira's API: {', '.join(report['api_limits'])}")
    lines += [f"  not compared: {line}" for line in report["not_compared"]]
    return lines
