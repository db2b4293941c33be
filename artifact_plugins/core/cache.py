"""The bounded, verified, multi-process download cache.

Blobs fetched from a remote store live under ``<cache_dir>/blobs/blake3/<aa>/<hex>``. A blob
enters the cache only after its digest was verified, through a temp file renamed into place
while holding that blob's file lock, so concurrent processes fetch each blob once. The
cache is bounded: above ``max_bytes`` the least recently used blobs are evicted (a blob's
mtime is bumped on every use). Eviction is safe while others read: an open file survives
its unlink on POSIX, and readers copy out of the cache before returning.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import IntegrityError, StoreError
from .hashing import hash_file, hex_of
from .storage.base import local_write_error


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


class DownloadCache:
    """Content-addressed local cache of remote blobs, shared by all processes of a user."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.blobs = self.root / "blobs" / "blake3"
        self.locks = self.root / "locks"

    def path_for(self, digest: str) -> Path:
        """Where the blob with ``digest`` lives when cached."""
        h = hex_of(digest)
        return self.blobs / h[:2] / h

    def _lock(self, digest: str) -> FileLock:
        self._local(lambda: self.locks.mkdir(parents=True, exist_ok=True))
        return FileLock(str(self.locks / f"{hex_of(digest)[:16]}.lock"), timeout=LOCK_TIMEOUT_S)

    def get(self, digest: str) -> Path | None:
        """The cached blob's path (its use time refreshed), or ``None``."""
        path = self.path_for(digest)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    def fetch(self, digest: str, fill: Callable[[str], None]) -> Path:
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
            tmp = final.parent / f".tmp-{uuid.uuid4().hex}"
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
