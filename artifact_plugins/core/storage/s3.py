"""The S3 blob store (AWS S3 and S3-compatible services) on boto3: ``s3://bucket/prefix``.

Configuration comes from explicit arguments, else these environment variables, else boto3's own
standard chain (``AWS_ENDPOINT_URL_S3``, ``AWS_REGION``, ``AWS_PROFILE``, ``~/.aws/config``...):

===========================================  =====================================================
``ARTIFACT_PLUGINS_S3_ENDPOINT_URL``         any S3-compatible endpoint (MinIO, SeaweedFS, R2...)
``ARTIFACT_PLUGINS_S3_REGION``               region name
``ARTIFACT_PLUGINS_S3_PROFILE``              named profile of the AWS config files
``ARTIFACT_PLUGINS_S3_ADDRESSING_STYLE``     ``auto`` (default), ``path`` or ``virtual``
``ARTIFACT_PLUGINS_S3_SSE``                  ``AES256`` (SSE-S3) or ``aws:kms`` (SSE-KMS)
``ARTIFACT_PLUGINS_S3_SSE_KMS_KEY_ID``       KMS key id/ARN for SSE-KMS (implies ``aws:kms``)
``ARTIFACT_PLUGINS_S3_RETRY_MODE``           botocore retry mode: ``standard`` (default) or ``adaptive``
``ARTIFACT_PLUGINS_S3_MAX_ATTEMPTS``         attempts per request, default 8
``ARTIFACT_PLUGINS_S3_CONNECT_TIMEOUT``      seconds, default 10
``ARTIFACT_PLUGINS_S3_READ_TIMEOUT``         seconds, default 60
``ARTIFACT_PLUGINS_S3_MULTIPART_THRESHOLD``  size above which uploads are multipart, default 16MiB
``ARTIFACT_PLUGINS_S3_MULTIPART_CHUNKSIZE``  part size, default 16MiB
``ARTIFACT_PLUGINS_S3_MAX_CONCURRENCY``      parts in flight per store, default 16
``ARTIFACT_PLUGINS_TRANSFER_WORKERS``        files in flight, default 32
``ARTIFACT_PLUGINS_S3_LEAN_REQUESTS``        ``0`` sends small objects and listings through full boto3 calls
                                             (default: presigned requests, see ``s3_lean``)
===========================================  =====================================================

Credentials come from boto3's chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
``AWS_SESSION_TOKEN``, profiles, SSO, web identity, container and instance roles), or from a
session an orchestrator hands over (an Airflow connection: ``StoreAccess``). They are never
accepted in a URI and never appear in a message.

Every write is create-only (``If-None-Match: *`` on ``PutObject`` and ``CompleteMultipartUpload``),
so a blob already present is never replaced; servers without conditional writes fall back to
plain writes, which are still safe because keys are content addresses.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    FlexibleChecksumError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from s3transfer.subscribers import BaseSubscriber

from ..env import env_flag, env_int, env_seconds, env_size, env_str
from ..errors import FileChangedError, InvalidConfigError
from ..redact import has_credentials, redact_text, redact_uri
from . import (
    DEFAULT_TRANSFER_WORKERS,
    ByteCallback,
    ObjectPage,
    PartCallback,
    RemoteStore,
    lean_first,
    parallel_map,
    split_bucket_uri,
    with_retries,
)
from .s3_lean import LeanS3

if TYPE_CHECKING:
    from ..store_access import StoreAccess

S3Client = Any  # boto3 clients are generated at runtime

logger = logging.getLogger("artifact_plugins.storage")

_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}
_PRECONDITION = {"412", "PreconditionFailed"}
_CONFLICT = {"409", "ConditionalRequestConflict", "OperationAborted"}
#: The body arrived damaged (a checksum the server or botocore computed does not match): send or read it again.
_DAMAGED = {"BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"}
_UNSUPPORTED = {"501", "NotImplemented"}
#: Bytes read from a response body at a time by ranged downloads.
_READ_CHUNK = 2**20
#: S3's limit on the parts of one multipart upload.
_MAX_PARTS = 10_000


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` (``""`` for other exceptions)."""
    if isinstance(exc, ClientError):
        return str(
            exc.response.get("Error", {}).get("Code")
            or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        )
    return ""


