"""The fidelity report's configuration part: restored boards, filters, dashboards and role members
compared with the backup (`configuration.py` restores them)."""

from __future__ import annotations

from typing import Any

from backend.jira import JiraClient, JiraError, JiraNotFound
from backend.restore.config_objects import (
    Backup,
    columns_of,
    issue_key_pattern,
    map_ids,
    rewrite_jql,
    target_name,
)


def _read_or_none(client: JiraClient, path: str) -> Any:
    try:
        return client.get_json(path)
    except (JiraNotFound, JiraError):
        return None


def _share_kinds(shares: list[dict[str, Any]], old_id: str, new_id: str) -> set[tuple[str, str]]:
    """Share permissions by meaning: type and project (the source project's read as the target's)."""
    out = set()
    for s in shares or []:
        pid = str((s.get("project") or {}).get("id") or "")
        kind = "authenticated" if s.get("type") == "loggedin" else str(s.get("type"))
        out.add((kind, new_id if pid == old_id else pid))
    return out


def compare_configuration(
    client: JiraClient,
    backup: Backup,
    key: str,
    mapping: dict[str, dict[str, str]],
    same_project: bool,
    issues: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Compare the restored boards, filters, dashboards and role members with the backup (`issues`: the
    run's old -> new issue keys, which a filter's JQL names)."""
    project_id = str(client.get_json(f"/rest/api/3/project/{key}")["id"])

    def jql(text: str) -> str:
        out = rewrite_jql(text, backup.key, key, backup.id, project_id)
        return issue_key_pattern(backup.key).sub(
            lambda m: (issues or {}).get(m.group(0).upper(), m.group(0)), out
        )

    report: dict[str, Any] = {
        "boards": {"identical": 0, "changed": []},
        "filters": {"identical": 0, "changed": []},
        "dashboards": {"identical": 0, "changed": []},
        "role members": {"identical": 0, "missing": [], "not in target": []},
    }
    filters = {str(f["id"]): f for f in backup.filters}
    for f_old, f_new in sorted((mapping.get("filters") or {}).items()):
        f, now = filters.get(f_old), _read_or_none(client, f"/rest/api/3/filter/{f_new}")
        if f is None:
            continue
        diffs = []
        if now is None:
            diffs.append("not in the target")
        else:
            if now.get("jql") != jql(f.get("jql") or ""):
                diffs.append(f"jql {now.get('jql')!r} (backup, rewritten: {jql(f.get('jql') or '')!r})")
            wanted = _share_kinds(f.get("sharePermissions") or [], backup.id, project_id)
            if f_old != f_new and _share_kinds(now.get("sharePermissions") or [], "", "") != wanted:
                diffs.append("share permissions")
            if f_old != f_new and _owner(now) != _owner(f):
                diffs.append(f"owner {_owner(now)} (backup: {_owner(f)})")
        _tally(report["filters"], f["name"], diffs)
    boards = {str(b["id"]): b for b in backup.boards}
    for b_old, b in sorted(boards.items()):
        b_new = (mapping.get("boards") or {}).get(b_old)
        config = backup.board_config.get(b["id"], {})
        now = _read_or_none(client, f"/rest/agile/1.0/board/{b_new}/configuration") if b_new else None
        diffs = []
        if now is None:
            diffs.append("not restored")
        else:
            if now.get("name") != target_name(b["name"], backup.key, key, same_project, suffix=False):
                diffs.append(f"name {now.get('name')!r}")
            if now.get("type") != b.get("type"):
                diffs.append(f"type {now.get('type')}")
            backed_filter = filters.get(str((config.get("filter") or {}).get("id")))
            shown = _read_or_none(client, f"/rest/api/3/filter/{(now.get('filter') or {}).get('id')}")
            if backed_filter is not None and (shown or {}).get("jql") != jql(backed_filter.get("jql") or ""):
                diffs.append("filter jql")
            if columns_of(now) != columns_of(config):
                diffs.append("columns (Jira's REST API cannot set them)")
        _tally(report["boards"], b["name"], diffs)
    dashboards = {str(d["id"]): d for d in backup.dashboards}
    for d_old, d_new in sorted((mapping.get("dashboards") or {}).items()):
        d = dashboards.get(d_old)
        now = _read_or_none(client, f"/rest/api/3/dashboard/{d_new}")
        if d is None:
            continue
        diffs = []
        if now is None:
            diffs.append("not in the target")
        else:
            gadgets = (_read_or_none(client, f"/rest/api/3/dashboard/{d_new}/gadget") or {}).get(
                "gadgets"
            ) or []

            def layout(items: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
                return {
                    (
                        g.get("title"),
                        g.get("moduleKey"),
                        g.get("uri"),
                        g["position"]["row"],
                        g["position"]["column"],
                    )
                    for g in items
                }

            if layout(gadgets) != layout(d.get("gadgets") or []):
                diffs.append("gadgets")
            at = {(g["position"]["row"], g["position"]["column"]): g for g in gadgets}
            for g in d.get("gadgets") or []:
                twin = at.get((g["position"]["row"], g["position"]["column"]))
                for name, value in (g.get("properties") or {}).items():
                    path = f"/rest/api/3/dashboard/{d_new}/items/{(twin or {}).get('id')}/properties/{name}"
                    now_value = (_read_or_none(client, path) or {}).get("value") if twin else None
                    if now_value != map_ids(value, mapping.get("filters") or {}, backup.id, project_id):
                        diffs.append(f"gadget {g.get('title')}: setting {name}")
            wanted = _share_kinds(d.get("sharePermissions") or [], backup.id, project_id)
            if d_old != d_new and _share_kinds(now.get("sharePermissions") or [], "", "") != wanted:
                diffs.append("share permissions")
            if d_old != d_new and _owner(now) != _owner(d):
                diffs.append(f"owner {_owner(now)} (backup: {_owner(d)})")
        _tally(report["dashboards"], d["name"], diffs)
    if backup.roles is not None:
        roles = client.get_json(f"/rest/api/3/project/{key}/role")
        users: set[str] | None = None
        r = report["role members"]
        for role in backup.roles:
            url = roles.get(role.get("name"))
            actors = (_read_or_none(client, str(url)) or {}).get("actors") or [] if url else []
            have = {(a.get("actorUser") or {}).get("accountId") for a in actors} | {
                (a.get("actorGroup") or {}).get("name") for a in actors
            }
            for actor in role.get("actors") or []:
                who = (actor.get("actorUser") or {}).get("accountId") or (actor.get("actorGroup") or {}).get(
                    "name"
                )
                if who in have:
                    r["identical"] += 1
                    continue
                if "actorUser" in actor:
                    if users is None:
                        users = {u["accountId"] for u in client.all_users()}
                    if who not in users:
                        r["not in target"].append(who)
                        continue
                r["missing"].append(f"{role.get('name')}: {who}")
    return report


def _owner(item: dict[str, Any]) -> str | None:
    return (item.get("owner") or {}).get("accountId")


def _tally(part: dict[str, Any], name: str, diffs: list[str]) -> None:
    if diffs:
        part["changed"].append(f"{name}: {', '.join(diffs)}")
    else:
        part["identical"] += 1
