"""``s3://`` references: objects and prefixes tracked in place by ETag, size and versionId.

``s3://bucket/key?versionId=V`` pins one version. Prefix listings of versioned buckets record
each object's current versionId (one ``ListObjectVersions`` walk, no HEAD per object), so a
download later fetches exactly the logged bytes even after the object was overwritten. The
connection settings are the S3 store's (``ARTIFACT_PLUGINS_S3_*``, then boto3's chain), or, inside
:func:`~artifact_plugins.core.references.references_read_with`, those of an orchestrator's connection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..storage.s3 import (
    S3Options,
    TransferSubscriber,
    describe_error,
    error_code,
    is_not_found,
    make_client,
    make_transfer_manager,
)
from . import BucketReferenceHandler, RemoteObject
from .base import ReferenceChangedError

if TYPE_CHECKING:
    from ..store_access import StoreAccess

_NO_VERSION = {"NoSuchVersion", "InvalidArgument", "400", "MethodNotAllowed", "405"}  # 405: a delete marker
_SMALL = 8 * 2**20


def _etag(raw: str | None) -> str:
    return (raw or "").strip('"')


def _version(raw: str | None) -> str | None:
    return raw if raw and raw != "null" else None


def _object(key: str, size: int, etag: str | None, version_id: str | None) -> RemoteObject:
    tag, vid = _etag(etag), _version(version_id)
    extra: dict[str, Any] = {"etag": tag}
    if vid:
        extra["versionId"] = vid
    return RemoteObject(key=key, size=size, identity=(tag,), version=vid, extra=extra)


class S3ReferenceHandler(BucketReferenceHandler):
    """Tracks S3 objects; fetches the recorded version, or the live object while its ETag is unchanged."""

    schemes = ("s3",)
    scheme = "s3"
    version_field = "versionId"

    def __init__(self, options: S3Options | None = None, access: StoreAccess | None = None) -> None:
        """``access`` (else boto3's chain) supplies the credentials, and its endpoint and region."""
        self._options = options
        self._access = access
        self._lock = threading.Lock()
        self._state: tuple[int, Any, Any, S3Options] | None = None
        self._versioned: dict[str, bool] = {}

    def _connect(self) -> tuple[Any, Any, S3Options]:
        """(client, transfer manager, options) for this process, created on first use."""
        with self._lock:
            if self._state is None or self._state[0] != os.getpid():
                access = self._access
                options = self._options or S3Options.from_env(**dict(access.options if access else ()))
                session = access.session() if access else None
                client = make_client(options, options.transfer_workers + options.max_concurrency, session)
                self._state = (os.getpid(), client, make_transfer_manager(client, options), options)
            _, client, transfers, options = self._state
            return client, transfers, options

    def split(self, uri: str) -> tuple[str, str, str | None]:
        from ..storage import split_bucket_uri

        bucket, key = split_bucket_uri(uri, "s3")
        if "?versionId=" in key:
            key, _, version = key.rpartition("?versionId=")
            return bucket, key, version or None
        return bucket, key, None

    def stat(self, bucket: str, key: str, version: str | None = None) -> RemoteObject | None:
        client, _, _ = self._connect()
        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version:
            args["VersionId"] = version
        try:
            head = client.head_object(**args)
        except ClientError as exc:
            if is_not_found(exc) or (version and error_code(exc) in _NO_VERSION) or error_code(exc) == "405":
                return None
            raise
        return _object(key, int(head["ContentLength"]), head.get("ETag"), head.get("VersionId"))

    def _bucket_versioned(self, bucket: str) -> bool:
        """Whether the bucket keeps versions (unknown, e.g. no permission to ask: treated as no)."""
        if bucket not in self._versioned:
            client, _, _ = self._connect()
            try:
                status = client.get_bucket_versioning(Bucket=bucket).get("Status")
            except ClientError:
                status = None
            self._versioned[bucket] = status in ("Enabled", "Suspended")
        return self._versioned[bucket]

    def list_objects(self, bucket: str, prefix: str) -> Iterator[RemoteObject]:
        client, _, _ = self._connect()
        if self._bucket_versioned(bucket):
            for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
                for v in page.get("Versions", []):
                    if v.get("IsLatest"):
                        yield _object(v["Key"], int(v["Size"]), v.get("ETag"), v.get("VersionId"))
            return
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                yield _object(o["Key"], int(o["Size"]), o.get("ETag"), None)

    def download(self, bucket: str, obj: RemoteObject, dest: str) -> None:
        client, transfers, _ = self._connect()
        # The ETag rides along as If-Match on every request, so a concurrent overwrite cannot slip in.
        etag = obj.identity[0]
        pin: dict[str, Any] = {"VersionId": obj.version} if obj.version else {}
        try:
            if obj.size <= _SMALL:
                body = client.get_object(Bucket=bucket, Key=obj.key, IfMatch=f'"{etag}"', **pin)["Body"].read()
                with open(dest, "wb") as f:
                    f.write(body)
            else:
                subscriber = TransferSubscriber(obj.size, None, etag=etag)
                transfers.download(bucket, obj.key, dest, extra_args=pin, subscribers=[subscriber]).result()
        except ClientError as exc:
            if error_code(exc) in ("412", "PreconditionFailed") or is_not_found(exc):
                raise ReferenceChangedError(
                    f"reference {self.object_uri(bucket, obj.key)} changed while it was being downloaded"
                ) from exc
            raise

    def describe(self, exc: BaseException) -> str:
        return describe_error(exc, self._access.name if self._access else None)[0]
