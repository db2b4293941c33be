"""The Google Cloud Storage blob store on google-cloud-storage: ``gs://bucket/prefix``.

Configuration comes from explicit arguments, else these environment variables, else the
library's defaults:

=============================================  ===================================================
``ARTIFACT_PLUGINS_GCS_PROJECT``               project (else none is needed for object access)
``ARTIFACT_PLUGINS_GCS_KMS_KEY_NAME``          CMEK key for new objects
                                               (``projects/p/locations/l/keyRings/r/cryptoKeys/k``)
``ARTIFACT_PLUGINS_GCS_CHUNK_SIZE``            resumable-upload chunk and ranged-download part,
                                               default 32MiB (a multiple of 256KiB)
``ARTIFACT_PLUGINS_GCS_RESUMABLE_THRESHOLD``   files above this use resumable uploads, default 8MiB
``ARTIFACT_PLUGINS_GCS_MAX_CONCURRENCY``       ranged-download parts in flight per store, default 8
``ARTIFACT_PLUGINS_GCS_RETRY_TIMEOUT``         seconds one operation may spend retrying, default 120
``ARTIFACT_PLUGINS_GCS_CONNECT_TIMEOUT``       seconds, default 10
``ARTIFACT_PLUGINS_GCS_READ_TIMEOUT``          seconds, default 60
``ARTIFACT_PLUGINS_TRANSFER_WORKERS``          files in flight, default 32
``ARTIFACT_PLUGINS_GCS_LEAN_REQUESTS``         ``0`` lists through the library's ``list_blobs``
                                               (default: plain JSON pages, see ``gcs_lean``)
``STORAGE_EMULATOR_HOST``                      the library's emulator switch (anonymous credentials)
=============================================  ===================================================

Credentials come from Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``,
``gcloud auth application-default login``, workload identity, the metadata server), or from
credentials an orchestrator hands over (an Airflow connection: ``StoreAccess``); they are
never accepted in a URI and never appear in a message. Every write is create-only
(``ifGenerationMatch=0``), which also makes every upload safe to retry.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from ..env import env_flag, env_int, env_seconds, env_size, env_str
from ..errors import InvalidConfigError
from ..redact import redact_text, redact_uri
from . import (
    DEFAULT_TRANSFER_WORKERS,
    ByteCallback,
    ObjectPage,
    PartCallback,
    RemoteStore,
    lean_first,
    parallel_map,
    split_bucket_uri,
)
from .gcs_lean import LeanGCS

if TYPE_CHECKING:
    from google.api_core.retry import Retry

    from ..store_access import StoreAccess


_UNIT = 256 * 2**10  # resumable chunks must be multiples of 256 KiB


def is_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` says the object (or generation) does not exist."""
    return isinstance(exc, api_exceptions.NotFound)


def describe_error(exc: BaseException, credentials: str | None = None) -> tuple[str, bool]:
    """A credential-free description of a google-cloud-storage error, and whether it means "not found".

    ``credentials`` names where the credentials came from when not from Application Default Credentials.
    """
    source = credentials or "Application Default Credentials"
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        detail = f"HTTP {exc.code}: {redact_text(exc.message or '')}"
        if exc.code in (401, 403):
            detail += f"; check the credentials ({source}) and the bucket's IAM policy"
        return detail, is_not_found(exc)
    if isinstance(exc, auth_exceptions.RefreshError):
        return f"no access token for the credentials of {source} ({type(exc).__name__}); check them", False
    if isinstance(exc, auth_exceptions.DefaultCredentialsError):
        return (
            "no Google credentials found; configure Application Default Credentials "
            "(GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login, workload identity)",
            False,
        )
    if isinstance(exc, requests.ConnectionError):
        return f"cannot connect to Cloud Storage ({redact_text(str(exc))}); retried and gave up", False
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}", False
    return f"{type(exc).__name__}: {redact_text(str(exc))}", False


