"""A repository's key files (`keys/<name>`), as restic's `key` command: list, add, remove, change a password.

Each key file wraps the same random master keys (backend.repository.crypto): under a password
(`kind: password`, what the service's own key and every CLI user's key are) or to the organisation's
recovery key (`kind: recovery`, opened by the recovery passphrase). Changing a wrap writes and removes key
files only: no pack, index or snapshot is touched. The plaintext fields beside the wrap (label, host,
username, created) are for people and are not authenticated: the storage could change them, as in restic.

Write order: a new key file is written (and read back) before an old one is removed, so a crash between
leaves one more key, never none. A repository keeps at least one key, and never loses the one in use.
A key file written before these fields existed (version 1, no `kind`) is `legacy`: it opens as before and
`upgrade_legacy` gives it the new fields by writing a copy of the same wrap (same salt, same sealed bytes).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backend.repository.crypto import (
    IntegrityError,
    MasterKeys,
    RecoveryKey,
    WrongPassword,
    unwrap_keys,
    wrap_keys,
    wrap_keys_for_recovery,
)
from backend.repository.model import RepositoryError
from backend.storage import NotFound, Storage

if TYPE_CHECKING:
    from backend.repository.repository import Repository

KEY_VERSION = 2
MAX_LABEL = 200


class KeyRefused(RepositoryError):
    """A key operation that would lock people out or names no key: {detail}. Nothing was changed."""


@dataclass(frozen=True)
class KeyInfo:
    """What `keepstone key list` shows of one key file."""

    id: str
    kind: str  # password | recovery | legacy (a version 1 key file, no fields)
    label: str
    host: str
    username: str
    created: str
    fingerprint: str  # recovery keys: the recovery key's fingerprint; "" otherwise
    current: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _fields(label: str, host: str | None, username: str | None) -> dict[str, str]:
    label = label.strip()
    if len(label) > MAX_LABEL or any(ord(c) < 32 for c in label):
        raise KeyRefused(f"a key label is at most {MAX_LABEL} printable characters")
    return {
        "label": label,
        "host": socket.gethostname() if host is None else host,
        "username": _user() if username is None else username,
        "created": _now(),
    }


def _name(doc: dict[str, Any]) -> tuple[str, bytes]:
    raw = json.dumps(doc).encode()
    return hashlib.sha256(raw).hexdigest()[:32], raw


def password_key_file(
    keys: MasterKeys, password: str, label: str = "", host: str | None = None, username: str | None = None
) -> dict[str, Any]:
    """A version 2 key file wrapping `keys` under `password` (scrypt), with its plaintext fields."""
    if not password:
        raise KeyRefused("a key needs a non-empty password")
    return {**wrap_keys(keys, password), "version": KEY_VERSION, "kind": "password",
            **_fields(label, host, username)}  # fmt: skip


def recovery_key_file(keys: MasterKeys, recovery: RecoveryKey, label: str = "") -> dict[str, Any]:
    """A version 2 key file wrapping `keys` to the recovery key (no passphrase needed to write it)."""
    return {**wrap_keys_for_recovery(keys, recovery), "kind": "recovery",
            "fingerprint": recovery.fingerprint, **_fields(label, "", "")}  # fmt: skip


def save_key_file(storage: Storage, doc: dict[str, Any]) -> str:
    """Write a key file under the name of its content and read it back; its name."""
    name, raw = _name(doc)
    storage.save("keys", name, raw)
    if storage.load("keys", name) != raw:
        raise IntegrityError(f"key file {name[:8]} did not read back as written")
    return name


def find_key(storage: Storage, password: str) -> tuple[str, MasterKeys]:
    """The first key file this password opens, and the master keys; WrongPassword if none does.

    Password keys are tried before recovery keys: each try costs a scrypt, and the service opens with
    its password far more often than anyone with the passphrase."""
    docs = [(name, doc) for name in sorted(storage.list("keys")) if (doc := _read(storage, name)) is not None]
    for name, doc in sorted(docs, key=lambda item: item[1].get("kind") == "recovery"):
        try:
            return name, unwrap_keys(doc, password)
        except (WrongPassword, IntegrityError, ValueError, TypeError, AttributeError):
            continue  # another password's key, or a damaged file
    raise WrongPassword("the password does not open this repository")


def _read(storage: Storage, name: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(storage.load("keys", name))
    except (NotFound, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _info(name: str, doc: dict[str, Any], current: str | None) -> KeyInfo:
    kind = str(doc.get("kind") or "legacy")
    text = {k: str(doc.get(k) or "") for k in ("label", "host", "username", "created", "fingerprint")}
    return KeyInfo(name, kind, **text, current=name == current)


def list_keys(repo: Repository) -> list[KeyInfo]:
    """Every readable key file, oldest first (legacy ones, which have no time, first)."""
    out = []
    for name in sorted(repo.storage.list("keys")):
        doc = _read(repo.storage, name)
        if doc is not None:
            out.append(_info(name, doc, repo.key_name))
    return sorted(out, key=lambda k: (k.created, k.id))


def resolve_key(repo: Repository, prefix: str) -> str:
    """The key file a prefix (at least 4 characters) names; KeyRefused if none or several."""
    prefix = prefix.strip().lower()
    matches = [n for n in repo.storage.list("keys") if n.startswith(prefix)] if len(prefix) >= 4 else []
    if not matches:
        raise KeyRefused(f"no key matches {prefix!r} (see `keepstone key list`)")
    if len(matches) > 1:
        raise KeyRefused(f"{prefix!r} matches {len(matches)} keys; give more characters")
    return matches[0]


def add_key(
    repo: Repository, password: str, label: str = "", host: str | None = None, username: str | None = None
) -> KeyInfo:
    """Add a key file for another password; the repository's data is not touched."""
    doc = password_key_file(repo.keys, password, label, host, username)
    return _info(save_key_file(repo.storage, doc), doc, repo.key_name)