def is_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` says the object (or version) does not exist."""
    return error_code(exc) in _NOT_FOUND


def is_precondition_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed ``If-None-Match``/``If-Match`` precondition."""
    return error_code(exc) in _PRECONDITION


def is_transient(exc: BaseException) -> bool:
    """Errors worth another attempt after botocore's own retries: broken or stalled streams,
    bodies damaged in transit, write races."""
    if isinstance(
        exc, (ResponseStreamingError, IncompleteReadError, ReadTimeoutError, FlexibleChecksumError, ConnectionError)
    ):
        return True
    return error_code(exc) in _CONFLICT or error_code(exc) in _DAMAGED


def describe_error(exc: BaseException, credentials: str | None = None) -> tuple[str, bool]:
    """A credential-free description of a boto error, and whether it means "not found".

    ``credentials`` names where the credentials came from when not from the standard chain.
    """
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        code = error_code(exc)
        detail = f"{code} (HTTP {status}): {err.get('Message') or 'no message'}"
        if status == 403:
            detail += f"; check the credentials ({credentials or 'AWS standard chain'}) and the bucket's permissions"
        return detail, code in _NOT_FOUND
    if isinstance(exc, NoCredentialsError):
        if credentials:
            return f"no AWS credentials found in {credentials}; give it an access key id and secret", False
        return (
            "no AWS credentials found; configure the standard chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE, SSO, web identity or an instance/container role)",
            False,
        )
    if isinstance(exc, EndpointConnectionError):
        return f"cannot connect to the S3 endpoint ({redact_text(str(exc))}); retried and gave up", False
    if isinstance(exc, BotoCoreError):
        return f"{type(exc).__name__}: {redact_text(str(exc))}", False
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}", False
    return f"{type(exc).__name__}: {redact_text(str(exc))}", False


@dataclass(frozen=True)
class S3Options:
    """How to reach S3 and how to transfer: everything but credentials."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    addressing_style: str = "auto"
    sse: str | None = None
    sse_kms_key_id: str | None = None
    retry_mode: str = "standard"
    max_attempts: int = 8
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    multipart_threshold: int = 16 * 2**20
    multipart_chunksize: int = 16 * 2**20
    max_concurrency: int = 16
    transfer_workers: int = DEFAULT_TRANSFER_WORKERS
    lean_requests: bool = True
    extra_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.endpoint_url and has_credentials(self.endpoint_url):
            raise InvalidConfigError(
                f"S3 endpoint URL {redact_uri(self.endpoint_url)!r} carries credentials; "
                "use the AWS credential chain instead"
            )
        if self.addressing_style not in ("auto", "path", "virtual"):
            raise InvalidConfigError(f"S3 addressing style {self.addressing_style!r}: expected auto, path or virtual")
        if self.retry_mode not in ("standard", "adaptive", "legacy"):
            raise InvalidConfigError(f"S3 retry mode {self.retry_mode!r}: expected standard, adaptive or legacy")
        if self.sse not in (None, "AES256", "aws:kms", "aws:kms:dsse"):
            raise InvalidConfigError(f"S3 server-side encryption {self.sse!r}: expected AES256 or aws:kms")
        if self.multipart_chunksize < 5 * 2**20:
            raise InvalidConfigError("S3 multipart chunk size must be at least 5MiB (the S3 minimum part size)")

    @classmethod
    def from_env(cls, **overrides: Any) -> S3Options:
        """Options from ``ARTIFACT_PLUGINS_S3_*`` variables; ``overrides`` (not ``None``) win."""
        values: dict[str, Any] = {
            "endpoint_url": env_str("S3_ENDPOINT_URL"),
            "region": env_str("S3_REGION"),
            "profile": env_str("S3_PROFILE"),
            "addressing_style": env_str("S3_ADDRESSING_STYLE", "auto"),
            "sse": env_str("S3_SSE"),
            "sse_kms_key_id": env_str("S3_SSE_KMS_KEY_ID"),
            "retry_mode": env_str("S3_RETRY_MODE", "standard"),
            "max_attempts": env_int("S3_MAX_ATTEMPTS", 8, minimum=1),
            "connect_timeout": env_seconds("S3_CONNECT_TIMEOUT", 10.0),
            "read_timeout": env_seconds("S3_READ_TIMEOUT", 60.0),
            "multipart_threshold": env_size("S3_MULTIPART_THRESHOLD", 16 * 2**20, minimum=5 * 2**20),
            "multipart_chunksize": env_size("S3_MULTIPART_CHUNKSIZE", 16 * 2**20, minimum=5 * 2**20),
            "max_concurrency": env_int("S3_MAX_CONCURRENCY", 16, minimum=1),
            "transfer_workers": env_int("TRANSFER_WORKERS", DEFAULT_TRANSFER_WORKERS, minimum=1),
            "lean_requests": env_flag("S3_LEAN_REQUESTS"),
        }
        if values["sse_kms_key_id"] and not values["sse"]:
            values["sse"] = "aws:kms"
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def encryption_args(self) -> dict[str, str]:
        """``ServerSideEncryption``/``SSEKMSKeyId`` request parameters for writes."""
        args: dict[str, str] = {}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
        if self.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.sse_kms_key_id
        return args


def make_client(options: S3Options, connections: int, session: boto3.session.Session | None = None) -> S3Client:
    """A thread-safe boto3 S3 client with bounded retries and a connection pool of ``connections``.

    Its credentials come from ``session`` when given (see :class:`~artifact_plugins.core.store_access.StoreAccess`),
    else from boto3's standard chain.
    """
    if session is None:
        session = boto3.session.Session(profile_name=options.profile, region_name=options.region)
    settings: dict[str, Any] = {
        # Explicit, so presigned URLs (s3_lean) are SigV4 too: left unset, botocore presigns with
        # SigV2, which newer regions and some S3-compatible servers refuse for listings.
        "signature_version": "s3v4",
        "retries": {"mode": options.retry_mode, "max_attempts": options.max_attempts},
        "max_pool_connections": connections,
        "connect_timeout": options.connect_timeout,
        "read_timeout": options.read_timeout,
        "tcp_keepalive": True,
        "s3": {"addressing_style": options.addressing_style},
    }
    config = Config(**{**settings, **options.extra_config})
    client: S3Client = session.client(
        "s3", endpoint_url=options.endpoint_url, region_name=options.region or session.region_name, config=config
    )
    return client


def make_transfer_manager(client: S3Client, options: S3Options) -> Any:
    """An s3transfer manager (multipart uploads, parallel ranged downloads) with bounded threads."""
    return create_transfer_manager(
        client,
        TransferConfig(
            multipart_threshold=options.multipart_threshold,
            multipart_chunksize=options.multipart_chunksize,
            max_concurrency=options.max_concurrency,
            num_download_attempts=max(options.max_attempts, 2),
            io_chunksize=2**20,
            use_threads=True,
            preferred_transfer_client="classic",
        ),
    )


class TransferSubscriber(BaseSubscriber):  # type: ignore[misc]
    """Tells s3transfer what is already known (size, ETag: saves a HEAD) and forwards byte counts."""

    def __init__(self, size: int | None, on_bytes: ByteCallback | None, etag: str | None = None) -> None:
        self._size, self._on_bytes, self._etag = size, on_bytes, etag

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        if self._size is not None:
            future.meta.provide_transfer_size(self._size)
        if self._etag is not None:
            future.meta.provide_object_etag(f'"{self._etag}"')

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        if self._on_bytes is not None:
            self._on_bytes(bytes_transferred)


class S3Store(RemoteStore):
    """Blobs and manifests under ``s3://bucket/prefix``, in the same layout as the local store."""

    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        options: S3Options | None = None,
        session: boto3.session.Session | None = None,
        credentials: str | None = None,
    ) -> None:
        """``session`` supplies the credentials (else boto3's chain); ``credentials`` names its
        source in error messages."""
        self.options = options or S3Options.from_env()
        super().__init__(bucket, prefix, self.options.transfer_workers)
        self.inline_limit = min(self.options.multipart_threshold, 8 * 2**20)
        connections = self.options.transfer_workers + self.options.max_concurrency + 4
        self.client = make_client(self.options, connections, session)
        self._credentials = credentials
        self._encryption = self.options.encryption_args()
        self._conditional = True
        for op in ("PutObject", "CompleteMultipartUpload"):
            self.client.meta.events.register(f"before-parameter-build.s3.{op}", self._add_condition)
        self._parts = ThreadPoolExecutor(self.options.max_concurrency, thread_name_prefix="artifact-plugins-s3")
        lean = LeanS3(self.client, bucket) if self.options.lean_requests else None
        self._lean = lean if lean is not None and lean.available else None

    @classmethod
    def from_uri(cls, uri: str, access: StoreAccess | None = None, **overrides: Any) -> S3Store:
        """The store for ``s3://bucket[/prefix]``, configured from the environment and ``overrides``.

        With ``access``, its session supplies the credentials and its options (an endpoint, a
        region) win over the environment's.
        """
        if "?" in uri or "#" in uri:
            raise InvalidConfigError(
                f"store URI {redact_uri(uri)!r}: configure S3 through ARTIFACT_PLUGINS_S3_* "
                "variables, not URI parameters"
            )
        bucket, prefix = split_bucket_uri(uri, "s3")
        if access is None:
            return cls(bucket, prefix, S3Options.from_env(**overrides))
        options = S3Options.from_env(**{**dict(access.options), **overrides})
        return cls(bucket, prefix, options, session=access.session(), credentials=access.name)

    # -- conditional writes ------------------------------------------------------------------------

    def _add_condition(self, params: dict[str, Any], model: Any = None, **kwargs: Any) -> None:
        """Make writes create-only (skipped on botocore versions whose model lacks the parameter)."""
        if self._conditional and (model is None or "IfNoneMatch" in model.input_shape.members):
            params.setdefault("IfNoneMatch", "*")

    def _create(self, action: Any) -> None:
        """Run a create-only write; "already exists" is success, and unsupported conditions fall back."""

        def attempt() -> None:
            try:
                action()
            except ClientError as exc:
                if is_precondition_failed(exc):
                    return  # the object is already there: nothing to send
                if self._conditional and error_code(exc) in _UNSUPPORTED:
                    logger.info("%s does not support conditional writes; writing unconditionally", self.uri)
                    self._conditional = False
                    action()
                    return
                raise

        with_retries(attempt, is_transient, self.options.max_attempts)

    # -- primitives -------------------------------------------------------------------------------

    def _stat(self, full_key: str) -> float | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=full_key)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        mtime: float = head["LastModified"].timestamp()
        return mtime

    def _list(self, prefix: str, start: str | None = None) -> Iterator[ObjectPage]:
        after = start[:-1] if start else None  # StartAfter is exclusive; this sorts just before ``start``
        lean = self._lean

        def rest(last: str | None) -> Iterator[ObjectPage]:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": self.page_size}
            if last or after:
                kwargs["StartAfter"] = last or after
            for raw in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                yield [(o["Key"], int(o["Size"]), o["LastModified"].timestamp()) for o in raw.get("Contents", [])]

        return lean_first(
            (lambda token: lean.list_page(prefix, self.page_size, after, token)) if lean is not None else None, rest
        )

    def _upload_bytes(self, full_key: str, data: bytes) -> None:
        if self._lean is not None and self._conditional and not self._encryption and self._lean.put_new(full_key, data):
            return
        self._create(lambda: self.client.put_object(Bucket=self.bucket, Key=full_key, Body=data, **self._encryption))

    def _upload_file(self, full_key: str, src: str, size: int, on_bytes: ByteCallback | None) -> None:
        """A multipart upload whose parts are read (``pread``) and sent from the part threads.

        One progress report per part; at most ``max_concurrency`` parts are in memory. Transit
        integrity is botocore's CRC32 per part (with an MD5 per part as well, bench_cloud.py's
        1 GiB log was 1.18x plain boto3; without it, 0.97x).
        """
        step = max(self.options.multipart_chunksize, -(-size // _MAX_PARTS))
        starts = list(range(0, size, step))

        def send() -> None:
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=full_key, **self._encryption)[
                "UploadId"
            ]
            try:
                fd = os.open(src, os.O_RDONLY)
                try:

                    def part(number: int) -> dict[str, Any]:
                        start = starts[number - 1]
                        data = os.pread(fd, min(step, size - start), start)
                        if len(data) != min(step, size - start):
                            raise FileChangedError(f"{src!r} shrank while it was being stored; log it again")
                        response = with_retries(
                            lambda: self.client.upload_part(
                                Bucket=self.bucket,
                                Key=full_key,
                                UploadId=upload_id,
                                PartNumber=number,
                                Body=data,
                            ),
                            is_transient,
                            self.options.max_attempts,
                        )
                        if on_bytes is not None:
                            on_bytes(len(data))
                        return {"PartNumber": number, "ETag": response["ETag"]}

                    parts = parallel_map(
                        part, list(range(1, len(starts) + 1)), self.options.max_concurrency, pool=self._parts
                    )
                finally:
                    os.close(fd)
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=full_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            except BaseException:
                with contextlib.suppress(Exception):  # never mask the real error; lifecycle rules reap leftovers
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)
                raise

        self._create(send)

    def _download(
        self,
        full_key: str,
        dest: str,
        size: int | None,
        on_bytes: ByteCallback | None,
        on_part: PartCallback | None = None,
    ) -> None:
        if size is None:
            size = int(self.client.head_object(Bucket=self.bucket, Key=full_key)["ContentLength"])
        self._download_ranges(full_key, dest, size, on_bytes, on_part)

    def _download_ranges(
        self, full_key: str, dest: str, size: int, on_bytes: ByteCallback | None, on_part: PartCallback | None
    ) -> None:
        """Parallel ranged GETs written in place into ``dest``; a broken part is fetched again.

        Measured against s3transfer's ``download_file`` with its best settings on the same server:
        writing from the reading threads (no separate I/O queue) is at least as fast, and it lets
        the caller hash each part as it lands.
        """
        step = self.options.multipart_chunksize
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, size)

            def part(start: int) -> None:
                end = min(start + step, size)
                written = 0

                def attempt() -> None:
                    nonlocal written
                    if written and on_bytes is not None:
                        on_bytes(-written)  # a retry starts the part over
                    written = 0
                    body = self.client.get_object(Bucket=self.bucket, Key=full_key, Range=f"bytes={start}-{end - 1}")[
                        "Body"
                    ]
                    pos = start
                    while pos < end:
                        chunk = body.read(min(_READ_CHUNK, end - pos))
                        if not chunk:
                            raise IncompleteReadError(actual_bytes=pos - start, expected_bytes=end - start)
                        view = memoryview(chunk)
                        while view:
                            n = os.pwrite(fd, view, pos)
                            pos += n
                            view = view[n:]
                        written += len(chunk)
                        if on_bytes is not None:
                            on_bytes(len(chunk))

                with_retries(attempt, is_transient, self.options.max_attempts)
                if on_part is not None:
                    on_part(start, end)

            parallel_map(part, list(range(0, size, step)), self.options.max_concurrency, pool=self._parts)
        finally:
            os.close(fd)

    def _read(self, full_key: str) -> bytes:
        if self._lean is not None:
            data = self._lean.get(full_key)
            if data is not None:
                return data

        def read() -> bytes:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=full_key)["Body"].read()
            return body

        return with_retries(read, is_transient, self.options.max_attempts)

    def _delete(self, full_key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=full_key)

    def _describe(self, exc: BaseException) -> tuple[str, bool]:
        return describe_error(exc, self._credentials)

    def close(self) -> None:
        """Stop the transfer threads (idempotent)."""
        self._parts.shutdown(wait=False, cancel_futures=True)


__all__ = [
    "S3Options",
    "S3Store",
    "TransferSubscriber",
    "describe_error",
    "error_code",
    "is_not_found",
    "is_transient",
    "make_client",
    "make_transfer_manager",
]
