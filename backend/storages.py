"""Storage records: where a plan's backups go (a local folder, an Azure Blob container, an S3 bucket).

What the management service needs of a record, whoever asks (the API, a run):
- the service's rules for a location (`check_endpoint`, `local_folder`): a local folder stays under
  KEEPSTONE_STORAGE_ROOT/<cloud_id>/; an endpoint is https, names a host the service may contact, and is
  neither a private address nor a bare number unless the operator listed its host;
- credentials sealed with backend/vault.py, bound to the organisation and the storage (`seal_credentials`);
- opening a record's storage (`open_target`) with backend/storage, never falling back to the service's own
  credentials (no environment variables, no connection string of the server);
- the probe behind POST /api/v1/storages/{id}/test (`probe`): write, read, list and delete one object, and
  say which step failed and why; with immutability, prove it (a locked probe object the storage must refuse
  to delete) or say why it is not enforced.
Nothing here ever returns or logs a credential: messages from the storages pass through `redact`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from backend import vault
from backend.config import Config
from backend.storage import Storage, StorageError
from backend.storage.immutability import Retention
from backend.storage.retry import RetryingStorage

KINDS = ("local", "azure", "s3")
PROBE_STEPS = ("connect", "write", "read", "list", "delete", "immutability")
# One path segment: no empty segments, none starting with a dot (so no "..", no hidden folders).
SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}"
LOCAL_PATH = re.compile(rf"^{SEGMENT}(/{SEGMENT}){{0,9}}$")
PREFIX = re.compile(rf"^({SEGMENT}(/{SEGMENT}){{0,9}})?$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class LocationRefused(Exception):
    """A location breaks the service's rules; `field` names the part of the body (e.g. location.endpoint)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _hosts(value: str) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in value.split(",") if h.strip())


def _private_or_odd(host: str) -> bool:
    """Loopback, private, link-local, reserved: an IP literal in those ranges, localhost, or a name that
    is not a dotted DNS name with a non-numeric last label ("2130706433" and "127.1" are addresses too)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        if host in ("localhost",) or host.endswith(".localhost") or len(labels) < 2:
            return True
        if not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
            return True
        return bool(re.fullmatch(r"0x[0-9a-f]*", labels[-1]))  # inet_aton reads "1.0x7f" as an address
    return not ip.is_global or ip.is_multicast


def check_endpoint(url: str, config: Config, field_name: str) -> str:
    """The endpoint if the service may contact it, else LocationRefused naming the field. Nothing is
    contacted here (not even DNS): this is decided from the URL and the configuration alone."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise LocationRefused(field_name, "not a URL with a valid host and port") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise LocationRefused(field_name, "an endpoint is an https:// URL with a host")
    if "@" in parts.netloc:
        raise LocationRefused(field_name, "no user or password in the URL: put them in credentials")
    if parts.query or parts.fragment:
        raise LocationRefused(field_name, "an endpoint has no query or fragment")
    allowed, http_ok = _hosts(config.storage_hosts), _hosts(config.storage_http_hosts)
    listed = host in allowed or host in http_ok
    if allowed and not listed:
        raise LocationRefused(
            field_name, f"host {host} is not one this service may contact (KEEPSTONE_STORAGE_HOSTS)"
        )
    if scheme == "http" and host not in http_ok:
        raise LocationRefused(
            field_name, "use https: plain http is allowed only for the hosts in KEEPSTONE_STORAGE_HTTP_HOSTS"
        )
    if not listed and _private_or_odd(host):
        raise LocationRefused(
            field_name,
            f"{host} is a loopback, private or unqualified address; the operator must list it in "
            "KEEPSTONE_STORAGE_HOSTS",
        )
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def local_folder(config: Config, cloud_id: str, path: str) -> Path:
    """The folder of a local storage: under <storage root>/<cloud_id>/, never outside it (no "..", no
    absolute paths, no symlink out)."""
    if not isinstance(path, str) or not LOCAL_PATH.match(path):
        raise LocationRefused(
            "location.path",
            "a folder relative to the storage root: letters, digits, . _ - and /; no '..', no leading / or .",
        )
    assert config.storage_root is not None
    base = (config.storage_root / cloud_id).resolve()
    folder = (base / path).resolve()
    if not folder.is_relative_to(base) or folder == base:
        raise LocationRefused("location.path", "the folder must stay inside the storage root")
    return folder


def check_location(kind: str, location: dict[str, Any], config: Config, cloud_id: str) -> None:
    """The service's rules for a (schema-valid) location of this kind; LocationRefused names the field."""
    if kind == "local":
        local_folder(config, cloud_id, location["path"])
    elif kind == "azure":
        location["account_url"] = check_endpoint(location["account_url"], config, "location.account_url")
    elif kind == "s3":
        location["endpoint"] = check_endpoint(location["endpoint"], config, "location.endpoint")


def _context(cloud_id: str, public_id: str) -> str:
    return f"storage-credentials:{cloud_id}:{public_id}"


