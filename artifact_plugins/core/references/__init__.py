"""Reference handlers by URI scheme, the shared bucket-reference logic, and drift verification.

``file://`` and ``http(s)://`` need nothing beyond the core; ``s3://`` and ``gs://`` import boto3 /
google-cloud-storage the first time such a reference is used (extras ``s3`` and ``gcs``).
"""

from __future__ import annotations

import os
import posixpath
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from ..errors import ArtifactPluginsError, InvalidInputError, StoreError
from ..manifest import ManifestEntry
from ..naming import join_entry_path, normalize_entry_path
from ..redact import has_credentials, redact_uri
from .base import (
    Drift,
    ReferenceChangedError,
    ReferenceHandler,
    TooManyObjectsError,
    fetch_tree,
    identity_digest,
    is_unchecked,
    logger,
)
from .file import FileReferenceHandler

if TYPE_CHECKING:
    from ..store_access import StoreAccess
    from ..version import ArtifactVersion

__all__ = [
    "BucketReferenceHandler",
    "Drift",
    "ReferenceChangedError",
    "ReferenceHandler",
    "RemoteObject",
    "TooManyObjectsError",
    "handler_for",
    "identity_digest",
    "is_unchecked",
    "references_read_with",
    "verify_references",
]

_HANDLERS: dict[str | tuple[str, StoreAccess], ReferenceHandler] = {}
_ACCESS: ContextVar[StoreAccess | None] = ContextVar("artifact_plugins_reference_access", default=None)


@contextmanager
def references_read_with(access: StoreAccess | None) -> Iterator[None]:
    """Within the block (and the worker threads it starts), references of ``access``'s scheme are
    read with its credentials, endpoint and region instead of the provider's default chain.

    How an orchestrator's connection (an Airflow ``aws_conn_id``) reaches references as well as
    the store. A run's ``with`` block does this for its settings' store access, and a committed
    version reads its references with its store's. ``None`` changes nothing (an enclosing
    block's access stays in force).
    """
    if access is None:
        yield
        return
    token = _ACCESS.set(access)
    try:
        yield
    finally:
        _ACCESS.reset(token)


def clear_handlers() -> None:
    """Forget the cached handlers (they hold endpoint configuration read from the environment)."""
    _HANDLERS.clear()


#: Reference checks run this many HEADs at once.
VERIFY_WORKERS = 16


def _make_handler(scheme: str, access: StoreAccess | None) -> ReferenceHandler | None:
    if scheme == "file":
        return FileReferenceHandler()
    if scheme in ("http", "https"):
        from .http import HttpReferenceHandler

        return HttpReferenceHandler()
    if scheme == "s3":
        from .s3 import S3ReferenceHandler

        return S3ReferenceHandler(access=access)
    if scheme == "gs":
        from .gcs import GCSReferenceHandler

        return GCSReferenceHandler(access=access)
    return None


def handler_for(uri: str, access: StoreAccess | None = None) -> ReferenceHandler:
    """The handler for ``uri``'s scheme; refuses URIs that carry credentials.

    A bucket reference is read with ``access`` (a committed version's store access), else with
    that of an enclosing :func:`references_read_with`, else with the provider's default chain;
    an access of another scheme is ignored.
    """
    if has_credentials(uri):
        raise InvalidInputError(
            f"reference {redact_uri(uri)!r} carries credentials (user info or a secret query parameter); "
            "references must not embed secrets"
        )
    scheme = urlsplit(uri).scheme
    access = access or _ACCESS.get()
    if access is not None and access.scheme != scheme:
        access = None
    key: str | tuple[str, StoreAccess] = scheme if access is None else (scheme, access)
    handler = _HANDLERS.get(key)
    if handler is None:
        try:
            handler = _make_handler(scheme, access)
        except ImportError as exc:
            extra = {"s3": "s3", "gs": "gcs"}.get(scheme, scheme)
            raise InvalidInputError(
                f"reference {uri!r}: {scheme}:// references need the {extra!r} extra "
                f"(pip install 'artifact-plugins[{extra}]'): {exc}"
            ) from None
        if handler is None:
            raise InvalidInputError(
                f"reference {uri!r}: scheme {scheme + '://' if scheme else '(none)'} is not supported; "
                "use file://, http(s)://, s3:// or gs://"
            )
        _HANDLERS[key] = handler
    return handler