def remove_key(repo: Repository, prefix: str) -> KeyInfo:
    """Remove a key file; refused for the key in use and for the last key that opens the repository."""
    name = resolve_key(repo, prefix)
    if name == repo.key_name:
        raise KeyRefused(
            f"key {name[:8]} is the one this command opened the repository with; open it with another "
            "key to remove this one (or use `keepstone key passwd` to replace it)"
        )
    others = [n for n in repo.storage.list("keys") if n != name and _read(repo.storage, n) is not None]
    if not others:
        raise KeyRefused(f"key {name[:8]} is the repository's last key: removing it would lock everyone out")
    doc = _read(repo.storage, name) or {}
    repo.storage.remove("keys", name)
    return _info(name, doc, repo.key_name)


def change_password(repo: Repository, new_password: str) -> tuple[KeyInfo, KeyInfo]:
    """Replace the key in use by one for a new password (same label); (old, new). New first, then old."""
    old_name = repo.key_name
    if old_name is None:
        raise KeyRefused("this repository was not opened with a key file")
    old = _read(repo.storage, old_name) or {}
    if old.get("kind") == "recovery":
        raise KeyRefused(
            "the key in use is the organisation's recovery key: the service replaces it "
            "(set the recovery passphrase again); open with another key to change a password"
        )
    label = str(old.get("label") or "")
    doc = password_key_file(repo.keys, new_password, label)
    new_name = save_key_file(repo.storage, doc)
    repo.key_name = new_name
    repo.storage.remove("keys", old_name)
    return _info(old_name, old, None), _info(new_name, doc, new_name)


def upgrade_legacy(repo: Repository, label: str = "") -> KeyInfo | None:
    """Give the legacy key in use the version 2 fields: a copy of the same wrap (salt, sealed bytes) under
    a new name is written, then the old file removed. None when the key in use is not legacy."""
    name = repo.key_name
    doc = _read(repo.storage, name) if name else None
    if doc is None or doc.get("kind"):
        return None
    # Who made it and when is unknown (the legacy file did not record it); `upgraded` says when this was.
    upgraded = {**doc, "version": KEY_VERSION, "kind": "password", **_fields(label, "", "")}
    upgraded["created"], upgraded["upgraded"] = "", _now()
    new_name = save_key_file(repo.storage, upgraded)
    repo.key_name = new_name
    repo.storage.remove("keys", name)
    return _info(new_name, upgraded, new_name)


def set_recovery(repo: Repository, recovery: RecoveryKey | None, label: str = "") -> dict[str, list[str]]:
    """Make the recovery key files match `recovery`: one wrap to it (written first, if missing), none to
    any other recovery key (removed after). None removes every recovery key file. Names added/removed."""
    added: list[str] = []
    keep = None
    existing = [k for k in list_keys(repo) if k.kind == "recovery"]
    if recovery is not None:
        found = [k.id for k in existing if k.fingerprint == recovery.fingerprint]
        keep = (
            found[0] if found else save_key_file(repo.storage, recovery_key_file(repo.keys, recovery, label))
        )
        if not found:
            added.append(keep)
    removed = []
    for key in existing:
        if key.id != keep and key.id != repo.key_name:
            with suppress(NotFound):  # a run bringing the same repository up to date removed it first
                repo.storage.remove("keys", key.id)
            removed.append(key.id)
    return {"added": added, "removed": removed}
