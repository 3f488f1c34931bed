"""Field-level changes of tracked rows (plans, storages, members, users, Jira accounts, organisations).

Collected from the ORM as a request's sessions flush (`after_flush`: the rows' history before and after),
kept once that session commits and dropped if it rolls back, so the central hook records only what was
really stored. A change is {field: {"before": ..., "after": ...}}; nested dicts (a plan's spec) become
dotted fields, and a secret field never carries a value, only "(changed)".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import g, has_request_context
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from backend.db.models import JiraAccount, Membership, Organisation, Plan, StorageRecord, User

CHANGED = "(changed)"
SECRET_NAME = re.compile(r"(sealed|password|secret|token|credential|private|api_key|access_key)", re.I)


@dataclass(frozen=True)
class Tracked:
    kind: str
    id_attr: str | None
    name_attr: str | None
    ignore: frozenset[str] = frozenset({"id", "created", "organisation_id", "public_id"})
    renamed: dict[str, str] = field(default_factory=dict)  # column -> the field name shown
    origin_only: frozenset[str] = frozenset()  # URLs whose path may be a secret (a Slack webhook's is)


TRACKED: dict[type, Tracked] = {
    Plan: Tracked("plan", "public_id", "name", frozenset({"id", "created", "organisation_id", "public_id", "storage_id"})),
    StorageRecord: Tracked("storage", "public_id", "name", renamed={"credentials_sealed": "credentials"}),
    Membership: Tracked("member", None, None, frozenset({"id", "created", "public_id", "user_id", "organisation_id"})),
    # a check of the token (checked_at, last_check_*) is not a change of the account
    JiraAccount: Tracked("account", None, "email", frozenset({"id", "organisation_id", "checked_at", "set_at", "last_check_at", "last_check_ok", "last_check_message"}), {"token_sealed": "api_token"}),
    User: Tracked("user", None, "email", frozenset({"id", "created"}), {"password_hash": "password"}),
    Organisation: Tracked("organisation", "cloud_id", "display_name", frozenset({"id", "created"})),
}  # fmt: skip


@dataclass
class Change:
    """One tracked row's change in a request: create, update or delete, with its field diffs."""

    kind: str
    op: str  # create | update | delete
    key: tuple[str, Any]  # (model name, primary key): merges several flushes of one row
    target_id: str
    target_name: str
    fields: dict[str, dict[str, Any]]
    organisation_id: int | None = None
    refs: dict[str, Any] = field(default_factory=dict)  # ids to name later (a member's user)


def redact_url(value: str) -> str:
    """A URL without its password and query string (a SAS token or key may ride in either)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return CHANGED
    if not parts.scheme:
        return value
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; an empty dict inside stays a value ({} at the top: nothing)."""
    if isinstance(value, dict) and (value or not prefix):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def diff(
    before: dict[str, Any] | None, after: dict[str, Any] | None, secrets: set[str] = frozenset()
) -> dict:  # type: ignore[assignment]
    """{field: {before, after}} for every leaf that differs; a secret field shows only "(changed)"."""
    old, new = flatten(before or {}), flatten(after or {})
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if name.split(".")[0] in secrets or SECRET_NAME.search(name):
            out[name] = {
                "before": CHANGED if a is not None else None,
                "after": CHANGED if b is not None else None,
            }
        else:
            out[name] = {"before": _safe(a), "after": _safe(b)}
    return out


def _safe(value: Any) -> Any:
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def _columns(obj: Any, spec: Tracked, which: str) -> dict[str, Any]:
    """The row's tracked columns as they were ("before") or are ("after") in this flush."""
    state = inspect(obj)
    out: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        name = attr.key
        if name in spec.ignore:
            continue
        hist = state.attrs[name].history
        if which == "before":
            values = list(hist.deleted) or list(hist.unchanged)
        else:
            values = list(hist.added) or list(hist.unchanged)
        if values:
            out[spec.renamed.get(name, name)] = values[0]
    if isinstance(obj, Plan):
        out.update(_plan_places(state, which))
    return out


def _plan_places(state: Any, which: str) -> dict[str, Any]:
    """A plan's primary storage and replicas, by public id (they are relationships, not columns)."""
    hist = state.attrs.storage.history
    rows = (
        (list(hist.deleted) or list(hist.unchanged))
        if which == "before"
        else (list(hist.added) or list(hist.unchanged))
    )
    out: dict[str, Any] = {"storage": rows[0].public_id if rows and rows[0] is not None else None}
    links = state.attrs.replica_links.history
    kept = list(links.unchanged) + (list(links.deleted) if which == "before" else list(links.added))
    out["replicas"] = [link.storage.public_id for link in kept if link.storage is not None]
    if which == "after":
        out["replicas"] = [
            link.storage.public_id
            for link in sorted(kept, key=lambda link: link.position or 0)
            if link.storage
        ]
    return out


