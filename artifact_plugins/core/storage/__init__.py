"""Content-addressed blob stores behind one interface; :func:`open_store` picks one from a URI.

``s3://bucket/prefix`` and ``gs://bucket/prefix`` stores import boto3 / google-cloud-storage only
when such a store is opened. Both derive from :class:`RemoteStore`, which holds everything the
two bucket stores share: the key layout under the prefix, verified small-file uploads, the
changed-while-uploading check for large ones, batched existence checks (one listing for a new
or small store, else a listing per crowded fan-out directory and parallel HEADs for the rest),
and error translation that keeps credentials out of messages.
"""

from __future__ import annotations

import os
import posixpath
import random
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from contextvars import copy_context
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast
from urllib.parse import unquote, urlsplit

import tenacity
from blake3 import blake3

from ..errors import ArtifactPluginsError, FileChangedError, IntegrityError, InvalidConfigError, StoreError
from ..hashing import PREFIX, Stat, digest_bytes, read_small
from ..redact import has_credentials, redact_text, redact_uri
from .base import BlobStore, StoredObject, blob_key, local_write_error, manifest_key
from .local import LocalStore

if TYPE_CHECKING:
    from ..store_access import StoreAccess

__all__ = [
    "BlobStore",
    "ByteCallback",
    "LocalStore",
    "ObjectPage",
    "PartCallback",
    "PartHasher",
    "RemoteStore",
    "StoredObject",
    "blob_key",
    "manifest_key",
    "open_store",
    "parallel_map",
    "parse_store_uri",
    "split_bucket_uri",
    "with_retries",
]

#: Called with the number of bytes just moved (negative when a retry rewinds).
ByteCallback = Callable[[int], None]

T = TypeVar("T")
R = TypeVar("R")

#: Per-file worker threads for a bucket store (``ARTIFACT_PLUGINS_TRANSFER_WORKERS`` overrides).
DEFAULT_TRANSFER_WORKERS = 32


def open_store(uri: str, access: StoreAccess | None = None) -> BlobStore:
    """A store for ``uri``: a local path, ``file://``, ``s3://bucket/prefix`` or ``gs://bucket/prefix``.

    ``access`` gives a bucket store its credentials (else the provider's default chain is used).
    """
    if access is not None:
        access.check_store(uri)
    root = parse_store_uri(uri)
    if root is not None:
        return LocalStore(root)
    if urlsplit(uri).scheme == "s3":
        from .s3 import S3Store

        return S3Store.from_uri(uri, access=access)
    from .gcs import GCSStore

    return GCSStore.from_uri(uri, access=access)


def parse_store_uri(uri: str, source: str | None = None) -> str | None:
    """The local directory ``uri`` names (a path or a ``file://`` URI), or ``None`` for a bucket store.

    Checks what can be checked without opening the store: no credentials in the URI, a supported
    scheme, and a ``file://`` URI that names an absolute path on this host (``file:///tmp/store``
    or ``file://localhost/tmp/store``). ``source`` names where ``uri`` came from in errors.
    """
    from ..config import setting_error

    shown = redact_uri(uri)
    if has_credentials(uri):
        raise setting_error(
            "store URI",
            shown,
            "it carries credentials; configure them through the provider's usual chain "
            "(environment, profile, workload identity) instead",
            source,
        )
    parts = urlsplit(uri)
    if parts.scheme in ("s3", "gs"):
        return None
    if parts.scheme == "" or len(parts.scheme) == 1:  # a bare path, or a Windows drive letter
        return uri
    if parts.scheme != "file":
        raise setting_error("unsupported store URI", shown, "expected a path, file://, s3:// or gs://", source)
    example = "a file URI needs three slashes before an absolute path, e.g. file:///tmp/store"
    if parts.netloc not in ("", "localhost"):
        raise setting_error("store URI", shown, f"names host {parts.netloc!r}; {example}", source)
    if not parts.path.startswith("/"):
        raise setting_error("store URI", shown, f"names no absolute path; {example}", source)
    if "?" in uri or "#" in uri:
        raise setting_error("store URI", shown, "'?' and '#' in a file URI's path must be written %3F and %23", source)
    return unquote(parts.path)


# -- small shared helpers (stores and reference handlers) -----------------------------------------


