"""The blob-store interface: one small surface for local disk, S3 and GCS.

Layout, identical on every backend::

    blobs/blake3/<aa>/<hex>               content of a file, named by its digest
    manifests/blake3/<aa>/<hex>.json.gz   a version's manifest, named by the version digest
"""

from __future__ import annotations

import errno
import itertools
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import StoreError
from ..hashing import Stat, hex_of

#: Failures that are always about the local file being written, never about the store read from.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def local_write_error(exc: BaseException, path: str | os.PathLike[str]) -> StoreError | None:
    """A :class:`StoreError` naming ``path`` when ``exc`` is a failure to write there (disk full,
    read-only, permission denied...), so that it is not mistaken for a failure of the store."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    target = os.fspath(path)
    names = [os.fspath(n) for n in (exc.filename, exc.filename2) if isinstance(n, str | os.PathLike)]
    if exc.errno not in _WRITE_ERRNOS and not any(n.startswith(target) for n in names):
        return None
    hint = "; free space and retry" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return StoreError(f"cannot write {target}: {exc.strerror or exc}{hint}")


_token_prefix = os.urandom(6).hex()
_token_count = itertools.count()


def _new_token_prefix() -> None:
    global _token_prefix, _token_count
    _token_prefix, _token_count = os.urandom(6).hex(), itertools.count()


os.register_at_fork(after_in_child=_new_token_prefix)  # a forked child never repeats its parent's names


def temp_token() -> str:
    """A unique token for a temp file's name: 48 random bits per process, then a counter.

    Random per process (and per forked child), so concurrent writers never pick the same name;
    counted within it, so the per-file path costs no system call (``uuid4`` or ``os.urandom``
    per name did). Temp files are created with ``O_EXCL``, so even a collision could not
    overwrite anything.
    """
    return f"{_token_prefix}{next(_token_count):x}"


def blob_key(digest: str) -> str:
    """Store key of a blob."""
    h = hex_of(digest)
    return f"blobs/blake3/{h[:2]}/{h}"


def manifest_key(digest: str) -> str:
    """Store key of the manifest of the version whose digest is ``digest``."""
    h = hex_of(digest)
    return f"manifests/blake3/{h[:2]}/{h}.json.gz"


@dataclass(frozen=True)
class StoredObject:
    """A listed object: its key, size and modification time (seconds since the epoch)."""

    key: str
    size: int
    mtime: float


class BlobStore(ABC):
    """Content-addressed storage of blobs and manifests. Writes are atomic and idempotent."""

    uri: str
    #: True when blobs are plain local files that can be copied without a download cache.
    is_local: bool = False
    #: True when nothing but this project's gc deletes from the store, so a blob of a committed
    #: version may be taken as present without asking. False for buckets: lifecycle rules and
    #: other tools delete objects there, and asking lets a log send such a blob again.
    only_gc_deletes: bool = False

    @abstractmethod
    def has(self, key: str) -> bool:
        """Whether an object exists at ``key``."""

    def missing(self, keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` that is not stored yet."""
        return {k for k in keys if not self.has(k)}

    @abstractmethod
    def put_file(self, key: str, src: str | os.PathLike[str], expect: Stat | None = None) -> None:
        """Store the file ``src`` at ``key``; with ``expect``, fail if the file changed since that stat."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key``."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read the whole object at ``key``."""

    @abstractmethod
    def get_file(self, key: str, dest: str | os.PathLike[str]) -> os.stat_result | None:
        """Write the object at ``key`` to ``dest`` (the caller makes ``dest`` atomic).

        May return ``dest``'s stat when the store took it while writing (it saves the caller a
        path lookup); ``None`` otherwise."""

    @abstractmethod
    def iter_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object at ``key`` (no error if absent)."""

    def delete_if_older(self, key: str, cutoff: float) -> bool:
        """Delete ``key`` unless it was modified at or after ``cutoff`` (epoch seconds); True if deleted."""
        self.delete(key)
        return True

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing to release
        """Release connections and threads (idempotent); the store must not be used afterwards."""

    def local_path(self, key: str) -> str | None:
        """A filesystem path holding the object, for stores that have one."""
        return None