def seal_credentials(
    config: Config, cloud_id: str, public_id: str, creds: dict[str, Any] | None
) -> str | None:
    """The credentials as sealed text bound to this organisation and storage (None when there are none)."""
    if not creds:
        return None
    return vault.seal(config.secret_key, json.dumps(creds, sort_keys=True), _context(cloud_id, public_id))


@dataclass(frozen=True)
class Target:
    """A storage record detached from the database, credentials unsealed (never printed: repr=False)."""

    public_id: str
    name: str
    kind: str
    location: dict[str, Any]
    cloud_id: str
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)
    immutability: dict[str, Any] = field(default_factory=dict)  # {"mode", "retain_days"}

    @property
    def label(self) -> str:
        return f"storage {self.name!r} ({self.public_id}, {self.kind})"

    def secrets(self) -> list[str]:
        return [str(v) for v in self.credentials.values() if v]


def target_of(record: Any, config: Config, cloud_id: str) -> Target:
    """A record's Target; ValueError if its credentials cannot be unsealed with this secret key."""
    creds: dict[str, Any] = {}
    if record.credentials_sealed:
        creds = json.loads(
            vault.unseal(config.secret_key, record.credentials_sealed, _context(cloud_id, record.public_id))
        )
    settings = {k: v for k, v in (record.immutability or {}).items() if k in ("mode", "retain_days")}
    return Target(
        record.public_id, record.name, record.kind, dict(record.location), cloud_id, creds, settings
    )


def describe(kind: str, location: dict[str, Any], config: Config, cloud_id: str) -> str:
    """Where a storage is, as a URL without any secret (what a plan's storage_url shows)."""
    if kind == "local":
        try:
            return f"file://{local_folder(config, cloud_id, location.get('path', ''))}"
        except LocationRefused:
            return "file://(outside the storage root)"
    prefix = location.get("prefix", "")
    if kind == "azure":
        return f"azure://{location.get('container')}/{prefix}?account_url={location.get('account_url')}"
    return f"s3://{location.get('bucket')}/{prefix}?endpoint_url={location.get('endpoint')}"


def redact(text: str, secrets_: list[str]) -> str:
    for value in sorted(secrets_, key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "[redacted]")
    return text


def retention_of(target: Target, bypass_governance: bool = False) -> Retention | None:
    """The record's immutability as the storages take it (None: none); LocationRefused if unusable."""
    try:
        return Retention.from_settings(target.immutability, bypass_governance)
    except ValueError as e:
        raise LocationRefused("immutability", str(e)) from None


def open_target(
    target: Target, config: Config, quick: bool = False, bypass_governance: bool = False
) -> Storage:
    """Open a record's storage. The location is checked against the service's rules again (they may have
    changed since it was stored). A container or bucket is never created: missing is an error that says
    so. `quick` (the probe): no retries, so that an unreachable storage answers at once. Immutability
    settings are applied (every retained object written locked); `bypass_governance` only when an admin
    explicitly asked to remove governance-retained objects early."""
    location = dict(target.location)
    check_location(target.kind, location, config, target.cloud_id)
    retention = retention_of(target, bypass_governance)
    if retention and target.kind == "local":
        raise LocationRefused("immutability", "a local folder cannot enforce immutability: use none")
    creds = target.credentials
    inner: Storage
    if target.kind == "local":
        from backend.storage.local import LocalStorage

        inner = LocalStorage(local_folder(config, target.cloud_id, location["path"]))
    elif target.kind == "azure":
        from backend.storage.azure import AzureBlobStorage

        credential = {"account_name": location["account_name"], "account_key": creds.get("account_key", "")}
        inner = AzureBlobStorage(
            None,
            location["container"],
            location.get("prefix", ""),
            account_url=location["account_url"],
            credential=credential,
            create=False,
            retries=0 if quick else None,
            retention=retention,
        )
    elif target.kind == "s3":
        from backend.storage.s3 import S3Storage

        inner = S3Storage(
            location["bucket"],
            location.get("prefix", ""),
            endpoint_url=location["endpoint"],
            region=location.get("signing_region") or "us-east-1",
            access_key=creds.get("access_key_id", ""),
            secret_key=creds.get("secret_access_key", ""),
            create=False,
            retention=retention,
        )
    else:
        raise LocationRefused("kind", f"unknown storage kind {target.kind!r}")
    return inner if quick else RetryingStorage(inner)


def immutability_settings(immutability: dict[str, Any] | None) -> dict[str, Any]:
    """The admin's settings alone (mode, retain_days), without what a test found."""
    return {k: v for k, v in (immutability or {"mode": "none"}).items() if k in ("mode", "retain_days")}


