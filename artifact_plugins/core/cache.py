"""The bounded, verified, multi-process download cache.

Blobs fetched from a remote store live under ``<cache_dir>/blobs/blake3/<aa>/<hex>``. A blob
enters the cache only after its digest was verified, through a temp file renamed into place.
A small blob (at most :data:`SMALL_BLOB` bytes) is fetched into memory, verified there and
cached without a lock, as a hard link to the file the download wrote: two processes racing
for it both download a few KiB, and the first link wins. Small blobs are re-verified on every
cache hit (cheap at that size), since their owner can edit the downloaded file in place. A large blob fetched
through :meth:`DownloadCache.fetch` (single-entry reads, the viewer) is fetched under that
blob's file lock, so concurrent processes fetch it once; a large blob downloaded into a
directory goes straight there instead (see :func:`artifact_plugins.core.transfer.fetch_entry`).
The cache is bounded: above ``max_bytes`` the least recently used blobs are evicted (a blob's
mtime is bumped on every use). Eviction is safe while others read: an open file survives
its unlink on POSIX, and readers copy out of the cache before returning.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import IntegrityError, StoreError
from .hashing import digest_bytes, hash_file, hex_of, read_fd
from .storage.base import local_write_error, temp_token
from .storage.local import write_new_file


@dataclass(frozen=True)
class CacheInfo:
    """Size and population of the cache."""

    path: str
    files: int
    bytes: int
    max_bytes: int


#: How long a process waits for another one fetching the same blob (or evicting) before it gives up.
LOCK_TIMEOUT_S = 600
#: Temp files of fetches killed mid-way are removed once this old (a live fetch keeps its file young).
STALE_TEMP_S = 3600
#: Blobs at most this large are fetched into memory and cached without a file lock.
SMALL_BLOB = 2**20
#: Reads of a small blob whose bytes do not match its digest (damaged in transit) before giving up.
VERIFY_ATTEMPTS = 3


class DownloadCache:
    """Content-addressed local cache of remote blobs, shared by all processes of a user."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.blobs = self.root / "blobs" / "blake3"
        self.locks = self.root / "locks"
        self._blob_prefix = f"{self.blobs}/"

    def path_for(self, digest: str) -> Path:
        """Where the blob with ``digest`` lives when cached."""
        return Path(self._blob_file(digest))

    def _blob_file(self, digest: str) -> str:
        # A string, not a Path: a download asks for it twice per small blob, and building and
        # printing Path objects stood out in profiles of cold downloads of small files.
        h = hex_of(digest)
        return f"{self._blob_prefix}{h[:2]}/{h}"

    def _lock(self, digest: str) -> FileLock:
        self._local(lambda: self.locks.mkdir(parents=True, exist_ok=True))
        return FileLock(str(self.locks / f"{hex_of(digest)[:16]}.lock"), timeout=LOCK_TIMEOUT_S)

    def get(self, digest: str) -> Path | None:
        """The cached blob's path (its use time refreshed), or ``None``.

        A small blob is checked against its digest first (it may share its inode with a file a
        download wrote, which its owner can edit); one that no longer matches is dropped.
        """
        found = self._open_verified(digest, read_large=False)
        return None if found is None else self.path_for(digest)

    def _open_verified(self, digest: str, read_large: bool) -> bytes | None:
        """The cached blob's bytes (``b""`` for a large one unless ``read_large``), its use time
        refreshed; ``None`` when absent or, for a small blob, no longer matching (then dropped)."""
        path = self._blob_file(digest)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            small = st.st_size <= SMALL_BLOB
            data = read_fd(fd, st.st_size) if small or read_large else b""
            if small and digest_bytes(data) != digest:
                self._drop(path)
                return None
            self._touch(fd, st)
            return data
        finally:
            os.close(fd)

    @staticmethod
    def _touch(fd: int, st: os.stat_result) -> None:
        """Mark a blob used (LRU), unless it is also a downloaded file: its mtime is its owner's."""
        if st.st_nlink == 1:
            os.utime(fd)

    @staticmethod
    def _drop(path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def fetch_small(self, digest: str, read: Callable[[], bytes], dest: str | os.PathLike[str]) -> int:
        """Write a small blob to the new file ``dest``: from the cache, else from ``read()``; returns its size.

        Bytes are verified either way. Fetched bytes that do not match ``digest`` (damaged in
        transit) are read again, at most :data:`VERIFY_ATTEMPTS` times, then
        :class:`IntegrityError`. A fetched blob enters the cache as a hard link to ``dest`` (one
        directory entry instead of creating and writing a second file); where ``dest`` is on
        another file system, as a copy. Because such a blob shares its inode with ``dest``, every
        cache hit re-checks it.
        """
        cached = self._open_verified(digest, read_large=True)
        if cached is not None:
            self._write(dest, cached)
            return len(cached)
        for _ in range(VERIFY_ATTEMPTS):
            data = read()
            actual = digest_bytes(data)
            if actual == digest:
                break
        else:
            raise IntegrityError(
                f"downloaded blob hashes to {actual}, expected {digest} ({VERIFY_ATTEMPTS} attempts); "
                "it was not cached — the store holds damaged bytes"
            )
        self._write(dest, data)
        self._adopt(self._blob_file(digest), os.fspath(dest), data)
        return len(data)

    @staticmethod
    def _write(dest: str | os.PathLike[str], data: bytes) -> None:
        try:
            write_new_file(dest, data)
        except OSError as exc:
            raise (local_write_error(exc, dest) or StoreError(f"cannot write {os.fspath(dest)}: {exc}")) from exc

    def _adopt(self, path: str, source: str, data: bytes) -> None:
        """Cache the verified file ``source`` (holding ``data``) as blob ``path``."""
        parent = path.rsplit("/", 1)[0]
        try:
            try:
                os.link(source, path)
            except FileNotFoundError:
                self._local(lambda: os.makedirs(parent, exist_ok=True))
                os.link(source, path)
            return
        except FileExistsError:
            return  # another download cached it first
        except OSError:
            pass  # another file system, or links not allowed there: keep a copy instead
        tmp = f"{parent}/.tmp-{temp_token()}"
        try:
            write_new_file(tmp, data)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise (local_write_error(exc, self.root) or StoreError(f"download cache {self.root}: {exc}")) from exc

    def fetch(self, digest: str, fill: Callable[[str], object]) -> Path:
        """The cached blob, calling ``fill(tmp_path)`` to download it first when missing.

        The downloaded bytes are verified against ``digest`` before they enter the cache.
        """
        hit = self.get(digest)
        if hit is not None:
            return hit
        lock = self._lock(digest)
        try:
            self._local(lock.acquire)
        except Timeout:
            raise StoreError(
                f"another process has been fetching {digest} into the download cache {self.root} for over "
                f"{LOCK_TIMEOUT_S}s (lock {lock.lock_file}); look for a stuck process, or retry"
            ) from None
        try:
            hit = self.get(digest)
            if hit is not None:
                return hit
            final = self.path_for(digest)
            tmp = final.parent / f".tmp-{temp_token()}"
            try:
                self._local(lambda: final.parent.mkdir(parents=True, exist_ok=True))
                fill(str(tmp))
                actual, _ = hash_file(tmp)
                if actual != digest:
                    raise IntegrityError(f"downloaded blob hashes to {actual}, expected {digest}; it was not cached")
                self._local(lambda: os.replace(tmp, final))
            finally:
                with contextlib.suppress(OSError):  # never mask the real error (EROFS, EPERM...)
                    tmp.unlink()
            return final
        finally:
            lock.release()

    def _local(self, action: Callable[[], object]) -> None:
        """Run a file-system step on the cache's own disk; its failures (full, read-only) name the cache."""
        try:
            action()
        except Timeout:  # a TimeoutError, hence an OSError: not a disk problem
            raise
        except OSError as exc:
            raise (local_write_error(exc, self.root) or StoreError(f"download cache {self.root}: {exc}")) from exc

    def info(self) -> CacheInfo:
        """How many blobs and bytes the cache holds."""
        files = total = 0
        for _path, st in self._entries():
            files += 1
            total += st.st_size
        return CacheInfo(str(self.root), files, total, self.max_bytes)

    def _entries(self) -> list[tuple[Path, os.stat_result]]:
        out: list[tuple[Path, os.stat_result]] = []
        if not self.blobs.exists():
            return out
        for sub in self.blobs.iterdir():
            if not sub.is_dir():
                continue
            for f in sub.iterdir():
                if f.name.startswith(".tmp-"):
                    continue
                try:
                    out.append((f, f.stat()))
                except FileNotFoundError:
                    continue
        return out

    def evict(self, max_bytes: int | None = None) -> tuple[int, int]:
        """Delete least recently used blobs down to ``max_bytes``; returns (files, bytes) freed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        self.clean_stale_temp(STALE_TEMP_S)  # litter of killed fetches is not counted, so reclaim it here
        entries = self._entries()
        total = sum(st.st_size for _p, st in entries)
        freed_files = freed_bytes = 0
        if total <= limit:
            return 0, 0
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / "evict.lock"), timeout=LOCK_TIMEOUT_S):
            for path, st in sorted(entries, key=lambda e: e[1].st_mtime_ns):
                if total <= limit:
                    break
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                total -= st.st_size
                freed_files += 1
                freed_bytes += st.st_size
        return freed_files, freed_bytes

    def clean_stale_temp(self, older_than_s: float = 3600) -> int:
        """Remove temp files left by killed processes; returns how many."""
        removed = 0
        cutoff = time.time() - older_than_s
        if not self.blobs.exists():
            return 0
        for tmp in self.blobs.glob("*/.tmp-*"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
