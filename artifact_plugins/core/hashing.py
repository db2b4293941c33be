"""BLAKE3 digests of bytes and files, and the stat-keyed checksum cache.

A digest is written ``blake3:<64 hex>``. Large files are hashed through ``mmap`` with
BLAKE3's own multithreading; small files with a single read. The checksum cache remembers the
digest of a file by (device, inode, size, mtime_ns) so an unchanged file is never rehashed.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from blake3 import blake3

from .errors import FileChangedError, StoreError

PREFIX = "blake3:"
MMAP_THRESHOLD = 4 * 2**20
CHUNK = 4 * 2**20
# A file modified this recently may be modified again within the same mtime tick; such files
# are hashed but not remembered (the "racy timestamp" problem git solves the same way).
RACY_WINDOW_NS = 1_000_000_000


def digest_bytes(data: bytes) -> str:
    """``blake3:<hex>`` of ``data``."""
    return PREFIX + blake3(data).hexdigest()


def hex_of(digest: str) -> str:
    """The hex part of a ``blake3:<hex>`` digest."""
    return digest[len(PREFIX) :]


def _signature(st: os.stat_result) -> tuple[int, int]:
    return st.st_size, st.st_mtime_ns


def hash_file(path: str | os.PathLike[str], st: os.stat_result | None = None) -> tuple[str, os.stat_result]:
    """Hash a file; returns its digest and the stat it was hashed at.

    Raises :class:`FileChangedError` when the file's size or mtime changed while it was read.
    """
    try:
        before = st or os.stat(path)
        if before.st_size >= MMAP_THRESHOLD:
            h = blake3(max_threads=blake3.AUTO)
            h.update_mmap(path)
        else:
            with open(path, "rb") as f:
                h = blake3(f.read())
        after = os.stat(path)
    except OSError as exc:
        raise StoreError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    if _signature(after) != _signature(before):
        raise FileChangedError(
            f"{os.fspath(path)!r} changed while it was being hashed (size/mtime moved); "
            "log it again once it is no longer being written"
        )
    return PREFIX + h.hexdigest(), after


class ChecksumCache:
    """Digests of local files keyed by (device, inode, size, mtime_ns), shared by all processes.

    Backed by a small SQLite file in the cache directory. Failures to read or write the cache
    never fail a log: the file is simply hashed again.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS checksums (dev INTEGER, ino INTEGER, size INTEGER, "
                "mtime_ns INTEGER, digest TEXT NOT NULL, PRIMARY KEY (dev, ino))"
            )
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def lookup(self, stats: Sequence[os.stat_result]) -> list[str | None]:
        """The cached digest for each stat, or ``None`` where unknown or stale."""
        out: list[str | None] = [None] * len(stats)
        if not stats:
            return out
        try:
            with self._lock:
                conn = self._connect()
                index = {(s.st_dev, s.st_ino): i for i, s in enumerate(stats)}
                keys = list(index)
                for start in range(0, len(keys), 400):
                    chunk = keys[start : start + 400]
                    where = " OR ".join(["(dev=? AND ino=?)"] * len(chunk))
                    params = [v for k in chunk for v in k]
                    for dev, ino, size, mtime, digest in conn.execute(
                        f"SELECT dev, ino, size, mtime_ns, digest FROM checksums WHERE {where}", params
                    ):
                        i = index[(dev, ino)]
                        if (size, mtime) == _signature(stats[i]):
                            out[i] = digest
        except sqlite3.Error:
            pass
        return out

    def remember(self, items: Iterable[tuple[os.stat_result, str]]) -> None:
        """Record digests; files modified within the racy window are skipped."""
        now = time.time_ns()
        rows = [
            (s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, d) for s, d in items if now - s.st_mtime_ns > RACY_WINDOW_NS
        ]
        if not rows:
            return
        try:
            with self._lock:
                conn = self._connect()
                conn.execute("BEGIN")
                conn.executemany("INSERT OR REPLACE INTO checksums VALUES (?,?,?,?,?)", rows)
                conn.execute("COMMIT")
        except sqlite3.Error:
            try:
                if self._conn is not None:
                    self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
