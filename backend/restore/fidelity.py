"""The fidelity report: how closely the restored issues match the backup, item by item.

Fields are compared by meaning (users by accountId, options by value, versions by name, parents and links
through the key mapping); fields Jira does not let a client set are counted apart as API limits.
"""

from __future__ import annotations

import hashlib
from typing import Any

from backend.jira import JiraClient
from backend.repository import Repository
from backend.restore.execute import NOTE_ID, RestoreResult, _first_text
from backend.restore.mapping import HANDLED_ELSEWHERE, LOST_BY_API, marker_label, strip_note
from backend.restore.plan import RestorePlan


def _norm(value: Any) -> Any:
    if isinstance(value, list):
        return sorted((_norm(v) for v in value), key=repr)
    if isinstance(value, dict):
        if value.get("type") == "doc":
            return value
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
        "hierarchy": {"identical": 0, "changed": []},
        "links": {"identical": 0, "changed": []},
        "comments": {"backed_up": 0, "identical": 0, "missing": []},
        "worklogs": {"backed_up": 0, "identical": 0, "missing": []},
        "attachments": {"backed_up": 0, "byte_identical": 0, "missing": []},
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
        old_parent = (old_f.get("parent") or {}).get("key")
        new_parent = (new_f.get("parent") or {}).get("key")
        if mapping.get(old_parent, old_parent) == new_parent:
            report["hierarchy"]["identical"] += 1
        else:
            report["hierarchy"]["changed"].append(p.key)
        _links(report, p.key, old_f, new_f, mapping)
        _comments(report, client, repo, entries, p.key, new_key)
        _attachments(report, client, repo, entries, p.key, new_f)
    compared = report["fields"]["compared"]
    report["fields"]["identical_share"] = (
        round(report["fields"]["identical"] / compared, 4) if compared else 1.0
    )
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


def _links(report: dict[str, Any], key: str, old_f: dict, new_f: dict, mapping: dict[str, str]) -> None:
    new_key = mapping[key]
    expected = {
        t for t in _link_set(old_f, key, mapping) if t[1] in mapping.values() and t[2] in mapping.values()
    }
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
            same = (body or {}).get("content") == ((item.get(body_key) or {}).get("content") or [])
            if part == "worklogs":
                same = same and twin.get("timeSpentSeconds") == item.get("timeSpentSeconds")
            if same:
                report[part]["identical"] += 1
            else:
                report[part]["missing"].append(f"{key}:{item['id']} (differs)")


def _attachments(
    report: dict[str, Any], client: JiraClient, repo: Repository, entries, key: str, new_f: dict[str, Any]
) -> None:
    present = {(a["filename"], a["size"]): a for a in new_f.get("attachment") or []}
    for entry in entries.values():
        if entry.kind != "attachment" or entry.name.split("/")[1] != key:
            continue
        report["attachments"]["backed_up"] += 1
        twin = present.get((entry.attrs.get("filename"), entry.size))
        if twin is None:
            report["attachments"]["missing"].append(entry.name)
            continue
        original = hashlib.sha256()
        for chunk in repo.open_stream(entry):
            original.update(chunk)
        restored = hashlib.sha256()
        for chunk in client.download(twin["id"]):
            restored.update(chunk)
        if original.digest() == restored.digest():
            report["attachments"]["byte_identical"] += 1
        else:
            report["attachments"]["missing"].append(f"{entry.name} (bytes differ)")


def format_report(report: dict[str, Any]) -> list[str]:
    f = report["fields"]
    lines = [
        f"fidelity: {report['issues']} issues restored",
        f"  fields: {f['identical']}/{f['compared']} identical ({f['identical_share']:.2%}), "
        f"{len(f['changed'])} changed, {len(f['lost'])} lost, {f['api_limited']} set by Jira (API limits)",
        f"  status: {report['status']['identical']} identical, {len(report['status']['changed'])} changed",
        f"  hierarchy: {report['hierarchy']['identical']} identical, {len(report['hierarchy']['changed'])} changed",
        f"  links: {report['links']['identical']} issues identical, {len(report['links']['changed'])} changed",
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
    lines.append(f"  not settable through Jira's API: {', '.join(report['api_limits'])}")
    return lines
