"""``gs://`` references: objects and prefixes tracked in place by MD5/CRC32C, size and generation.

``gs://bucket/key#G`` pins generation ``G``. Every listed object's generation is recorded, so a
download fetches exactly the logged bytes while the bucket keeps that generation (object
versioning), else the live object while its content hashes are unchanged. The connection
settings are the GCS store's (``ARTIFACT_PLUGINS_GCS_*``, Application Default Credentials,
``STORAGE_EMULATOR_HOST``), or, inside :func:`~artifact_plugins.core.references.references_read_with`,
the credentials of an orchestrator's connection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as api_exceptions

from ..storage.gcs import GCSOptions, describe_error, download_ranges, make_client
from . import BucketReferenceHandler, RemoteObject
from .base import ReferenceChangedError

if TYPE_CHECKING:
    from ..store_access import StoreAccess

_FIELDS = "items(name,size,generation,md5Hash,crc32c,etag),nextPageToken"


def _object(blob: Any) -> RemoteObject:
    md5, crc = blob.md5_hash or "", blob.crc32c or ""
    generation = str(blob.generation) if blob.generation is not None else None
    extra: dict[str, Any] = {"generation": generation, "md5": md5, "crc32c": crc}
    if blob.etag:
        extra["etag"] = blob.etag
    return RemoteObject(key=blob.name, size=int(blob.size or 0), identity=(md5, crc), version=generation, extra=extra)


class GCSReferenceHandler(BucketReferenceHandler):
    """Tracks Cloud Storage objects; fetches the recorded generation, or the live object while unchanged."""

    schemes = ("gs",)
    scheme = "gs"
    version_field = "generation"

    def __init__(self, options: GCSOptions | None = None, access: StoreAccess | None = None) -> None:
        """``access`` (else ADC) supplies the credentials and the project."""
        self._options = options
        self._access = access
        self._lock = threading.Lock()
        self._state: tuple[int, Any, ThreadPoolExecutor, GCSOptions] | None = None

    def _connect(self) -> tuple[Any, ThreadPoolExecutor, GCSOptions]:
        """(client, part pool, options) for this process, created on first use."""
        with self._lock:
            if self._state is None or self._state[0] != os.getpid():
                access = self._access
                options = self._options or GCSOptions.from_env(**dict(access.options if access else ()))
                credentials = access.session() if access else None
                client = make_client(options, options.transfer_workers + options.max_concurrency, credentials)
                pool = ThreadPoolExecutor(options.max_concurrency, thread_name_prefix="artifact-plugins-gs-ref")
                self._state = (os.getpid(), client, pool, options)
            _, client, pool, options = self._state
            return client, pool, options

    def split(self, uri: str) -> tuple[str, str, str | None]:
        from ..storage import split_bucket_uri

        bucket, key = split_bucket_uri(uri, "gs")
        key, sep, generation = key.partition("#")
        return bucket, key, (generation or None) if sep else None

    def stat(self, bucket: str, key: str, version: str | None = None) -> RemoteObject | None:
        client, _, options = self._connect()
        blob = client.bucket(bucket).get_blob(
            key, generation=int(version) if version else None, retry=options.retry(), timeout=options.timeout
        )
        return _object(blob) if blob is not None else None

    def list_objects(self, bucket: str, prefix: str) -> Iterator[RemoteObject]:
        client, _, options = self._connect()
        for blob in client.list_blobs(
            bucket, prefix=prefix, fields=_FIELDS, page_size=1000, retry=options.retry(), timeout=options.timeout
        ):
            yield _object(blob)

    def download(self, bucket: str, obj: RemoteObject, dest: str) -> None:
        client, pool, options = self._connect()
        generation = int(obj.version) if obj.version else None
        try:
            if obj.size <= options.resumable_threshold:
                blob = client.bucket(bucket).blob(obj.key, generation=generation)
                with open(dest, "wb") as f:
                    blob.download_to_file(f, retry=options.retry(), timeout=options.timeout)
            else:
                download_ranges(client.bucket(bucket), obj.key, generation, obj.size, dest, None, options, pool)
        except (api_exceptions.NotFound, api_exceptions.PreconditionFailed) as exc:
            raise ReferenceChangedError(
                f"reference {self.object_uri(bucket, obj.key)} changed while it was being downloaded"
            ) from exc

    def describe(self, exc: BaseException) -> str:
        return describe_error(exc, self._access.name if self._access else None)[0]
