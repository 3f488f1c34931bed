"""A storage in an Azure Blob container (azure-storage-blob); tested against the Azurite emulator.

With a Retention (backend.storage.immutability) every retained blob is uploaded with a version-level
immutability policy (governance -> "Unlocked", compliance -> "Locked", expiring after the period) and
never over an existing blob; Azure then refuses to delete or overwrite it (409 BlobImmutableDueToPolicy),
which becomes a RetentionLocked. That needs a container with version-level immutability support (set up
through Azure Resource Manager, not the blob API). Azurite implements none of it: it accepts the upload's
policy headers and ignores them, and answers 501 to Set Blob Immutability Policy, so `probe_immutability`
reports it as not enforced, with that reason (docs/operations.md, "Immutable storages").
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient, ImmutabilityPolicy

from backend.storage.base import (
    AlreadyExists,
    NotFound,
    PermanentError,
    RetentionLocked,
    RetryableError,
    Storage,
    check_address,
)
from backend.storage.immutability import PROBE_PREFIX, Retention

POLICY_MODE = {"governance": "Unlocked", "compliance": "Locked"}


def _convert(e: Exception, what: str) -> Exception:
    if isinstance(e, ResourceNotFoundError):
        if str(getattr(e, "error_code", "") or "") == "ContainerNotFound":
            return PermanentError(f"{what}: the container does not exist", reason="missing")
        return NotFound(f"{what} not found")
    if isinstance(e, ResourceExistsError):
        return AlreadyExists(f"{what} already exists")
    if isinstance(e, ClientAuthenticationError):
        return PermanentError(f"Azure refused the credentials for {what}: {e.message}", "credentials")
    if isinstance(e, ServiceRequestError | ServiceResponseError):
        return RetryableError(f"Azure Blob storage unreachable for {what}: {e}", reason="unreachable")
    if isinstance(e, HttpResponseError):
        status = e.status_code or 0
        code = str(getattr(e, "error_code", "") or "")
        if status == 429 or status >= 500:
            return RetryableError(f"Azure answered {status} for {what}")
        if status in (401, 403):
            return PermanentError(
                f"Azure refused the credentials for {what} ({code or status})", "credentials"
            )
        return PermanentError(f"Azure refused {what} ({status}): {e.message}")
    return e


class AzureBlobStorage(Storage):
    def __init__(
        self,
        connection_string: str | None,
        container: str,
        prefix: str = "",
        *,
        account_url: str | None = None,
        credential: Any = None,
        create: bool = True,
        retries: int | None = None,
        retention: Retention | None = None,
    ) -> None:
        """A container from a connection string, or from an account URL and a credential (a storage record).

        With `create` (the URL form) a missing container is made; without it, it is an error that says so.
        `retries` caps the SDK's own retries (a probe wants a quick answer). `retention`: see the module.
        """
        self.retention = retention
        options: dict[str, Any] = {"connection_timeout": 10, "read_timeout": 120}
        if retries is not None:
            options["retry_total"] = retries
        if connection_string:
            self.service = BlobServiceClient.from_connection_string(connection_string, **options)
        else:
            self.service = BlobServiceClient(account_url or "", credential=credential, **options)
        self.container = self.service.get_container_client(container)
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.location = f"azure://{container}/{self.prefix}"
        try:
            if create:
                self.container.create_container()
            else:
                self.container.get_container_properties()
        except ResourceExistsError:
            pass
        except ResourceNotFoundError as e:
            raise PermanentError(f"container {container} does not exist", reason="missing") from e
        except Exception as e:
            raise _convert(e, f"container {container}") from e

    def _blob(self, kind: str, name: str) -> str:
        check_address(kind, name)
        return f"{self.prefix}{kind}/{name}"

    def save(self, kind: str, name: str, data: bytes, exclusive: bool = False) -> None:
        blob = self._blob(kind, name)
        if self.retention and self.retention.applies(kind):
            self._save_retained(kind, name, blob, data, exclusive)
            return
        try:
            self.container.upload_blob(blob, data, overwrite=not exclusive, length=len(data))
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e

    def _save_retained(self, kind: str, name: str, blob: str, data: bytes, exclusive: bool) -> None:
        """Upload once with its policy; a blob already there is never replaced (the same bytes are fine)."""
        assert self.retention is not None
        policy = ImmutabilityPolicy(
            expiry_time=datetime.now(UTC) + self.retention.period,
            policy_mode=POLICY_MODE[self.retention.mode],
        )
        try:
            self.container.upload_blob(
                blob, data, overwrite=False, length=len(data), immutability_policy=policy
            )
            return
        except Exception as e:
            error = _convert(e, f"{kind}/{name}")
            if not isinstance(error, AlreadyExists):
                raise error from e
        if exclusive:
            raise AlreadyExists(f"{kind}/{name} already exists")
        if self.load(kind, name) != data:
            raise RetentionLocked(
                f"{kind}/{name} exists with other content and is immutable: it is never overwritten",
                self._expiry(blob),
            )

    def _expiry(self, blob: str) -> datetime | None:
        """The blob's immutability policy expiry if it is in the future (Azurite never has one)."""
        try:
            policy = self.container.get_blob_client(blob).get_blob_properties().immutability_policy
        except HttpResponseError:
            return None
        expiry = getattr(policy, "expiry_time", None)
        if expiry is None:
            return None
        expiry = expiry if expiry.tzinfo else expiry.replace(tzinfo=UTC)
        return expiry if expiry > datetime.now(UTC) else None

    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        blob = self._blob(kind, name)
        try:
            if offset == 0 and length is None:
                return self.container.download_blob(blob).readall()
            return self.container.download_blob(blob, offset=offset, length=length).readall()
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e

    def stat(self, kind: str, name: str) -> int:
        try:
            return int(self.container.get_blob_client(self._blob(kind, name)).get_blob_properties().size)
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e

    def list(self, kind: str) -> Iterator[str]:
        start = self._blob(kind, "x")[:-1]
        try:
            names = [b.name[len(start) :] for b in self.container.list_blobs(name_starts_with=start)]
        except Exception as e:
            raise _convert(e, f"{kind}/") from e
        yield from sorted(names)

    def remove(self, kind: str, name: str) -> None:
        blob = self._blob(kind, name)
        try:
            if self.retention and self.retention.bypass_governance:
                self._drop_unlocked_policy(blob)
            self.container.delete_blob(blob)
        except Exception as e:
            until = self._expiry(blob) if self.retention and isinstance(e, HttpResponseError) else None
            if until is not None:
                raise RetentionLocked(
                    f"{kind}/{name} is under an immutability policy until "
                    f"{until.isoformat(timespec='seconds')}: the storage refused to delete it",
                    until,
                ) from e
            raise _convert(e, f"{kind}/{name}") from e

    def _drop_unlocked_policy(self, blob: str) -> None:
        """The governance bypass the admin asked for: an "Unlocked" policy may be deleted, then the blob."""
        client = self.container.get_blob_client(blob)
        policy = client.get_blob_properties().immutability_policy
        if getattr(policy, "policy_mode", None) and str(policy.policy_mode).lower() == "unlocked":
            client.delete_immutability_policy()

    def retained_until(self, kind: str, name: str) -> datetime | None:
        if not self.retention:
            return None
        blob = self._blob(kind, name)
        try:
            policy = self.container.get_blob_client(blob).get_blob_properties().immutability_policy
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e
        expiry = getattr(policy, "expiry_time", None)
        if expiry is None:
            return None
        mode = str(getattr(policy, "policy_mode", "") or "").lower()
        if mode == "unlocked" and self.retention.bypass_governance:
            return None
        expiry = expiry if expiry.tzinfo else expiry.replace(tzinfo=UTC)
        return expiry if expiry > datetime.now(UTC) else None

    def probe_immutability(self) -> tuple[bool, str]:
        """Prove the retention: upload a probe blob, give it an "Unlocked" policy for a day, try to delete it
        (Azure must refuse), then drop the policy and the blob. (enforced, what happened)."""
        if not self.retention:
            return False, "immutability is off for this storage"
        blob = self._blob("locks", f"{PROBE_PREFIX}worm-{secrets.token_hex(8)}")
        client = self.container.get_blob_client(blob)
        try:
            client.upload_blob(b"keepstone immutability probe", overwrite=False)
        except Exception as e:
            raise _convert(e, "the immutability probe") from e
        try:
            try:
                client.set_immutability_policy(
                    ImmutabilityPolicy(
                        expiry_time=datetime.now(UTC) + timedelta(days=1), policy_mode="Unlocked"
                    )
                )
            except HttpResponseError as e:
                if e.status_code == 501:
                    return False, (
                        "this Blob service does not implement immutability policies (it answered 501 Not "
                        "Implemented to Set Blob Immutability Policy, as Azurite does): blobs are written "
                        "without a policy and can be deleted"
                    )
                code = str(getattr(e, "error_code", "") or e.status_code)
                return False, (
                    f"the container refused a blob immutability policy ({code}): it needs version-level "
                    "immutability support, set up through Azure Resource Manager"
                )
            try:
                client.delete_blob()
            except HttpResponseError:
                return True, (
                    "version-level immutability is enforced: Azure refused to delete a blob under a policy; "
                    f"blobs are written with {self.retention.describe()}"
                )
            return False, "Azure deleted a blob under an immutability policy: immutability is not enforced"
        finally:
            for cleanup in (client.delete_immutability_policy, client.delete_blob):
                try:
                    cleanup()
                except (HttpResponseError, ResourceNotFoundError):
                    pass

    def close(self) -> None:
        self.service.close()
