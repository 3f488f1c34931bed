"""A storage in an Azure Blob container (azure-storage-blob); tested against the Azurite emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient

from backend.storage.base import (
    AlreadyExists,
    NotFound,
    PermanentError,
    RetryableError,
    Storage,
    check_address,
)


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
    ) -> None:
        """A container from a connection string, or from an account URL and a credential (a storage record).

        With `create` (the URL form) a missing container is made; without it, it is an error that says so.
        `retries` caps the SDK's own retries (a probe wants a quick answer).
        """
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
        try:
            self.container.upload_blob(blob, data, overwrite=not exclusive, length=len(data))
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e

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
        try:
            self.container.delete_blob(self._blob(kind, name))
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e

    def close(self) -> None:
        self.service.close()