def _origins(values: dict[str, Any], spec: Tracked) -> dict[str, Any]:
    for name in spec.origin_only & set(values):
        value = values[name]
        if isinstance(value, str) and "://" in value:
            parts = urlsplit(value)
            values[name] = f"{parts.scheme}://{parts.hostname or ''}/…"
    return values


def _change(obj: Any, op: str) -> Change | None:
    spec = TRACKED.get(type(obj))
    if spec is None:
        return None
    before = None if op == "create" else _origins(_columns(obj, spec, "before"), spec)
    after = None if op == "delete" else _origins(_columns(obj, spec, "after"), spec)
    secrets = {"credentials", "api_token", "password", "token_hash"}
    fields = diff(before, after, secrets)
    if op == "update" and not fields:
        return None
    state = inspect(obj)
    target_id = str(getattr(obj, spec.id_attr, "") or "") if spec.id_attr else ""
    target_name = str(getattr(obj, spec.name_attr, "") or "") if spec.name_attr else ""
    org_id = getattr(obj, "organisation_id", None)
    if isinstance(obj, Organisation):
        org_id = obj.id
    refs = {"user_id": obj.user_id} if isinstance(obj, Membership) else {}
    return Change(
        spec.kind, op, (type(obj).__name__, state.identity), target_id, target_name, fields, org_id, refs
    )


def snapshot(obj: Any) -> dict[str, Any]:
    """A row's tracked columns as they are now (for rows changed by bulk statements, see url_changes)."""
    spec = TRACKED[type(obj)]
    state = inspect(obj)
    return {
        spec.renamed.get(a.key, a.key): getattr(obj, a.key)
        for a in state.mapper.column_attrs
        if a.key not in spec.ignore
    }


def url_change(obj_before: dict[str, Any], obj: Any | None, model: type, key: Any) -> Change | None:
    """The change of a row named in the URL, from its snapshot before the view and the row after it.

    Bulk UPDATE and DELETE statements (a member's role, a member removed, decided in one statement) never
    pass through the ORM's flush, so the central hook compares the row itself."""
    spec = TRACKED[model]
    op = "delete" if obj is None else "update"
    after = None if obj is None else snapshot(obj)
    fields = diff(obj_before["values"], after, {"credentials", "api_token", "password", "token_hash"})
    if not fields:
        return None
    return Change(
        spec.kind,
        op,
        (model.__name__, key),
        obj_before["target_id"],
        obj_before["target_name"],
        fields,
        obj_before["organisation_id"],
        obj_before["refs"],
    )


def _pending(session: Session) -> dict[tuple[str, Any], Change]:
    return g.setdefault("audit_pending", {}).setdefault(id(session), {})


def _after_flush(session: Session, _context: Any) -> None:
    if not has_request_context():
        return
    pending = _pending(session)
    for objs, op in ((session.new, "create"), (session.dirty, "update"), (session.deleted, "delete")):
        for obj in list(objs):
            if op == "update" and not session.is_modified(obj, include_collections=True):
                continue
            change = _change(obj, op)
            if change is None:
                continue
            earlier = pending.get(change.key)
            if earlier is not None:  # a second flush of the same row before the commit
                merged = {**earlier.fields}
                for name, values in change.fields.items():
                    merged[name] = {"before": merged.get(name, values)["before"], "after": values["after"]}
                change.fields = {k: v for k, v in merged.items() if v["before"] != v["after"]}
                change.op = earlier.op if earlier.op == "create" else change.op
            pending[change.key] = change


def _after_commit(session: Session) -> None:
    if not has_request_context():
        return
    kept = g.get("audit_pending", {}).pop(id(session), {})
    if kept:
        g.setdefault("audit_changes", []).extend(kept.values())


def _after_transaction_end(session: Session, transaction: Any) -> None:
    # after a commit (its changes moved on already) or a rollback: nothing of this transaction stays
    if has_request_context() and transaction.parent is None:
        g.get("audit_pending", {}).pop(id(session), None)


def committed() -> list[Change]:
    """The tracked changes this request committed so far, in commit order."""
    return list(g.get("audit_changes", []))


_installed = False


def install() -> None:
    """Listen to every ORM session (once per process)."""
    global _installed
    if _installed:
        return
    from backend.db import models

    channel = getattr(models, "NotificationChannel", None)  # the notifications slice's table
    if channel is not None:
        TRACKED[channel] = Tracked("notification", "public_id", "name", origin_only=frozenset({"address"}))
    recovery = getattr(models, "RecoveryKeyRecord", None)  # the recovery passphrase: only its fingerprint
    if recovery is not None:
        TRACKED[recovery] = Tracked(
            "recovery", "fingerprint", "label", frozenset({"organisation_id", "public", "set_at"})
        )
    invitation = getattr(models, "Invitation", None)  # the members slice's table, when it is there
    if invitation is not None:
        TRACKED[invitation] = Tracked(
            "invitation",
            "public_id",
            "email",
            frozenset({"id", "created", "public_id", "organisation_id", "accepted_user_id"}),
        )
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_transaction_end", _after_transaction_end)
    _installed = True