def split_bucket_uri(uri: str, scheme: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``; the key is taken verbatim (no query or fragment)."""
    head = f"{scheme}://"
    if not uri.startswith(head):
        raise InvalidConfigError(f"{uri!r} is not a {head} URI")
    bucket, _, key = uri[len(head) :].partition("/")
    if not bucket:
        raise InvalidConfigError(f"{uri!r} names no bucket: expected {head}bucket[/key-or-prefix]")
    return bucket, key


def _safe_cause(exc: BaseException) -> BaseException | None:
    """``exc`` if no exception in its chain says something :func:`redact_text` would hide, else ``None``."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if redact_text(str(link)) != str(link):
            return None
        link = link.__cause__ or link.__context__
    return exc


def parallel_map(
    fn: Callable[[T], R], items: Sequence[T], workers: int, pool: ThreadPoolExecutor | None = None
) -> list[R]:
    """``[fn(x) for x in items]`` on a bounded pool (``workers`` threads of its own, or the shared ``pool``).

    The first failure is raised once running calls finish; calls not yet started are not made.
    Each call runs in a copy of the caller's context, so context variables (which credentials
    references are read with, say) reach the worker threads.
    """
    if pool is None and (len(items) <= 1 or workers <= 1):
        return [fn(x) for x in items]
    if pool is None:
        return _on_own_threads(fn, items, min(workers, len(items)))
    futures: list[Future[R]] = []
    try:
        futures = [pool.submit(copy_context().run, fn, x) for x in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for f in done:
            exc = f.exception()
            if exc is not None:
                raise exc
        return [f.result() for f in futures]
    finally:
        for f in futures:
            f.cancel()
        wait(futures)


def _on_own_threads(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """:func:`parallel_map` on ``workers`` new threads, each taking the next item as it is free.

    No future per item: submitting one per item made the caller's thread take a lock per item
    while every worker wanted the interpreter too, which on two cores slowed a download of many
    small objects by a sixth (``benchmarks/bench_bucket_threads.py``: the "a future per file" row).
    """
    results: list[R | None] = [None] * len(items)
    taken = iter(range(len(items)))  # one shared iterator: each index goes to exactly one thread
    failed = threading.Event()
    errors: list[BaseException] = []
    caller = copy_context()

    def work() -> None:
        for k in taken:
            if failed.is_set():
                return
            try:
                results[k] = caller.copy().run(fn, items[k])
            except BaseException as exc:
                errors.append(exc)
                failed.set()
                return

    threads = [threading.Thread(target=work, name=f"artifact-plugins-{k}", daemon=True) for k in range(workers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:  # Ctrl-C while waiting: the threads stop at their next item
        failed.set()
        for thread in threads:
            if thread.ident is not None:
                thread.join()  # as on a failure: the running calls finish before the caller cleans up
        raise
    if errors:
        raise errors[0]
    return cast(list[R], results)


def with_retries(fn: Callable[[], T], transient: Callable[[BaseException], bool], attempts: int) -> T:
    """Call ``fn``, retrying errors ``transient`` accepts with jittered exponential backoff, at most ``attempts`` times.

    The SDKs retry each request already (throttling, 5xx, refused connections); this covers what
    they cannot: a response body cut off mid-stream, or a write that raced with another writer.
    The first attempt runs without the retry machinery (it is on the path of every small file).
    """
    try:
        return fn()
    except Exception as exc:
        if attempts <= 1 or not transient(exc):
            raise
    time.sleep(random.uniform(0.0, 0.2))  # tenacity waits between its own attempts only
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts - 1),
        wait=tenacity.wait_random_exponential(multiplier=0.2, max=10.0),
        retry=tenacity.retry_if_exception(transient),
        reraise=True,
    )
    result: T = retrying(fn)
    return result


# -- the shared bucket-store machinery ------------------------------------------------------------

#: A page of a listing: (full key, size, mtime) in lexicographic key order.
ObjectPage = list[tuple[str, int, float]]
#: Told that bytes ``[start, end)`` of a download are written (parts may finish in any order).
PartCallback = Callable[[int, int], None]
#: A page of a listing plus the continuation token of the next one (``None`` after the last).
TokenPage = tuple[ObjectPage, str | None]


def lean_first(
    lean: Callable[[str | None], TokenPage | None] | None, rest: Callable[[str | None], Iterator[ObjectPage]]
) -> Iterator[ObjectPage]:
    """A listing from ``lean(token)`` pages while that answers; if it stops answering,
    ``rest(last)`` lists on after ``last``, the last name listed (``None``: nothing was)."""
    last: str | None = None
    if lean is not None:
        token = None
        while True:
            page = lean(token)
            if page is None:
                break
            items, token = page
            yield items
            if items:
                last = items[-1][0]
            if token is None:
                return
    yield from rest(last)


def _pread_copy(fd: int, view: memoryview, offset: int) -> int:
    """Read into ``view`` from ``offset`` of ``fd``; the bytes read (0 at the end of the file).
    Through a copy: for systems without ``os.preadv`` (Windows)."""
    data = os.pread(fd, len(view), offset)
    view[: len(data)] = data
    return len(data)


def _preadv(fd: int, view: memoryview, offset: int) -> int:
    """:func:`_pread_copy` without the copy."""
    return os.preadv(fd, [view], offset)


_pread_into = _preadv if hasattr(os, "preadv") else _pread_copy


class PartHasher:
    """BLAKE3 of a file written in parts, in any order, computed while the download runs.

    Whenever the parts written so far form a longer prefix of the file, that prefix is read
    back (from the page cache) and hashed, so verification costs no extra pass once the last
    part lands. Thread-safe: parts are reported from the download's worker threads.
    """

    #: Bytes read back and hashed at a time, into one buffer per file: a new 16 MiB ``bytes`` per
    #: read left freed buffers resident (glibc serves an allocation that size from its heap once
    #: it has freed one), and they counted in a large download's peak memory.
    READ_BYTES = 4 * 2**20

    def __init__(self, path: str) -> None:
        self._path, self._fd = path, -1
        self._hash = blake3(max_threads=blake3.AUTO)
        self._lock = threading.Lock()
        self._done: dict[int, int] = {}
        self._next = 0
        self._buffer = memoryview(bytearray(self.READ_BYTES))

    def part_done(self, start: int, end: int) -> None:
        """Record that ``[start, end)`` is written; hashes whatever prefix that completes."""
        with self._lock:
            self._done[start] = end
            if self._fd < 0:
                self._fd = os.open(self._path, os.O_RDONLY)
            while self._next in self._done:
                end = self._done.pop(self._next)
                while self._next < end:  # bounded reads: a part may be large
                    view = self._buffer[: min(end - self._next, self.READ_BYTES)]
                    got = _pread_into(self._fd, view, self._next)
                    if not got:
                        raise StoreError(f"{self._path} is shorter than the parts written to it")
                    self._hash.update(view[:got])
                    self._next += got

    def digest(self, size: int) -> str:
        """The digest of the whole file; the parts must have covered ``[0, size)``."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._next != size:
                raise StoreError(f"the download of {self._path} covered {self._next} of {size} bytes")
            return PREFIX + self._hash.hexdigest()

    def close(self) -> None:
        """Release the read descriptor (idempotent)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class RemoteStore(BlobStore):
    """Shared behaviour of bucket stores: ``<scheme>://bucket/prefix`` holding the common layout.

    Subclasses implement a handful of primitives on full object keys (``_stat``, ``_list``,
    ``_upload_bytes``, ``_upload_file``, ``_download``, ``_read``, ``_delete``, ``_describe``);
    every write is conditional (create-only), so an object already present is never replaced
    and never re-sent when the backend can tell before the body is transferred.
    """

    is_local = False
    scheme: ClassVar[str] = ""
    #: Files at most this large are read once, verified against their digest and sent in one request.
    inline_limit: int = 8 * 2**20
    #: Below this many keys in one fan-out directory, ``missing`` HEADs them instead of listing it
    #: (a listing answers up to a page of keys in one request; huge directories fall back to HEADs).
    list_min_keys: ClassVar[int] = 3
    #: Objects a listing page returns at most (the backend's maximum).
    page_size: ClassVar[int] = 1000
    #: Pages ``missing`` reads of one listing before it fans out (enough for a new or small store).
    quick_list_pages: ClassVar[int] = 3

    def __init__(self, bucket: str, prefix: str, transfer_workers: int) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"{self.scheme}://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        #: Threads :mod:`artifact_plugins.core.transfer` runs per-file work on for this store.
        self.transfer_workers = transfer_workers

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uri}>"

    # -- keys -------------------------------------------------------------------------------------

    def full_key(self, key: str) -> str:
        """The object name of store key ``key`` inside the bucket."""
        return f"{self.prefix}/{key}" if self.prefix else key

    def store_key(self, full_key: str) -> str:
        """The store key of a bucket object name (the inverse of :meth:`full_key`)."""
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    # -- primitives -------------------------------------------------------------------------------

    @abstractmethod
    def _stat(self, full_key: str) -> float | None:
        """The object's modification time (epoch seconds), or ``None`` when it does not exist."""

    @abstractmethod
    def _list(self, prefix: str, start: str | None = None) -> Iterator[ObjectPage]:
        """Pages of the objects whose names start with ``prefix`` and sort at or after ``start``."""

    @abstractmethod
    def _upload_bytes(self, full_key: str, data: bytes) -> None:
        """Create the object from ``data`` unless it exists (then do nothing)."""

    @abstractmethod
    def _upload_file(self, full_key: str, src: str, size: int, on_bytes: ByteCallback | None) -> None:
        """Create the object from a large file (multipart / resumable) unless it exists."""

    @abstractmethod
    def _download(
        self,
        full_key: str,
        dest: str,
        size: int | None,
        on_bytes: ByteCallback | None,
        on_part: PartCallback | None = None,
    ) -> None:
        """Write the object to ``dest`` in parallel ranged reads (``size``: found out when ``None``),
        calling ``on_part(start, end)`` as each part is complete on disk. Objects known to be at
        most ``inline_limit`` bytes never get here: :meth:`get_file` reads them in one request."""

    @abstractmethod
    def _read(self, full_key: str) -> bytes:
        """The whole object."""

    @abstractmethod
    def _delete(self, full_key: str) -> None:
        """Remove the object (no error when absent)."""

    @abstractmethod
    def _describe(self, exc: BaseException) -> tuple[str, bool]:
        """A short, credential-free description of a backend error, and whether it means "not found"."""

    # -- errors -----------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, verb: str, key: str) -> Iterator[None]:
        """Translate backend failures into :class:`StoreError` naming the store and key."""
        try:
            yield
        except ArtifactPluginsError:
            raise
        except Exception as exc:
            detail, not_found = self._describe(exc)
            if not_found and verb == "read":
                raise StoreError(
                    f"blob {key} is missing from the store at {self.uri}; the store was altered or gc'ed"
                ) from exc
            # The backend's own message stays attached (for tracebacks) only if it holds no secret:
            # google-cloud-storage names resumable upload sessions, which grant writes, in its messages.
            raise StoreError(f"cannot {verb} {key} in {self.uri}: {redact_text(detail)}") from _safe_cause(exc)

    # -- BlobStore --------------------------------------------------------------------------------

    def has(self, key: str) -> bool:
        with self._errors("check", key):
            return self._stat(self.full_key(key)) is not None

    def missing(self, keys: Iterable[str]) -> set[str]:
        """The keys not stored yet, in as few requests as the store's size allows.

        First one listing from the smallest key, for a few pages: a new or small store answers
        everything there. Whatever is left is checked per fan-out directory: a listing where
        several keys share one, a HEAD for a key alone.
        """
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        absent: set[str] = set()
        if len(wanted) >= self.list_min_keys:
            root = posixpath.commonpath(wanted) + "/"
            if root != "/":
                seen, pending = self._scan(root, wanted, lambda pages, _left, _last: pages >= self.quick_list_pages)
                absent.update(k for k in wanted[:pending] if k not in seen)
                wanted = wanted[pending:]
        groups: dict[str, list[str]] = {}
        for k in wanted:
            groups.setdefault(k.rsplit("/", 1)[0] + "/", []).append(k)
        # Big directories first (they take longest); lone keys become one-key jobs answered by a HEAD.
        jobs = sorted((g for g in groups.values() if len(g) >= self.list_min_keys), key=len, reverse=True)
        jobs += [[k] for g in groups.values() if len(g) < self.list_min_keys for k in g]

        def check(job: list[str]) -> list[str]:
            if len(job) >= self.list_min_keys:
                return self._absent_by_listing(job)
            return [] if self.has(job[0]) else job

        absent.update(k for part in parallel_map(check, jobs, self.transfer_workers) for k in part)
        return absent

    def _scan(self, directory: str, keys: list[str], stop: Callable[[int, int, str], bool]) -> tuple[set[str], int]:
        """List ``directory`` from ``keys[0]`` on (``keys`` sorted), noting which of ``keys`` exist.

        Returns ``(present, n)``: the listing has passed ``keys[:n]``. It ends at the last key,
        at the end of the directory, or when ``stop(pages, keys_left, last_listed)`` says so.
        """
        full = [self.full_key(k) for k in keys]
        wanted = dict(zip(full, keys, strict=True))
        present: set[str] = set()
        passed = pages = 0
        with self._errors("list", directory):
            for page in self._list(self.full_key(directory), start=full[0]):
                pages += 1
                present.update(wanted[name] for name, _size, _mtime in page if name in wanted)
                if len(page) < self.page_size:
                    return present, len(keys)  # the end of the directory
                last = page[-1][0]
                while passed < len(full) and full[passed] <= last:
                    passed += 1
                if passed == len(full) or stop(pages, len(full) - passed, last):
                    break
            else:
                passed = len(keys)
        return present, passed

    def _absent_by_listing(self, group: list[str]) -> list[str]:
        """Which of ``group`` (sorted keys of one directory) are absent, listing from the first one.

        If, part-way, the pages still to read are expected to outnumber the keys left to check,
        the rest are HEADed instead.
        """
        first, final = _position(self.full_key(group[0])), _position(self.full_key(group[-1]))

        def too_costly(pages: int, left: int, last: str) -> bool:
            covered, remaining = _position(last) - first, final - _position(last)
            return covered > 0 and pages * remaining / covered > left

        present, passed = self._scan(group[0].rsplit("/", 1)[0] + "/", group, too_costly)
        present.update(k for k in group[passed:] if self.has(k))
        return [k for k in group if k not in present]

    def put_file(
        self,
        key: str,
        src: str | os.PathLike[str],
        expect: Stat | None = None,
        on_bytes: ByteCallback | None = None,
    ) -> None:
        """Upload ``src`` to ``key`` unless present; ``on_bytes`` is called with byte counts as they are sent."""
        path = os.fspath(src)
        with self._errors("store", key):
            size = expect.st_size if expect is not None else os.stat(path).st_size
            if size <= self.inline_limit:
                data = read_small(path, size)  # never blocks on a FIFO, never reads a device forever
                if (
                    expect is not None
                    and key.startswith("blobs/")
                    and PREFIX + blake3(data).hexdigest() != (PREFIX + key.rsplit("/", 1)[1])
                ):
                    raise FileChangedError(f"{path!r} changed since it was added; log it again once it is stable")
                self._upload_bytes(self.full_key(key), data)  # small: accounted for when the file is done
                return
            self._upload_file(self.full_key(key), path, size, on_bytes)
            if expect is not None:
                now = os.stat(path)
                if (now.st_size, now.st_mtime_ns) != (expect.st_size, expect.st_mtime_ns):
                    # The object may hold bytes that do not match its name: take it back out.
                    self._delete(self.full_key(key))
                    raise FileChangedError(
                        f"{path!r} changed while it was being stored; log it again once it is stable"
                    )

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._errors("store", key):
            self._upload_bytes(self.full_key(key), data)

    def get_bytes(self, key: str) -> bytes:
        with self._errors("read", key):
            return self._read(self.full_key(key))

    def get_file(
        self,
        key: str,
        dest: str | os.PathLike[str],
        size: int | None = None,
        on_bytes: ByteCallback | None = None,
        digest: str | None = None,
    ) -> None:
        """Download ``key`` to ``dest``; ``size`` (when known) saves a request, ``on_bytes`` gets byte counts.

        With ``digest``, the bytes are verified while they land (large objects are hashed part by
        part as the download runs) and :class:`IntegrityError` is raised when they do not match.
        """
        target = os.fspath(dest)
        small = size is not None and size <= self.inline_limit
        hasher = PartHasher(target) if digest is not None and not small else None
        try:
            with self._errors("read", key):
                if small:  # one request, verified in memory
                    data = self._read(self.full_key(key))
                    actual = digest_bytes(data) if digest is not None else None
                    if actual == digest:
                        with open(target, "wb") as f:
                            f.write(data)
                else:
                    self._download(self.full_key(key), target, size, on_bytes, hasher.part_done if hasher else None)
                    actual = hasher.digest(size or 0) if hasher is not None else None
                if actual != digest:
                    raise IntegrityError(
                        f"blob {key} from {self.uri} hashes to {actual}, expected {digest}: the store holds "
                        "damaged bytes"
                    )
        except StoreError as exc:
            # A full or read-only local disk is not the store's fault: name the local path.
            local = local_write_error(exc.__cause__, dest) if exc.__cause__ is not None else None
            if local is not None:
                raise local from exc.__cause__
            raise
        finally:
            if hasher is not None:
                hasher.close()

    def iter_objects(self, prefix: str) -> Iterator[StoredObject]:
        with self._errors("list", prefix):
            for page in self._list(self.full_key(prefix)):
                for name, size, mtime in page:
                    yield StoredObject(self.store_key(name), size, mtime)

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self._delete(self.full_key(key))

    def delete_if_older(self, key: str, cutoff: float) -> bool:
        """Delete ``key`` unless it was modified at or after ``cutoff`` (epoch seconds); True if deleted."""
        with self._errors("delete", key):
            mtime = self._stat(self.full_key(key))
            if mtime is None or mtime >= cutoff:
                return False
            self._delete(self.full_key(key))
            return True


def _position(full_key: str) -> int:
    """Where a blob key sorts within its fan-out directory, as a 32-bit number (from its hex name)."""
    name = full_key.rsplit("/", 1)[-1]
    try:
        return int(name[:8].ljust(8, "0"), 16)
    except ValueError:
        return 0