@dataclass(frozen=True)
class GCSOptions:
    """How to reach Cloud Storage and how to transfer: everything but credentials."""

    project: str | None = None
    kms_key_name: str | None = None
    chunk_size: int = 32 * 2**20
    resumable_threshold: int = 8 * 2**20
    max_concurrency: int = 8
    retry_timeout: float = 120.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    transfer_workers: int = DEFAULT_TRANSFER_WORKERS
    lean_requests: bool = True

    def __post_init__(self) -> None:
        if self.chunk_size % _UNIT:
            raise InvalidConfigError(f"GCS chunk size {self.chunk_size} must be a multiple of 256KiB")

    @classmethod
    def from_env(cls, **overrides: Any) -> GCSOptions:
        """Options from ``ARTIFACT_PLUGINS_GCS_*`` variables; ``overrides`` (not ``None``) win."""
        values: dict[str, Any] = {
            "project": env_str("GCS_PROJECT"),
            "kms_key_name": env_str("GCS_KMS_KEY_NAME"),
            "chunk_size": env_size("GCS_CHUNK_SIZE", 32 * 2**20, minimum=_UNIT),
            "resumable_threshold": env_size("GCS_RESUMABLE_THRESHOLD", 8 * 2**20, minimum=_UNIT),
            "max_concurrency": env_int("GCS_MAX_CONCURRENCY", 8, minimum=1),
            "retry_timeout": env_seconds("GCS_RETRY_TIMEOUT", 120.0),
            "connect_timeout": env_seconds("GCS_CONNECT_TIMEOUT", 10.0),
            "read_timeout": env_seconds("GCS_READ_TIMEOUT", 60.0),
            "transfer_workers": env_int("TRANSFER_WORKERS", DEFAULT_TRANSFER_WORKERS, minimum=1),
            "lean_requests": env_flag("GCS_LEAN_REQUESTS"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def retry(self) -> Retry:
        """The library's retry policy (429, 5xx, resets, timeouts) bounded by ``retry_timeout``."""
        policy: Retry = DEFAULT_RETRY.with_timeout(self.retry_timeout).with_delay(initial=0.25, maximum=10.0)
        return policy

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) seconds for every request."""
        return (self.connect_timeout, self.read_timeout)


def make_client(options: GCSOptions, connections: int, credentials: Any = None) -> storage.Client:
    """A Cloud Storage client with a connection pool of ``connections``: ``credentials`` when given
    (see :class:`~artifact_plugins.core.store_access.StoreAccess`), else ADC (anonymous under
    ``STORAGE_EMULATOR_HOST``)."""
    client = storage.Client(project=options.project, credentials=credentials)
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=connections, max_retries=0)
    session = client._http  # the library's authorized requests session, shared by every call
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return client


class _ProgressReader:
    """A read-only file wrapper that reports bytes read (and rewinds) to a byte callback."""

    def __init__(self, f: Any, on_bytes: ByteCallback | None) -> None:
        self._f, self._on_bytes = f, on_bytes

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._f.read(n)
        if self._on_bytes is not None and data:
            self._on_bytes(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        before = self._f.tell()
        after: int = self._f.seek(offset, whence)
        if self._on_bytes is not None and after != before:
            self._on_bytes(after - before)
        return after

    def tell(self) -> int:
        pos: int = self._f.tell()
        return pos


class _OffsetWriter:
    """A write-only file at a fixed offset of a shared descriptor (one ranged-download part)."""

    def __init__(self, fd: int, offset: int, on_bytes: ByteCallback | None) -> None:
        self._fd, self._offset, self._on_bytes = fd, offset, on_bytes

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd, view, self._offset)
            self._offset += n
            view = view[n:]
        if self._on_bytes is not None:
            self._on_bytes(len(data))
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""


def download_ranges(
    bucket: storage.Bucket,
    name: str,
    generation: int | None,
    size: int,
    dest: str,
    on_bytes: ByteCallback | None,
    options: GCSOptions,
    pool: ThreadPoolExecutor,
    on_part: PartCallback | None = None,
) -> None:
    """Fetch an object (one generation, when given) as parallel ranged reads written in place into ``dest``."""
    step = options.chunk_size
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)

        def part(start: int) -> None:
            # The library resumes a broken part from where it stopped, within the retry budget.
            bucket.blob(name, generation=generation).download_to_file(
                _OffsetWriter(fd, start, on_bytes),
                start=start,
                end=min(start + step, size) - 1,
                checksum=None,
                retry=options.retry(),
                timeout=options.timeout,
            )
            if on_part is not None:
                on_part(start, min(start + step, size))

        parallel_map(part, list(range(0, size, step)), options.max_concurrency, pool=pool)
    finally:
        os.close(fd)


class GCSStore(RemoteStore):
    """Blobs and manifests under ``gs://bucket/prefix``, in the same layout as the local store."""

    scheme = "gs"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        options: GCSOptions | None = None,
        credentials: Any = None,
        credentials_name: str | None = None,
    ) -> None:
        """``credentials`` (else ADC) authorize the requests; ``credentials_name`` names their
        source in error messages."""
        self.options = options or GCSOptions.from_env()
        super().__init__(bucket, prefix, self.options.transfer_workers)
        self.inline_limit = self.options.resumable_threshold
        connections = self.options.transfer_workers + self.options.max_concurrency + 4
        self.client = make_client(self.options, connections, credentials)
        self._credentials = credentials_name
        self._bucket = self.client.bucket(bucket)
        self._retry = self.options.retry()
        self._parts = ThreadPoolExecutor(self.options.max_concurrency, thread_name_prefix="artifact-plugins-gcs")
        lean = LeanGCS(self.client, bucket, self.options.timeout) if self.options.lean_requests else None
        self._lean = lean if lean is not None and lean.available else None

    @classmethod
    def from_uri(cls, uri: str, access: StoreAccess | None = None, **overrides: Any) -> GCSStore:
        """The store for ``gs://bucket[/prefix]``, configured from the environment and ``overrides``.

        With ``access``, its credentials authorize the requests and its project wins.
        """
        if "?" in uri or "#" in uri:
            raise InvalidConfigError(
                f"store URI {redact_uri(uri)!r}: configure GCS through ARTIFACT_PLUGINS_GCS_* "
                "variables, not URI parameters"
            )
        bucket, prefix = split_bucket_uri(uri, "gs")
        if access is None:
            return cls(bucket, prefix, GCSOptions.from_env(**overrides))
        options = GCSOptions.from_env(**{**dict(access.options), **overrides})
        return cls(bucket, prefix, options, credentials=access.session(), credentials_name=access.name)

    def _blob(self, full_key: str) -> storage.Blob:
        return self._bucket.blob(full_key, chunk_size=self.options.chunk_size, kms_key_name=self.options.kms_key_name)

    # -- primitives -------------------------------------------------------------------------------

    def _stat(self, full_key: str) -> float | None:
        blob = self._bucket.get_blob(full_key, retry=self._retry, timeout=self.options.timeout)
        if blob is None:
            return None
        return blob.updated.timestamp() if blob.updated else 0.0

    def _list(self, prefix: str, start: str | None = None) -> Iterator[ObjectPage]:
        lean = self._lean

        def rest(last: str | None) -> Iterator[ObjectPage]:
            it = self.client.list_blobs(
                self._bucket,
                prefix=prefix,
                start_offset=last or start,  # inclusive: the name already listed is skipped below
                page_size=self.page_size,
                fields="items(name,size,updated),nextPageToken",
                retry=self._retry,
                timeout=self.options.timeout,
            )
            for blobs in it.pages:
                yield [
                    (b.name, int(b.size or 0), b.updated.timestamp() if b.updated else 0.0)
                    for b in blobs
                    if b.name != last
                ]

        return lean_first(
            (lambda token: lean.list_page(prefix, self.page_size, start, token)) if lean is not None else None, rest
        )

    def _create(self, upload: Any) -> None:
        try:
            upload()
        except api_exceptions.PreconditionFailed:
            return  # the object is already there: nothing to send

    def _upload_bytes(self, full_key: str, data: bytes) -> None:
        blob = self._blob(full_key)
        self._create(
            lambda: blob.upload_from_string(
                data, if_generation_match=0, retry=self._retry, timeout=self.options.timeout
            )
        )

    def _upload_file(self, full_key: str, src: str, size: int, on_bytes: ByteCallback | None) -> None:
        blob = self._blob(full_key)  # chunk_size set: a resumable upload, chunk by chunk

        def send() -> None:
            with open(src, "rb") as f:
                blob.upload_from_file(
                    _ProgressReader(f, on_bytes),
                    size=size,
                    if_generation_match=0,
                    retry=self._retry,
                    timeout=self.options.timeout,
                )

        self._create(send)

    def _download(
        self,
        full_key: str,
        dest: str,
        size: int | None,
        on_bytes: ByteCallback | None,
        on_part: PartCallback | None = None,
    ) -> None:
        generation = None
        if size is None:
            blob = self._bucket.get_blob(full_key, retry=self._retry, timeout=self.options.timeout)
            if blob is None:
                raise api_exceptions.NotFound(f"{full_key} not found")
            size, generation = int(blob.size or 0), blob.generation
        self.download_ranges(full_key, generation, size, dest, on_bytes, on_part)

    def download_ranges(
        self,
        full_key: str,
        generation: int | None,
        size: int,
        dest: str,
        on_bytes: ByteCallback | None,
        on_part: PartCallback | None = None,
    ) -> None:
        """Fetch one generation of an object as parallel ranged reads written in place into ``dest``."""
        download_ranges(self._bucket, full_key, generation, size, dest, on_bytes, self.options, self._parts, on_part)

    def _read(self, full_key: str) -> bytes:
        data: bytes = self._blob(full_key).download_as_bytes(retry=self._retry, timeout=self.options.timeout)
        return data

    def _delete(self, full_key: str) -> None:
        with contextlib.suppress(api_exceptions.NotFound):
            self._blob(full_key).delete(retry=self._retry, timeout=self.options.timeout)

    def _describe(self, exc: BaseException) -> tuple[str, bool]:
        return describe_error(exc, self._credentials)

    def close(self) -> None:
        """Stop the part threads (idempotent)."""
        self._parts.shutdown(wait=False, cancel_futures=True)


__all__ = ["GCSOptions", "GCSStore", "describe_error", "is_not_found", "make_client"]