def verify_references(version: ArtifactVersion) -> dict[str, Drift]:
    """Compare every reference entry of ``version`` with the live object, without downloading.

    Returns ``{entry path: "unchanged" | "changed" | "missing"}`` for the reference entries (files
    stored in the artifact are not references and are not listed). Checks run in parallel.
    """
    from ..storage import parallel_map

    refs = [e for e in version.manifest().values() if e.ref is not None]
    access = version._client.settings.store_access
    states = parallel_map(lambda e: handler_for(e.ref or "", access).check(e), refs, VERIFY_WORKERS)
    return {e.path: s for e, s in zip(refs, states, strict=True)}


# -- objects in buckets (S3, GCS) ----------------------------------------------------------------


@dataclass(frozen=True)
class RemoteObject:
    """What a bucket reports about one object.

    ``identity`` identifies the content (S3: ETag; GCS: MD5 and CRC32C) and, with the size, makes
    the entry digest; ``version`` is the S3 versionId / GCS generation that lets the exact bytes
    be fetched later; ``extra`` is what the manifest entry records.
    """

    key: str
    size: int
    identity: tuple[str, ...]
    version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BucketReferenceHandler(ReferenceHandler):
    """References to objects and prefixes in a bucket; subclasses supply five bucket primitives.

    * One object: an entry with its size, identity and version.
    * A prefix (a key ending in ``/``, or one naming no object): one entry per object under it,
      at most ``max_objects`` — beyond that :class:`TooManyObjectsError`, never a silent cut.
    * ``checksum=False``: one entry holding the URI alone, nothing listed.
    * Fetching reads the recorded version when the bucket still has it, else the live object if
      its identity is unchanged, else raises :class:`ReferenceChangedError`.
    """

    scheme: ClassVar[str] = ""
    #: The ``extra`` key holding the object version (``versionId`` / ``generation``).
    version_field: ClassVar[str] = ""

    @abstractmethod
    def split(self, uri: str) -> tuple[str, str, str | None]:
        """``(bucket, key, pinned version or None)`` of a URI."""

    @abstractmethod
    def stat(self, bucket: str, key: str, version: str | None = None) -> RemoteObject | None:
        """The object (that version, when given), or ``None`` when it does not exist."""

    @abstractmethod
    def list_objects(self, bucket: str, prefix: str) -> Iterator[RemoteObject]:
        """The current objects whose keys start with ``prefix``, in key order."""

    @abstractmethod
    def download(self, bucket: str, obj: RemoteObject, dest: str) -> None:
        """Write exactly ``obj`` (its version, or its identity as a precondition) to ``dest``.

        Raises :class:`ReferenceChangedError` when the object changed under the call.
        """

    @abstractmethod
    def describe(self, exc: BaseException) -> str:
        """A short, credential-free description of a backend error."""

    @contextmanager
    def _guard(self, uri: str) -> Iterator[None]:
        """Backend failures become :class:`StoreError` naming the reference (never credentials)."""
        try:
            yield
        except ArtifactPluginsError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot read reference {redact_uri(uri)}: {self.describe(exc)}") from exc

    # -- shared logic -------------------------------------------------------------------------------

    def object_uri(self, bucket: str, key: str) -> str:
        """The URI recorded for one object (versions live in ``extra``, not in the URI)."""
        return f"{self.scheme}://{bucket}/{key}"

    def _digest(self, uri: str, obj: RemoteObject) -> str:
        return identity_digest(uri, *obj.identity, obj.size)

    def _entry(self, path: str, bucket: str, obj: RemoteObject) -> ManifestEntry:
        uri = self.object_uri(bucket, obj.key)
        return ManifestEntry(path=path, digest=self._digest(uri, obj), size=obj.size, ref=uri, extra=obj.extra)

    def entries(self, uri: str, name: str | None, checksum: bool, max_objects: int | None) -> list[ManifestEntry]:
        with self._guard(uri):
            return self._entries(uri, name, checksum, max_objects)

    def _entries(self, uri: str, name: str | None, checksum: bool, max_objects: int | None) -> list[ManifestEntry]:
        bucket, key, pinned = self.split(uri)
        leaf = posixpath.basename(key.rstrip("/")) or bucket
        if not checksum:
            return [
                ManifestEntry(path=normalize_entry_path(name or leaf), digest=identity_digest(uri), size=0, ref=uri)
            ]
        if key and not key.endswith("/"):
            obj = self.stat(bucket, key, pinned)
            if obj is not None:
                return [self._entry(normalize_entry_path(name or leaf), bucket, obj)]
            if pinned is not None:
                raise InvalidInputError(f"reference {uri!r}: version {pinned} of {key!r} does not exist")
        prefix = key if not key or key.endswith("/") else key + "/"
        base = name if name is not None else leaf
        out: list[ManifestEntry] = []
        for obj in self.list_objects(bucket, prefix):
            if obj.key.endswith("/"):
                continue  # a "directory" marker, not content
            if max_objects is not None and len(out) >= max_objects:
                raise TooManyObjectsError(
                    f"reference {uri!r} holds more than max_objects={max_objects} objects; "
                    "raise max_objects or reference a narrower prefix (nothing was added)"
                )
            out.append(self._entry(join_entry_path(base, obj.key[len(prefix) :]), bucket, obj))
        if not out:
            raise InvalidInputError(f"reference {uri!r}: no object {key!r} and no objects under {prefix!r}")
        return out

    def resolve(self, entry: ManifestEntry) -> RemoteObject | None:
        """The object holding exactly the recorded bytes: the recorded version if the bucket kept it,
        else the live object if its identity is unchanged, else ``None``."""
        assert entry.ref is not None
        bucket, key, _ = self.split(entry.ref)
        version = entry.extra.get(self.version_field)
        if version:
            obj = self.stat(bucket, key, str(version))
            if obj is not None and self._digest(entry.ref, obj) == entry.digest:
                return obj
        live = self.stat(bucket, key)
        if live is not None and self._digest(entry.ref, live) == entry.digest:
            return live
        return None

    def fetch(self, entry: ManifestEntry, dest: str | os.PathLike[str]) -> None:
        assert entry.ref is not None
        with self._guard(entry.ref):
            self._fetch(entry, os.fspath(dest))

    def _fetch(self, entry: ManifestEntry, dest: str) -> None:
        assert entry.ref is not None
        bucket, key, pinned = self.split(entry.ref)
        if is_unchecked(entry):  # checksum=False: whatever the URI names now
            obj = None if key.endswith("/") else self.stat(bucket, key, pinned)
            if obj is not None:
                logger.warning(
                    "reference %s was logged with checksum=False: downloaded the object there now", entry.ref
                )
                self.download(bucket, obj, dest)
                return
            prefix = key if not key or key.endswith("/") else key + "/"
            objects = [o for o in self.list_objects(bucket, prefix) if not o.key.endswith("/")]
            fetch_tree(
                entry.ref,
                dest,
                ((o.key[len(prefix) :], partial(self.download, bucket, o)) for o in objects),
            )
            return
        obj = self.resolve(entry)
        if obj is None:
            raise ReferenceChangedError(
                f"reference {entry.ref} changed since it was logged (recorded {self._recorded(entry)}), and the "
                "bucket does not keep the recorded version; log a new version to track its current content"
            )
        self.download(bucket, obj, dest)

    def check(self, entry: ManifestEntry) -> Drift:
        assert entry.ref is not None
        with self._guard(entry.ref):
            return self._check(entry)

    def _check(self, entry: ManifestEntry) -> Drift:
        assert entry.ref is not None
        bucket, key, pinned = self.split(entry.ref)
        if is_unchecked(entry):
            if not key.endswith("/") and self.stat(bucket, key, pinned) is not None:
                return "unchanged"
            prefix = key if not key or key.endswith("/") else key + "/"
            content = (o for o in self.list_objects(bucket, prefix) if not o.key.endswith("/"))
            return "unchanged" if next(content, None) is not None else "missing"
        live = self.stat(bucket, key)
        if live is None:
            return "missing"
        return "unchanged" if self._digest(entry.ref, live) == entry.digest else "changed"

    def _recorded(self, entry: ManifestEntry) -> str:
        shown = {k: v for k, v in entry.extra.items() if k in ("etag", self.version_field)}
        return ", ".join(f"{k}={v}" for k, v in shown.items()) or entry.digest
