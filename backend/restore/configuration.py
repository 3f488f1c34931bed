"""Restore a project's boards, filters, dashboards and project role members (part `configuration`).

What belongs to the project: its boards (the backup's `config/boards` and `config/board-configuration`),
the filters those boards show, filters whose JQL names the project or that are shared with it, dashboards
shared with it (all from the backup's `site/filters` and `site/dashboards`), and the members of its roles
(`config/role-actors`). Into another project key, JQL and names are rewritten to the new key (the token
`PLAT` becomes `PLATR`). A filter or dashboard whose name does not hold the key gets ` (PLATR)` appended,
since the original may still exist beside it. Filters whose JQL names issues (`key = PLAT-12`), their
boards and the dashboards wait for the issues (`finish`), so the restored keys can be put in.

Each object is looked up in the target before anything is created (filters and dashboards by name, boards by
name in the target project, role members by accountId or group), so a second run creates nothing. What Jira's
REST API cannot set is listed in `lost` with where the backup keeps it: board columns (read-only in the API),
gadget settings outside item properties (not reachable), owners who do not exist in the target (a filter or
dashboard is given back to its owner where that user exists), role members who do not exist in the target.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from backend.jira import JiraClient, JiraError, JiraNotFound
from backend.repository import Repository
from backend.restore.journal import Journal

BOARD_FILTER_JQL = "project = {key} ORDER BY Rank ASC"


# --- what belongs to the project, and how it reads in the target ------------------------------------


def _issue_key(key: str) -> re.Pattern[str]:
    """An issue key of the project in JQL (PLAT-12)."""
    return re.compile(rf"(?<![\w.-]){re.escape(key)}-\d+(?![\w-])", re.IGNORECASE)


def _token(key: str) -> re.Pattern[str]:
    """The project key as a JQL token: not part of a longer word or of an issue key (PLAT-12)."""
    return re.compile(rf"(?<![\w.-]){re.escape(key)}(?![\w-])", re.IGNORECASE)


def rewrite_jql(jql: str, old_key: str, new_key: str, old_id: str = "", new_id: str = "") -> str:
    """JQL of the source project rewritten to the target: its key (and `project = <id>`) replaced."""
    if old_key.upper() == new_key.upper() and old_id == new_id:
        return jql
    out = _token(old_key).sub(new_key, jql)
    if old_id and new_id:
        out = re.sub(
            rf"(\bproject\s*(?:=|!=)\s*\"?){re.escape(old_id)}\b", rf"\g<1>{new_id}", out, flags=re.I
        )
    return out


def mentions(jql: str, key: str) -> bool:
    return bool(_token(key).search(jql or ""))


def _shared_with(item: dict[str, Any], project_id: str) -> bool:
    return any(
        str((s.get("project") or {}).get("id")) == str(project_id)
        for s in (item.get("sharePermissions") or []) + (item.get("editPermissions") or [])
    )


class Backup:
    """The configuration objects of the backed-up project, read from its snapshot."""

    def __init__(self, repo: Repository, entries: dict[str, Any], project: dict[str, Any]) -> None:
        def read(name: str) -> Any:
            return repo.read_json(entries[name]) if name in entries else None

        self.key, self.id = project["key"], str(project["id"])
        self.boards: list[dict[str, Any]] = read("config/boards") or []
        configs = read("config/board-configuration") or []
        self.board_config = {c["id"]: c for c in configs}
        self.has_roles = "config/roles" in entries
        self.roles: list[dict[str, Any]] | None = read("config/role-actors")
        site_filters = read("site/filters") or []
        board_filters = {str((c.get("filter") or {}).get("id")) for c in configs}
        self.filters = [
            f
            for f in site_filters
            if str(f["id"]) in board_filters
            or mentions(f.get("jql", ""), self.key)
            or _shared_with(f, self.id)
        ]
        self.missing_filters = sorted(board_filters - {str(f["id"]) for f in site_filters} - {"None"})
        self.dashboards = [d for d in read("site/dashboards") or [] if _shared_with(d, self.id)]

    def role_members(self) -> int:
        return sum(len(r.get("actors") or []) for r in self.roles or [])

    def counts(self) -> dict[str, int]:
        out = {"boards": len(self.boards), "filters": len(self.filters), "dashboards": len(self.dashboards)}
        if self.roles is not None:
            out["role members"] = self.role_members()
        return out

    def notes(self) -> list[str]:
        out = []
        if self.boards:
            out.append(
                "board columns cannot be set through Jira's REST API: where a restored board's columns differ "
                "from the backup (config/board-configuration) they are listed, to be set in the board's settings"
            )
        if self.dashboards:
            out.append(
                "dashboard gadgets come back with their default settings (gadget settings are not backed up)"
            )
        if self.has_roles and self.roles is None:
            out.append(
                "project role members: this backup holds the roles' names only (made before members were)"
            )
        return out


def target_name(name: str, old_key: str, new_key: str, same_project: bool, suffix: bool = True) -> str:
    """An object's name in the target: the key rewritten; else ` (NEWKEY)` appended (`suffix`), since the
    original may still exist beside it."""
    if same_project:
        return name
    renamed = _token(old_key).sub(new_key, name)
    return renamed if renamed != name or not suffix else f"{name} ({new_key})"


def map_ids(value: Any, filters: dict[str, str], old_project: str, new_project: str) -> Any:
    """Gadget settings with restored filter ids and the project id mapped (whole values, or `filter-ID`
    and `project-ID`); anything else as it was."""
    if isinstance(value, dict):
        return {k: map_ids(v, filters, old_project, new_project) for k, v in value.items()}
    if isinstance(value, list):
        return [map_ids(v, filters, old_project, new_project) for v in value]
    if isinstance(value, str):
        prefix, _, ident = value.rpartition("-")
        if prefix in ("", "filter") and ident in filters:
            return f"{prefix}-{filters[ident]}" if prefix else filters[ident]
        if prefix in ("", "project") and ident == old_project and new_project:
            return f"{prefix}-{new_project}" if prefix else new_project
    return value


def wanted(request: Any) -> bool:
    """Boards, filters, dashboards and role members are the project's: restored with the whole project
    (`--project`, part configuration) or when configuration alone is asked for, not with a few issues."""
    return "configuration" in request.parts and (request.whole_project or request.parts <= {"configuration"})


def columns_of(config: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """A board's columns as (name, status ids) in order."""
    return [
        (c.get("name", ""), tuple(str(s.get("id")) for s in c.get("statuses") or []))
        for c in (config.get("columnConfig") or {}).get("columns") or []
    ]


