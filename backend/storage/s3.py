"""A storage in an S3 bucket (boto3); tested against a local moto server."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from backend.storage.base import (
    AlreadyExists,
    NotFound,
    PermanentError,
    RetryableError,
    Storage,
    check_address,
)

CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "401")


def _convert(e: Exception, what: str) -> Exception:
    if isinstance(e, BotoConnectionError):  # refused, timed out, DNS, TLS
        return RetryableError(f"S3 unreachable for {what}: {e}", reason="unreachable")
    if isinstance(e, ClientError):
        code = str(e.response.get("Error", {}).get("Code", ""))
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code == "NoSuchBucket":
            return PermanentError(f"{what}: the bucket does not exist", reason="missing")
        if code in ("NoSuchKey", "404", "NotFound"):
            return NotFound(f"{what} not found")
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
            return AlreadyExists(f"{what} already exists")
        if status == 429 or status >= 500 or code in ("SlowDown", "RequestTimeout"):
            return RetryableError(f"S3 answered {code or status} for {what}")
        if status in (401, 403) or code in CREDENTIAL_CODES:
            return PermanentError(f"S3 refused the credentials for {what} ({code or status})", "credentials")
        return PermanentError(f"S3 refused {what}: {code} {e}")
    if isinstance(e, BotoCoreError):
        return RetryableError(f"S3 failed for {what}: {e}")
    return e


class S3Storage(Storage):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        create: bool = True,
    ) -> None:
        """Open a bucket; with `create` (the URL form) a missing bucket is made, else it is an error."""
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.location = f"s3://{bucket}/{self.prefix}"
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                retries={"max_attempts": 1},
                s3={"addressing_style": "path"},
                connect_timeout=10,
                read_timeout=120,
            ),
        )
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as e:
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if not create:
                if status == 404:
                    raise PermanentError(f"bucket {bucket} does not exist", reason="missing") from e
                raise _convert(e, f"bucket {bucket}") from e
            try:
                self.client.create_bucket(Bucket=bucket)
            except Exception as e:
                raise _convert(e, f"bucket {bucket}") from e
        except Exception as e:
            raise _convert(e, f"bucket {bucket}") from e

    def _key(self, kind: str, name: str) -> str:
        check_address(kind, name)
        return f"{self.prefix}{kind}/{name}"

    def save(self, kind: str, name: str, data: bytes, exclusive: bool = False) -> None:
        extra = {"IfNoneMatch": "*"} if exclusive else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(kind, name), Body=data, **extra)
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e

    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        extra = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            extra["Range"] = f"bytes={offset}-{end}"
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(kind, name), **extra)[
                "Body"
            ].read()
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e

    def stat(self, kind: str, name: str) -> int:
        try:
            return int(
                self.client.head_object(Bucket=self.bucket, Key=self._key(kind, name))["ContentLength"]
            )
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e

    def list(self, kind: str) -> Iterator[str]:
        start = self._key(kind, "x")[:-1]
        names = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start
            ):
                names.extend(o["Key"][len(start) :] for o in page.get("Contents", []))
        except Exception as e:
            raise _convert(e, f"{kind}/") from e
        yield from sorted(names)

    def remove(self, kind: str, name: str) -> None:
        self.stat(kind, name)  # S3 deletes missing keys silently; the interface says NotFound
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(kind, name))
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e

    def close(self) -> None:
        self.client.close()