def remember_check(record: Any, tested: dict[str, Any], found: dict[str, Any] | None) -> None:
    """Keep on a storage record what a probe proved about its immutability (`found`: the probe's
    `immutability`), unless the record's settings changed while it ran. The caller commits."""
    if found is None or immutability_settings(record.immutability) != immutability_settings(tested):
        return
    record.immutability = {
        **immutability_settings(record.immutability),
        "enforced": bool(found["enforced"]),
        "reason": found["message"],
        "checked": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# --- the probe --------------------------------------------------------------------------------------


@dataclass
class ProbeResult:
    ok: bool
    steps: list[dict[str, str]]
    failed_step: str | None = None
    reason: str | None = None
    field: str | None = None
    message: str = ""
    # {"enforced": bool, "message": str} when the probe reached the immutability step, else None
    immutability: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "steps": self.steps,
            "failed_step": self.failed_step,
            "reason": self.reason,
            "field": self.field,
            "message": self.message,
            "immutability": self.immutability,
        }


REASONS = (
    "wrong_credentials",
    "missing_container",
    "unreachable",
    "not_allowed",
    "mismatch",
    "not_enforced",
    "storage_error",
)


def _why(target: Target, e: StorageError) -> tuple[str, str]:
    """The reason code and the body field to blame for a storage error."""
    endpoint = {"azure": "location.account_url", "s3": "location.endpoint"}.get(target.kind, "location.path")
    container = {"azure": "location.container", "s3": "location.bucket"}.get(target.kind, "location.path")
    reason = getattr(e, "reason", "")
    if reason == "credentials":
        return "wrong_credentials", "credentials"
    if reason == "missing":
        return "missing_container", container
    if reason == "unreachable":
        return "unreachable", endpoint
    return "storage_error", "location" if target.kind != "local" else "location.path"


EXPLAIN = {
    "wrong_credentials": "the storage refused these credentials",
    "missing_container": "the container or bucket does not exist (create it first: Keepstone never creates one)",
    "unreachable": "the storage could not be reached",
    "not_enforced": "immutability is not enforced",
    "storage_error": "the storage failed",
}


def probe(target: Target, config: Config) -> ProbeResult:
    """Write, read, list and delete one probe object (locks/keepstone-probe-<random>, an object the
    repository's lock reader skips); the first failing step is the answer. The probe object is removed
    whatever step failed after it was written. With immutability, the last step proves it: the storage
    writes a probe object locked for a moment and must refuse to delete it (`probe_immutability` of the
    S3 and Azure storages); a storage that does not enforce it fails that step with the reason."""
    steps = {step: "skipped" for step in PROBE_STEPS}
    notes = {step: "" for step in PROBE_STEPS}
    if not target.immutability or target.immutability.get("mode", "none") == "none":
        notes["immutability"] = "immutability is off for this storage"
    hidden = target.secrets()

    def result(failed: str | None, reason: str | None, field_name: str | None, message: str) -> ProbeResult:
        message = redact(message, hidden)[:500]
        if failed:
            steps[failed], notes[failed] = "failed", message
        return ProbeResult(
            failed is None,
            [{"step": s, "status": steps[s], "message": notes[s]} for s in PROBE_STEPS],
            failed,
            reason,
            field_name,
            message or "the storage answered every step",
        )

    try:
        storage = open_target(target, config, quick=True)
    except LocationRefused as e:
        return result("connect", "not_allowed", e.field, e.message)
    except StorageError as e:
        reason, field_name = _why(target, e)
        return result("connect", reason, field_name, f"{EXPLAIN[reason]}: {e}")
    steps["connect"] = "ok"
    name = f"keepstone-probe-{secrets.token_hex(8)}"
    payload = os.urandom(256)
    written = False
    checked: dict[str, Any] | None = None
    try:
        for step in PROBE_STEPS[1:]:
            if step == "immutability" and getattr(storage, "retention", None) is None:
                continue
            try:
                if step == "write":
                    storage.save("locks", name, payload, exclusive=True)
                    written = True
                elif step == "read":
                    if storage.load("locks", name) != payload:
                        return result("read", "mismatch", None, "the probe object read back differs")
                elif step == "list":
                    if name not in set(storage.list("locks")):
                        return result("list", "mismatch", None, "the probe object is missing from the list")
                elif step == "delete":
                    storage.remove("locks", name)
                    written = False
                else:
                    enforced, note = storage.probe_immutability()  # type: ignore[attr-defined]
                    checked = {"enforced": enforced, "message": redact(note, hidden)[:500]}
                    if not enforced:
                        failed = result(
                            "immutability",
                            "not_enforced",
                            "immutability",
                            note,
                        )
                        failed.immutability = checked
                        return failed
                    notes[step] = checked["message"]
            except StorageError as e:
                reason, field_name = _why(target, e)
                return result(step, reason, field_name, f"{EXPLAIN[reason]} at {step}: {e}")
            steps[step] = "ok"
        done = result(None, None, None, "")
        done.immutability = checked
        return done
    finally:
        if written:
            try:
                storage.remove("locks", name)
            except StorageError:
                pass
        storage.close()
