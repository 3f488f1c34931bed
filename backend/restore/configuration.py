"""Restore a project's boards, filters, dashboards and project role members (part `configuration`).

What belongs to the project and how its names and JQL read in the target: `config_objects.py`; the report's
comparison: `configuration_report.py`. Filters whose JQL names issues (`key = PLAT-12`), their boards and the
dashboards wait for the issues (`finish`), so the restored keys can be put in.

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

from backend.jira import JiraClient, JiraError
from backend.restore.config_objects import (
    BOARD_FILTER_JQL,
    Backup,
    columns_of,
    columns_text,
    issue_key_pattern,
    map_ids,
    rewrite_jql,
    target_name,
)
from backend.restore.journal import Journal

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
        # Boards that exist first: such a board keeps its own filter, which then needs no copy.
        target_boards = self._part("boards", self._existing_boards) or {}
        self._part("filters", self._filters)
        self._part("boards", self._boards, target_boards)
        self._part("role members", self._roles)

    def _part(self, name: str, step: Callable[..., Any], *args: Any) -> Any:
        """One part; a read Jira refuses (no permission to see roles, say) is recorded and the rest goes on."""
        try:
            return step(*args)
        except JiraError as e:
            self.tally.item_error(f"configuration: {name}", e)
            return None

    def finish(self, mapping: dict[str, str]) -> None:
        """After the issues: filters whose JQL names issues of the project (with the restored keys; Jira
        refuses a filter on an issue that does not exist), their boards, then the dashboards (whose gadget
        settings may name those filters)."""
        self.issue_map = mapping
        self._part("filters", self._filters, True)
        self._part("boards", self._boards, {}, True)
        self._part("dashboards", self._dashboards)

    def _names_issues(self, f: dict[str, Any]) -> bool:
        return bool(issue_key_pattern(self.backup.key).search(f.get("jql") or ""))

    def _board_waits(self, board: dict[str, Any]) -> bool:
        """Whether a board's filter names issues, so the board is made after them."""
        old = str((self.backup.board_config.get(board["id"], {}).get("filter") or {}).get("id"))
        return any(str(f["id"]) == old and self._names_issues(f) for f in self.backup.filters)

    def filter_jql(self, jql: str) -> str:
        """A filter's JQL in the target: the project key rewritten, issue keys mapped to the restored ones."""
        found = issue_key_pattern(self.backup.key)

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
                if left := sorted(set(issue_key_pattern(self.backup.key).findall(jql))):
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
                f"settings as backed up (snapshot entry config/board-configuration): {columns_text(backed)}"
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