def _columns_text(columns: list[tuple[str, tuple[str, ...]]]) -> str:
    return " | ".join(f"{name} [{', '.join(ids)}]" for name, ids in columns)


# --- the restore ------------------------------------------------------------------------------------


class ConfigurationRestore:
    """Boards, filters, dashboards and role members of one restore run, into the target project `key`.

    `add(table, name, n)`, `lose(line)` and `item_error(what, e)` are the run's tally; `result_map` receives
    old -> new ids per kind (boards, filters, dashboards), for sprints and the fidelity report.
    """

    def __init__(
        self,
        client: JiraClient,
        backup: Backup,
        journal: Journal,
        tally: Any,
        result_map: dict[str, dict[str, str]],
        *,
        same_project: bool,
        may_change: bool,
        users: Callable[[], set[str]],
    ) -> None:
        self.client, self.backup, self.journal, self.tally = client, backup, journal, tally
        self.map = result_map
        for kind in ("boards", "filters", "dashboards"):
            self.map.setdefault(kind, {})
        self.same_project = same_project  # restoring into the backed-up project itself
        self.may_change = may_change  # this run made the target project (or --overwrite): fix what differs
        self._users = users
        self.me = ""
        self.key = self.project_id = ""
        self._configs: dict[str, dict[str, Any]] = {}
        self.issue_map: dict[str, str] = {}  # original issue key -> restored key (known in `finish`)

    def _config(self, board_id: str) -> dict[str, Any]:
        """A target board's configuration (filter, columns), read once."""
        if board_id not in self._configs:
            self._configs[board_id] = self.client.get_json(f"/rest/agile/1.0/board/{board_id}/configuration")
        return self._configs[board_id]

    # names and JQL in the target
    def jql(self, jql: str) -> str:
        return rewrite_jql(jql, self.backup.key, self.key, self.backup.id, self.project_id)

    def name(self, name: str, suffix: bool = True) -> str:
        return target_name(name, self.backup.key, self.key, self.same_project, suffix)

    def run(self, key: str) -> None:
        self.key = key
        self.project_id = str(self.client.get_json(f"/rest/api/3/project/{key}")["id"])
        self.me = self.client.myself()["accountId"]
        target_boards = self._existing_boards()  # first: a board that exists keeps its own filter
        self._filters()
        self._boards(target_boards)
        self._roles()

    def finish(self, mapping: dict[str, str]) -> None:
        """After the issues: filters whose JQL names issues of the project (with the restored keys; Jira
        refuses a filter on an issue that does not exist), their boards, then the dashboards (whose gadget
        settings may name those filters)."""
        self.issue_map = mapping
        self._filters(deferred=True)
        self._boards({}, deferred=True)
        self._dashboards()

    def _names_issues(self, f: dict[str, Any]) -> bool:
        return bool(_issue_key(self.backup.key).search(f.get("jql") or ""))

    def _board_waits(self, board: dict[str, Any]) -> bool:
        """Whether a board's filter names issues, so the board is made after them."""
        old = str((self.backup.board_config.get(board["id"], {}).get("filter") or {}).get("id"))
        return any(str(f["id"]) == old and self._names_issues(f) for f in self.backup.filters)

    def filter_jql(self, jql: str) -> str:
        """A filter's JQL in the target: the project key rewritten, issue keys mapped to the restored ones."""
        found = _issue_key(self.backup.key)

        def restored(m: re.Match[str]) -> str:
            return self.issue_map.get(m.group(0).upper(), m.group(0))

        return found.sub(restored, self.jql(jql))

    # --- share permissions ----------------------------------------------------------------------
    def _shares(self, shares: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
        """Backed-up share permissions as the target takes them: the project's own become the target
        project's; users by accountId when they exist in the target (else listed)."""
        out = []
        for s in shares or []:
            kind = s.get("type")
            project = s.get("project") or {}
            if kind in ("project", "projectRole"):
                pid = self.project_id if str(project.get("id")) == self.backup.id else str(project.get("id"))
                item: dict[str, Any] = {"type": kind, "project": {"id": pid}}
                if kind == "projectRole":
                    item["role"] = {"id": (s.get("role") or {}).get("id")}
                out.append(item)
            elif kind == "group":
                out.append({"type": "group", "group": {"name": (s.get("group") or {}).get("name")}})
            elif kind == "user":
                account = (s.get("user") or {}).get("accountId")
                if account in self._users():
                    out.append({"type": "user", "user": {"accountId": account}})
                else:
                    self.tally.lose(
                        f"{what}: shared with {account}, who does not exist in the target: not shared"
                    )
            elif kind in ("global", "loggedin", "authenticated"):
                out.append({"type": "global" if kind == "global" else "authenticated"})
            else:
                self.tally.lose(f"{what}: a share of type {kind} (its project is gone) is left out")
        return out

    def _create_shared(self, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        """Create a filter or dashboard; where Jira refuses a share (a group the target lacks), create it
        shared with the project only and list what was left out."""
        try:
            return self.client.post_json(path, body)
        except JiraError as e:
            if not {"sharePermissions", "editPermissions"} & set(e.errors or {}):
                raise

            def kept(share: dict[str, Any]) -> bool:  # the shares on the target project itself
                return str((share.get("project") or {}).get("id")) == self.project_id

            dropped = [
                s["type"] for k in ("sharePermissions", "editPermissions") for s in body[k] if not kept(s)
            ]
            for k in ("sharePermissions", "editPermissions"):
                body[k] = [s for s in body[k] if kept(s)]
            self.tally.lose(
                f"{what}: the target refused its shares of type {', '.join(dropped)} ({e}): left out"
            )
            return self.client.post_json(path, body)

    # --- filters --------------------------------------------------------------------------------
    def _target_filters(self) -> dict[str, dict[str, Any]]:
        found = self.client.paged("/rest/api/3/filter/search?expand=jql,owner", "values", 100)
        return {str(f["id"]): f for f in found}

    def _filters(self, deferred: bool = False) -> None:
        wanted = [f for f in self.backup.filters if self._names_issues(f) == deferred]
        if all(str(f["id"]) in self.map["filters"] for f in wanted):
            return  # none, or only those of boards that exist
        target = self._target_filters()
        by_name: dict[tuple[str, str], dict[str, Any]] = {
            (f["name"].lower(), (f.get("owner") or {}).get("accountId", "")): f for f in target.values()
        }
        for f in sorted(wanted, key=lambda f: int(f["id"])):
            old = str(f["id"])
            what = f"filter {f['name']}"
            if old in self.map["filters"]:  # the filter of a board that exists in the target
                continue
            if (done := self.journal.done(f"filter:{old}")) is not None:
                self.map["filters"][old] = done
                continue
            if self.same_project and old in target:
                self.map["filters"][old] = old
                self.tally.add("skipped", "filters")
                continue
            name = self.name(f["name"])
            owner = (f.get("owner") or {}).get("accountId") or self.me
            found = by_name.get((name.lower(), self.me)) or by_name.get((name.lower(), owner))
            if found is not None:
                new = str(found["id"])
                self.tally.add("skipped", "filters")
                if (found.get("owner") or {}).get(
                    "accountId"
                ) == self.me:  # a run stopped before handing over
                    self._filter_owner(new, owner, what)
            else:
                self.journal.start(f"filter:{old}")
                jql = self.filter_jql(f.get("jql") or "")
                if left := sorted(set(_issue_key(self.backup.key).findall(jql))):
                    self.tally.lose(
                        f"{what}: names {', '.join(left)}, not restored by this run: left as they are"
                    )
                body = {
                    "name": name,
                    "jql": jql,
                    "description": f.get("description") or "",
                    "sharePermissions": self._shares(f.get("sharePermissions") or [], what),
                    "editPermissions": self._shares(f.get("editPermissions") or [], what),
                }
                try:
                    new = str(self._create_shared("/rest/api/3/filter", body, what)["id"])
                except JiraError as e:
                    self.tally.item_error(what, e)
                    continue
                self.tally.add("created", "filters")
                self._filter_owner(new, owner, what)
            self.journal.finish(f"filter:{old}", new)
            self.map["filters"][old] = new

    def _filter_owner(self, filter_id: str, owner: str, what: str) -> None:
        """Jira makes the creator the owner: give the filter back to its owner where they exist."""
        if owner == self.me:
            return
        if owner not in self._users():
            self.tally.lose(f"{what}: owned by the restoring account; its owner {owner} is not in the target")
            return
        try:
            self.client.request("PUT", f"/rest/api/3/filter/{filter_id}/owner", json={"accountId": owner})
        except JiraError as e:
            self.tally.lose(
                f"{what}: owned by the restoring account; Jira refused to give it to {owner} ({e})"
            )

    def _board_filter(self, board: dict[str, Any], name: str) -> str | None:
        """The target filter for a board to be created: the restored one, else a new one on the project."""
        old = str((self.backup.board_config.get(board["id"], {}).get("filter") or {}).get("id"))
        if old in self.map["filters"]:
            return self.map["filters"][old]
        self.tally.lose(
            f"board {name}: its filter {old} is not in the backup (not visible to the backing-up account): "
            f"shown with {BOARD_FILTER_JQL.format(key=self.key)!r} instead"
        )
        body = {
            "name": f"Filter for {name}",
            "jql": BOARD_FILTER_JQL.format(key=self.key),
            "sharePermissions": [{"type": "project", "project": {"id": self.project_id}}],
        }
        try:
            return str(self.client.post_json("/rest/api/3/filter", body)["id"])
        except JiraError as e:
            self.tally.item_error(f"board {name}", e)
            return None

    # --- boards ---------------------------------------------------------------------------------
    def _existing_boards(self) -> dict[str, dict[str, Any]]:
        """Map the backed-up boards that exist in the target project (by name) and check their filters."""
        if not self.backup.boards:
            return {}
        target = {
            b["name"]: b
            for b in self.client.paged(f"/rest/agile/1.0/board?projectKeyOrId={self.key}", "values", 50)
        }
        for board in sorted(self.backup.boards, key=lambda b: b["id"]):
            name = self.name(board["name"], suffix=False)
            if name in target:
                new = str(target[name]["id"])
                self.map["boards"][str(board["id"])] = new
                self.tally.add("skipped", "boards")
                self._board_filter_jql(new, self.backup.board_config.get(board["id"], {}), name)
        return target

    def _boards(self, target: dict[str, dict[str, Any]], deferred: bool = False) -> None:
        for board in sorted(self.backup.boards, key=lambda b: b["id"]):
            if self._board_waits(board) != deferred:
                continue
            old = str(board["id"])
            name = self.name(board["name"], suffix=False)
            config = self.backup.board_config.get(board["id"], {})
            if old in self.map["boards"]:
                new = self.map["boards"][old]
            elif (done := self.journal.done(f"board:{old}")) is not None:
                new = done
            else:
                filter_id = self._board_filter(board, name)
                if filter_id is None:
                    continue
                self.journal.start(f"board:{old}")
                body = {
                    "name": name,
                    "type": board.get("type", "kanban"),
                    "filterId": int(filter_id),
                    "location": {"type": "project", "projectKeyOrId": self.key},
                }
                try:
                    new = str(self.client.post_json("/rest/agile/1.0/board", body)["id"])
                except JiraError as e:
                    self.tally.item_error(f"board {name}", e)
                    continue
                self.journal.finish(f"board:{old}", new)
                self.tally.add("created", "boards")
            self.map["boards"][old] = new
            self._columns(new, config, name)

    def _board_filter_jql(self, board_id: str, config: dict[str, Any], name: str) -> None:
        """An existing board shows the backed-up filter's JQL: set it where this run may change the board
        (a project it made, or --overwrite), else list the difference."""
        old_filter = str((config.get("filter") or {}).get("id"))
        backed = next((f for f in self.backup.filters if str(f["id"]) == old_filter), None)
        if backed is None:
            return
        now = self._config(board_id)
        filter_id = str((now.get("filter") or {}).get("id"))
        current = self.client.get_json(f"/rest/api/3/filter/{filter_id}")
        wanted = self.jql(backed.get("jql") or "")
        self.map["filters"].setdefault(old_filter, filter_id)
        mine = (current.get("owner") or {}).get("accountId") == self.me
        if current.get("jql") != wanted:
            if self.may_change and mine:
                self.client.request("PUT", f"/rest/api/3/filter/{filter_id}", json={"jql": wanted})
                self.tally.add("created", "board filters set")
            else:
                self.tally.lose(
                    f"board {name}: its filter shows {current.get('jql')!r}, the backup {wanted!r}: left as it is"
                )
        owner = (backed.get("owner") or {}).get("accountId")
        if self.may_change and mine and owner and owner != self.me:  # the template's filter is the creator's
            self._filter_owner(filter_id, owner, f"board {name}: its filter")

    def _columns(self, board_id: str, config: dict[str, Any], name: str) -> None:
        backed = columns_of(config)
        if not backed:
            return
        now = columns_of(self._config(board_id))
        if now != backed:
            self.tally.lose(
                f"board {name}: columns cannot be set through Jira's REST API; set them in the board's "
                f"settings as backed up (snapshot entry config/board-configuration): {_columns_text(backed)}"
            )

    # --- dashboards -----------------------------------------------------------------------------
    def _dashboards(self) -> None:
        if not self.backup.dashboards:
            return
        target = self.client.paged("/rest/api/3/dashboard", "dashboards", 100)
        by_id = {str(d["id"]): d for d in target}
        by_name = {(d["name"].lower(), (d.get("owner") or {}).get("accountId", "")): d for d in target}
        owners: dict[str, list[tuple[str, str]]] = {}  # original owner -> (new id, journal step)
        for d in sorted(self.backup.dashboards, key=lambda d: int(d["id"])):
            old = str(d["id"])
            what = f"dashboard {d['name']}"
            if self.same_project and old in by_id:
                self.map["dashboards"][old] = old
                self.tally.add("skipped", "dashboards")
                continue
            name = self.name(d["name"])
            owner = (d.get("owner") or {}).get("accountId") or self.me
            given = self.journal.done(f"dashboard-owner:{old}") is not None
            if (done := self.journal.done(f"dashboard:{old}")) is not None:
                new = done
            elif (
                found := by_name.get((name.lower(), self.me)) or by_name.get((name.lower(), owner))
            ) is not None:
                new = str(found["id"])
                given = (found.get("owner") or {}).get("accountId") != self.me  # handed over: complete
                self.tally.add("skipped", "dashboards")
            else:
                self.journal.start(f"dashboard:{old}")
                body = {
                    "name": name,
                    "description": d.get("description") or "",
                    "sharePermissions": self._shares(d.get("sharePermissions") or [], what),
                    "editPermissions": self._shares(d.get("editPermissions") or [], what),
                }
                try:
                    new = str(self._create_shared("/rest/api/3/dashboard", body, what)["id"])
                except JiraError as e:
                    self.tally.item_error(what, e)
                    continue
                self.journal.finish(f"dashboard:{old}", new)
                self.tally.add("created", "dashboards")
            self.map["dashboards"][old] = new
            if not given:  # gadgets first: only the owner may add them
                self._gadgets(new, d, what)
                if owner != self.me:
                    owners.setdefault(owner, []).append((new, f"dashboard-owner:{old}"))
        for owner, items in sorted(owners.items()):
            self._dashboard_owner(owner, items)

    def _dashboard_owner(self, owner: str, items: list[tuple[str, str]]) -> None:
        """Give restored dashboards back to their owner (one bulk edit an owner) where that user exists."""
        if owner not in self._users():
            for new, _ in items:
                self.tally.lose(
                    f"dashboard {new}: owned by the restoring account; its owner {owner} is not in the target"
                )
            return
        body = {
            "action": "changeOwner",
            "entityIds": [int(new) for new, _ in items],
            "changeOwnerDetails": {"newOwner": owner, "autofixName": False},
            "extendAdminPermissions": True,
        }
        try:
            refused = (
                self.client.request("PUT", "/rest/api/3/dashboard/bulk/edit", json=body)
                .json()
                .get("entityErrors")
                or {}
            )
        except JiraError as e:
            refused = {new: str(e) for new, _ in items}
        for new, step in items:
            if new in refused:
                self.tally.lose(
                    f"dashboard {new}: owned by the restoring account; Jira refused to give it to {owner} ({refused[new]})"
                )
            else:
                self.journal.finish(step, owner)

    def _gadgets(self, dashboard_id: str, d: dict[str, Any], what: str) -> None:
        gadgets = d.get("gadgets") or []
        if not gadgets:
            return
        path = f"/rest/api/3/dashboard/{dashboard_id}/gadget"
        present = {
            (g["position"]["row"], g["position"]["column"]): g
            for g in self.client.get_json(path).get("gadgets") or []
        }
        added = bare = 0
        for g in sorted(gadgets, key=lambda g: (g["position"]["column"], g["position"]["row"])):
            place = (g["position"]["row"], g["position"]["column"])
            if place in present:
                continue
            body = {k: g[k] for k in ("moduleKey", "uri", "color", "title") if g.get(k)}
            body["position"] = {"row": place[0], "column": place[1]}
            try:
                made = self.client.post_json(path, body)
                for key, value in sorted((g.get("properties") or {}).items()):
                    self.client.request(
                        "PUT",
                        f"/rest/api/3/dashboard/{dashboard_id}/items/{made['id']}/properties/{key}",
                        json=self.gadget_value(value),
                    )
            except JiraError as e:
                self.tally.item_error(f"{what}: gadget {g.get('title')}", e)
                continue
            added += 1
            bare += not g.get("properties")
        if added:
            self.tally.add("created", "gadgets", added)
        if bare:
            self.tally.lose(
                f"{what}: {bare} gadgets have no item properties: settings Jira keeps outside them (legacy "
                "gadget preferences) cannot be read or set through the REST API, so they come back as defaults"
            )

    def gadget_value(self, value: Any) -> Any:
        """A gadget's item property for the target: ids of restored filters and of the project mapped
        (`10102`, `filter-10102`, `project-10000`)."""
        return map_ids(value, self.map["filters"], self.backup.id, self.project_id)

    # --- project role members -------------------------------------------------------------------
    def _roles(self) -> None:
        if self.backup.roles is None:
            if self.backup.has_roles:
                self.tally.lose(
                    "project role members: this backup holds the roles' names only (made before role members "
                    "were backed up); back up again to keep them"
                )
            return
        target = self.client.get_json(f"/rest/api/3/project/{self.key}/role")
        ids = {name: str(url).rstrip("/").rsplit("/", 1)[-1] for name, url in target.items()}
        for role in sorted(self.backup.roles, key=lambda r: r.get("name", "")):
            name = role.get("name", "")
            if name not in ids:
                self.tally.lose(
                    f"role {name}: the target has no role of that name: its members are not added"
                )
                continue
            path = f"/rest/api/3/project/{self.key}/role/{ids[name]}"
            present = self.client.get_json(path).get("actors") or []
            have_users = {(a.get("actorUser") or {}).get("accountId") for a in present}
            have_groups = {(a.get("actorGroup") or {}).get("groupId") for a in present} | {
                (a.get("actorGroup") or {}).get("name") for a in present
            }
            add_users, add_groups = [], []
            for actor in role.get("actors") or []:
                if account := (actor.get("actorUser") or {}).get("accountId"):
                    if account in have_users:
                        continue
                    if account in self._users():  # read only when a member is to be added
                        add_users.append(account)
                    else:
                        self.tally.lose(
                            f"role {name}: {actor.get('displayName') or account} ({account}) does not exist in "
                            "the target site: not added (kept in the snapshot entry config/role-actors)"
                        )
                elif group := actor.get("actorGroup"):
                    if group.get("groupId") in have_groups or group.get("name") in have_groups:
                        continue
                    add_groups.append(group)
            self._add_actors(path, name, add_users, add_groups)

    def _add_actors(self, path: str, role: str, users: list[str], groups: list[dict[str, Any]]) -> None:
        if not users and not groups:
            return
        body: dict[str, Any] = {}
        if users:
            body["user"] = users
        if groups:
            body["groupId"] = [g["groupId"] for g in groups if g.get("groupId")]
            body["group"] = [g["name"] for g in groups if not g.get("groupId")]
            body = {k: v for k, v in body.items() if v}
        try:
            self.client.post_json(path, body)
            self.tally.add("created", "role members", len(users) + len(groups))
            return
        except JiraError:
            pass  # Jira takes all or nothing: add one by one, so only the refused ones are named
        for kind, items in (("user", users), ("group", groups)):
            for item in items:
                one = {kind: [item]} if kind == "user" else {"groupId": [item.get("groupId")]}
                if kind == "group" and not item.get("groupId"):
                    one = {"group": [item.get("name")]}
                try:
                    self.client.post_json(path, one)
                    self.tally.add("created", "role members")
                except JiraError as e:
                    label = item if kind == "user" else item.get("name")
                    self.tally.item_error(f"role {role}: {kind} {label}", e)


def board_for_sprint(sprint: dict[str, Any], boards: dict[str, str]) -> int | None:
    """The target board a backed-up sprint belongs on (its origin board, restored), if known."""
    new = boards.get(str(sprint.get("originBoardId")))
    return int(new) if new is not None else None


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
        return _issue_key(backup.key).sub(lambda m: (issues or {}).get(m.group(0).upper(), m.group(0)), out)

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
                        users = _site_users(client)
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


def _site_users(client: JiraClient) -> set[str]:
    users, start = set(), 0
    while True:
        page = client.get_json("/rest/api/3/users/search", startAt=start, maxResults=1000)
        users |= {u["accountId"] for u in page}
        if len(page) < 1000:
            return users
        start += len(page)
