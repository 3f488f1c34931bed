"""A storage in an S3 bucket (boto3); tested against a local moto server.

With a Retention (backend.storage.immutability) the bucket must have Object Lock enabled (which makes it
versioned): every retained object is written with its own lock (mode and retain-until date, so no bucket
default rule is needed, and none may exist: it would lock the lock files too), never over an existing
object, and removing one deletes its versions by id, which S3 refuses while the retention lasts (a plain
DELETE would only hide the object behind a delete marker and keep its bytes). Such a refusal is a
RetentionLocked naming the object and the retention end.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

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
        retention: Retention | None = None,
    ) -> None:
        """Open a bucket; with `create` (the URL form) a missing bucket is made, else it is an error.

        With `retention`, a bucket made here gets Object Lock; an existing one without it is opened, but
        every retained write is refused (`lock_problem` says why): nothing is stored unprotected.
        """
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
                extra = {"ObjectLockEnabledForBucket": True} if retention else {}
                self.client.create_bucket(Bucket=bucket, **extra)
            except Exception as e:
                raise _convert(e, f"bucket {bucket}") from e
        except Exception as e:
            raise _convert(e, f"bucket {bucket}") from e
        self.retention = retention
        self.lock_problem = self._lock_problem() if retention else ""

    def _lock_problem(self) -> str:
        """Why this bucket cannot hold retained objects ('' if it can)."""
        try:
            conf = self.client.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code == "ObjectLockConfigurationNotFoundError":
                conf = {}
            else:
                raise _convert(e, f"bucket {self.bucket}") from e
        except Exception as e:
            raise _convert(e, f"bucket {self.bucket}") from e
        if conf.get("ObjectLockEnabled") != "Enabled":
            return (
                f"bucket {self.bucket} has no Object Lock, so its objects cannot be made immutable: create "
                "the bucket with Object Lock enabled, or set this storage's immutability to none"
            )
        if conf.get("Rule", {}).get("DefaultRetention"):
            return (
                f"bucket {self.bucket} has a default retention rule: it would lock the repository's lock "
                "files too; remove the rule (Keepstone sets the retention of each object it writes)"
            )
        return ""

    def _key(self, kind: str, name: str) -> str:
        check_address(kind, name)
        return f"{self.prefix}{kind}/{name}"

    def save(self, kind: str, name: str, data: bytes, exclusive: bool = False) -> None:
        key = self._key(kind, name)
        if self.retention and self.retention.applies(kind):
            self._save_retained(kind, name, key, data, exclusive)
            return
        extra = {"IfNoneMatch": "*"} if exclusive else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e

    def _save_retained(self, kind: str, name: str, key: str, data: bytes, exclusive: bool) -> None:
        """Write once with its lock; an object already there is never replaced (the same bytes are fine)."""
        assert self.retention is not None
        if self.lock_problem:
            raise PermanentError(f"{kind}/{name} not written: {self.lock_problem}", reason="immutability")
        until = datetime.now(UTC) + self.retention.period
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                IfNoneMatch="*",
                ObjectLockMode=self.retention.mode.upper(),
                ObjectLockRetainUntilDate=until,
            )
            return
        except Exception as e:
            error = _convert(e, f"{kind}/{name}")
            if not isinstance(error, AlreadyExists):
                raise error from e
        if exclusive:
            raise AlreadyExists(f"{kind}/{name} already exists")
        if self.load(kind, name) != data:  # write-once names: another content is an overwrite, refused
            raise RetentionLocked(
                f"{kind}/{name} exists with other content and is immutable: it is never overwritten",
                self._retain_until(key),
            )

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
        if self.retention:
            self._remove_versions(kind, name)
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(kind, name))
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e

    def _remove_versions(self, kind: str, name: str) -> None:
        """Delete every version of the object by id (newest first): S3 refuses one under retention."""
        key = self._key(kind, name)
        try:
            page = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e
        versions = [v for v in page.get("Versions", []) if v["Key"] == key]
        markers = [m for m in page.get("DeleteMarkers", []) if m["Key"] == key]
        if not versions:
            raise NotFound(f"{kind}/{name} not found")
        extra = (
            {"BypassGovernanceRetention": True} if self.retention and self.retention.bypass_governance else {}
        )
        for version in sorted(versions, key=lambda v: v["LastModified"], reverse=True) + markers:
            try:
                self.client.delete_object(
                    Bucket=self.bucket, Key=key, VersionId=version["VersionId"], **extra
                )
            except Exception as e:
                error = _convert(e, f"{kind}/{name}")
                until = self._retain_until(key, version["VersionId"]) if isinstance(e, ClientError) else None
                if until is not None:
                    mode = self.retention.mode if self.retention else "object lock"
                    raise RetentionLocked(
                        f"{kind}/{name} is under {mode} retention until {until.isoformat(timespec='seconds')}:"
                        " the storage refused to delete it",
                        until,
                    ) from e
                raise error from e

    def _retain_until(self, key: str, version: str | None = None) -> datetime | None:
        """The retain-until date of the object (or one version) if it is still in the future."""
        extra = {"VersionId": version} if version else {}
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError:
            return None
        until = head.get("ObjectLockRetainUntilDate")
        if until is None or head.get("ObjectLockMode") is None:
            return None
        until = until.astimezone(UTC)
        return until if until > datetime.now(UTC) else None

    def retained_until(self, kind: str, name: str) -> datetime | None:
        if not self.retention:
            return None
        key = self._key(kind, name)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as e:
            raise _convert(e, f"{kind}/{name}") from e
        until, mode = head.get("ObjectLockRetainUntilDate"), head.get("ObjectLockMode")
        if until is None or mode is None:
            return None
        if mode == "GOVERNANCE" and self.retention.bypass_governance:
            return None  # the admin asked to remove governance-retained objects early
        until = until.astimezone(UTC)
        return until if until > datetime.now(UTC) else None

    def probe_immutability(self) -> tuple[bool, str]:
        """Prove the retention: write a probe object locked for two seconds (by the server's clock), try to
        delete it (S3 must refuse), then delete it once its lock ends. (enforced, what happened)."""
        if not self.retention:
            return False, "immutability is off for this storage"
        if self.lock_problem:
            return False, self.lock_problem
        key = self._key("locks", f"{PROBE_PREFIX}worm-{secrets.token_hex(8)}")
        try:
            head = self.client.head_bucket(Bucket=self.bucket)
            date = head["ResponseMetadata"]["HTTPHeaders"].get("date")
            server_now = parsedate_to_datetime(date).astimezone(UTC) if date else datetime.now(UTC)
            until = server_now + timedelta(seconds=2)
            put = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=b"keepstone immutability probe",
                ObjectLockMode=self.retention.mode.upper(),
                ObjectLockRetainUntilDate=until,
            )
        except Exception as e:
            raise _convert(e, "the immutability probe") from e
        version = put.get("VersionId")
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version)
        except ClientError:
            enforced = True
        else:
            return False, "S3 deleted an object version under retention: Object Lock is not enforced"
        finally_deleted = False
        deadline = time.monotonic() + 8
        while not finally_deleted and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version)
                finally_deleted = True
            except ClientError:
                continue
        note = "" if finally_deleted else " (the probe object stays until its 2-second lock ends)"
        return enforced, (
            f"Object Lock is enforced: S3 refused to delete an object under {self.retention.mode} "
            f"retention{note}; objects are written with {self.retention.describe()}"
        )

    def close(self) -> None:
        self.client.close()
