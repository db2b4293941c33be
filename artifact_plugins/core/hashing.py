"""BLAKE3 digests of bytes and files, and the stat-keyed checksum cache.

A digest is written ``blake3:<64 hex>``. Large files are hashed through ``mmap`` with
BLAKE3's own multithreading; small files with a single read. The checksum cache remembers the
digest of a file by (device, inode, size, mtime_ns) so an unchanged file is never rehashed, and
the last scan of a directory whole, so an unchanged file of it is not even looked up.
"""

from __future__ import annotations

import itertools
import mmap
import os
import sqlite3
import stat as stat_mod
import struct
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from blake3 import blake3

from . import forked
from .errors import FileChangedError, StoreError
from .forked import run_forked

PREFIX = "blake3:"
MMAP_THRESHOLD = 4 * 2**20
CHUNK = 4 * 2**20
# A file modified shortly before its bytes were read may be rewritten within the same mtime tick
# without its stat telling; such files are hashed but not remembered (the "racy timestamp" problem
# git solves the same way). How short depends on the timestamps the file system keeps: see
# :func:`settled`.
#: The window for a file whose mtime is a whole second: its file system may keep seconds (ext3,
#: HFS+) or even seconds (FAT), so a rewrite up to two seconds later can leave the same mtime.
RACY_WINDOW_NS = 2_000_000_000
#: The window for a file whose mtime has a sub-second part: its file system keeps fine timestamps
#: (ext4, XFS, btrfs, tmpfs, APFS, NTFS: 1-100 ns), taken from a clock that moves by ticks of at
#: most 10 ms (the kernel's coarse clock at HZ=100; exFAT keeps 10 ms), with ten times that for
#: the clock of a network file server and ours to differ by.
FINE_RACY_WINDOW_NS = 100_000_000
_SECOND_NS = 1_000_000_000


def settled(mtime_ns: int, since: int) -> bool:
    """Whether a file with modification time ``mtime_ns`` whose bytes were read from time ``since``
    on (ns, :func:`time.time_ns`) may be remembered: any later rewrite of it gives it another mtime.

    ``since`` is when reading began, not when the digest is remembered: a scan of many files
    takes seconds, and a file rewritten right after it was read, within its mtime tick, keeps
    its mtime whenever the digest is written down.
    """
    window = RACY_WINDOW_NS if mtime_ns % _SECOND_NS == 0 else FINE_RACY_WINDOW_NS
    return mtime_ns < since - window


class Keep(Protocol):
    """Where the bytes of the files hashed go as they are hashed (see :func:`hash_file`)."""

    def __call__(self, digest: str, data: bytes) -> None:
        """Take ``data``, the whole of a small file read to be hashed, whose digest is ``digest``."""

    def hash_large(self, path: str | os.PathLike[str], st: Stat) -> tuple[str, os.stat_result]:
        """:func:`hash_file` (without a ``keep``) of a file of at least :data:`MMAP_THRESHOLD`
        bytes whose stat is ``st``, taking its bytes too as they are hashed."""


def digest_bytes(data: bytes) -> str:
    """``blake3:<hex>`` of ``data``."""
    return PREFIX + blake3(data).hexdigest()


def hex_of(digest: str) -> str:
    """The hex part of a ``blake3:<hex>`` digest."""
    return digest[len(PREFIX) :]


def read_fd(fd: int, size: int) -> bytes:
    """Every byte of an open file expected to hold ``size`` bytes: one ``read`` when it does.

    Asking for one byte more tells a complete read from a file that grew; anything else
    (grown, shrunk, a short read) falls back to reading until end of file.
    """
    data = os.read(fd, size + 1)
    if len(data) == size:
        return data
    parts = [data]
    total = len(data)
    # Short reads go on; nothing past size + 1 is ever read: a file that keeps growing (or a
    # device swapped in for it) is "changed", reported by the caller, not read into memory forever.
    while data and total <= size:
        data = os.read(fd, size + 1 - total)
        parts.append(data)
        total += len(data)
    return b"".join(parts)


def _not_regular(path: str | os.PathLike[str]) -> FileChangedError:
    return FileChangedError(
        f"{os.fspath(path)!r} is no longer a regular file (a FIFO, device or socket took its place); "
        "log it again once it is a plain file"
    )


def open_regular(path: str | os.PathLike[str]) -> int:
    """Open ``path`` for reading without ever blocking, and only if it is a regular file.

    A FIFO swapped in for a file would block ``open`` until a writer came; a device would
    never end. Both are refused (O_NONBLOCK does nothing to reads of a regular file).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat_mod.S_ISREG(mode):
        os.close(fd)
        raise _not_regular(path)
    return fd


def read_small(path: str | os.PathLike[str], size: int) -> bytes:
    """The bytes of a small file whose size is known, with as few system calls as possible."""
    fd = open_regular(path)
    try:
        return read_fd(fd, size)
    finally:
        os.close(fd)


def read_to_check(path: str | os.PathLike[str], size: int) -> bytes:
    """At most ``size + 1`` bytes of a small file, for a caller that checks them against its digest.

    No ``fstat``: whatever took the file's place cannot pass that check, and cannot hang or
    flood memory either (opened non-blocking, a FIFO reads as empty; a device gives at most
    ``size + 1`` bytes).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return read_fd(fd, size)
    except BlockingIOError:  # a FIFO with a writer and nothing written yet
        return b""
    finally:
        os.close(fd)


class FileStat(NamedTuple):
    """What the log pipeline keeps of a file's ``stat``: its identity, size and modification time.

    Read through the same ``st_*`` names as :class:`os.stat_result`, so either can be passed
    where a stat is expected. A draft keeps one per file until it is logged: this instead of a
    stat result with the other fields zeroed took a million-entry log from 1,043 to 963 bytes
    per entry (``benchmarks/run_all.py``'s scale run).
    """

    st_mode: int
    st_ino: int
    st_dev: int
    st_size: int
    st_mtime_ns: int


#: A stat as the pipeline reads it: a full :class:`os.stat_result` or a :class:`FileStat`.
Stat = os.stat_result | FileStat

_SHARED: dict[int, int] = {}  # one int object per distinct mode / device number
_new_stat = tuple.__new__


def compact_stat(st: Stat) -> FileStat:
    """The :class:`FileStat` of a stat result (mode and device numbers shared between files)."""
    share = _SHARED.setdefault
    mode, dev = st.st_mode, st.st_dev
    return _new_stat(FileStat, (share(mode, mode), st.st_ino, share(dev, dev), st.st_size, st.st_mtime_ns))


#: What a forked child hands back per path it stat'ed (:func:`stat_files`): found or not, then
#: the :class:`FileStat`.
_STATTED = struct.Struct(f"?{len(FileStat._fields)}q")
_NOT_FOUND = _STATTED.pack(False, *(0,) * len(FileStat._fields))


def stat_files(count: int, path: Callable[[int], str]) -> list[FileStat | None]:
    """The :class:`FileStat` of ``path(i)`` for each ``i`` below ``count`` (symlinks followed),
    ``None`` where it cannot be stat'ed. Each path is made as it is stat'ed (a million of them at
    once would be a hundred MiB).

    A ``stat`` is a system call that holds the process for all of it (3-5 µs a file on this
    project's benchmark machines: most of a re-log of many small files), so many (at least
    :data:`~.forked.STAT_FORK_MIN_ITEMS`) are shared with a forked child on a second core
    (:func:`~.forked.run_forked`).
    """
    found: list[FileStat | None] = [None] * count
    stat, unpack = os.stat, _STATTED.unpack

    def stat_one(i: int) -> None:
        try:  # noqa: SIM105  # a with-statement per file costs more than the stat's Python side
            found[i] = compact_stat(stat(path(i)))
        except OSError:
            pass  # vanished, dangling symlink, unreadable parent: the caller decides

    def export(i: int) -> bytes:
        st = found[i]
        return _NOT_FOUND if st is None else _STATTED.pack(True, *st)

    def adopt(i: int, data: bytes) -> None:
        ok, *fields = unpack(data)
        if ok:
            found[i] = compact_stat(FileStat(*fields))

    def serially(fn: Callable[[int], object], items: Sequence[int]) -> None:
        for i in items:
            fn(i)

    run_forked(
        stat_one,
        range(count),
        export=export,
        adopt=adopt,
        width=_STATTED.size,
        run=serially,
        min_items=forked.STAT_FORK_MIN_ITEMS,
    )
    return found


#: Bytes of a large file mapped at a time while hashing it: the whole of a log's memory that
#: grows with a file's size. 16 MiB hashes a 1 GiB file as fast as 64 MiB did (BLAKE3's threads
#: still get enough work per window) with 48 MiB less at the peak.
MMAP_WINDOW = 16 * 2**20


def _hash_mapped(fd: int, size: int) -> blake3:
    """BLAKE3 (with its own threads) of a large file, mapped one window at a time.

    ``update_mmap`` maps the whole file, so a process hashing a 1 GiB file peaked at 1 GiB of
    resident (file-backed) pages; windows keep the peak at :data:`MMAP_WINDOW` for any size.
    """
    h = blake3(max_threads=blake3.AUTO)
    offset = 0
    while offset < size:
        length = min(MMAP_WINDOW, size - offset)
        with mmap.mmap(fd, length, access=mmap.ACCESS_READ, offset=offset) as window:
            h.update(window)
            window.madvise(mmap.MADV_DONTNEED)
        offset += length
    return h  # a file that grew or shrank meanwhile fails the caller's size/mtime check


def _signature(st: Stat) -> tuple[int, int]:
    return st.st_size, st.st_mtime_ns


def _hash_small(path: str | os.PathLike[str], st: Stat, keep: Keep | None = None) -> tuple[str, os.stat_result]:
    """:func:`hash_file` of a small file whose stat is known: read in one call, hashed in memory.

    ``st`` said "regular file"; the ``fstat`` after the read proves the file read was one (a
    FIFO or device swapped in meanwhile is refused then: opened non-blocking and read at most
    ``size + 1`` bytes, it can neither hang nor flood memory), so no ``fstat`` is needed before.
    ``keep`` is handed the digest and the very bytes it names.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            try:
                data = read_fd(fd, st.st_size)
            except BlockingIOError:  # only a FIFO-like file would block; refused just below
                data = b""
            after = os.fstat(fd)  # the file just read, without a second path lookup
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    if not stat_mod.S_ISREG(after.st_mode):
        raise _not_regular(path)
    if _signature(after) != _signature(st) or len(data) != st.st_size:
        raise FileChangedError(
            f"{os.fspath(path)!r} changed while it was being hashed (size/mtime moved); "
            "log it again once it is no longer being written"
        )
    digest = PREFIX + blake3(data).hexdigest()
    if keep is not None:
        keep(digest, data)
    return digest, after


def hash_file(
    path: str | os.PathLike[str], st: Stat | None = None, keep: Keep | None = None
) -> tuple[str, os.stat_result]:
    """Hash a file; returns its digest and the stat it was hashed at.

    ``keep``, if given, is called with the digest and the bytes of a file small enough to be
    read whole (under :data:`MMAP_THRESHOLD`): what was hashed, byte for byte. A larger file is
    hashed by its :meth:`Keep.hash_large`.

    Raises :class:`FileChangedError` when the file's size or mtime changed while it was read.
    """
    try:
        before = st or os.stat(path)
        if before.st_size < MMAP_THRESHOLD:
            return _hash_small(path, before, keep)
        if keep is not None:
            return keep.hash_large(path, before)
        fd = open_regular(path)  # never hand a FIFO or a device to the mmap hasher
        try:
            h = _hash_mapped(fd, before.st_size)
            after = os.fstat(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    if _signature(after) != _signature(before):
        raise FileChangedError(
            f"{os.fspath(path)!r} changed while it was being hashed (size/mtime moved); "
            "log it again once it is no longer being written"
        )
    return PREFIX + h.hexdigest(), after


#: Directories remembered whole (see :meth:`ChecksumCache.known_tree`): from / up to this many
#: files, and at most this many directories kept, the most recent, of at most
#: :data:`TREE_FILES_KEPT` files together (per file, its path, 40 bytes of stat and 32 of digest).
TREE_MIN_FILES = 1_000
TREE_MAX_FILES = 2_000_000
TREES_KEPT = 64
#: A file hashed as part of a remembered directory is also remembered on its own (found when it
#: is added alone or with another directory) from this size on only: below it, reading it again
#: costs little, and a row per file cost a first log of 10,000 files of 4 KiB 25-28 ms of its
#: 286-327 (``bench_first_log.py`` on tmpfs, AMD EPYC: ``remember`` 7 ms without).
TREE_ALONE_SIZE = 1 * 2**20
TREE_FILES_KEPT = 4_000_000

#: Bytes per file of a remembered tree's stats: the five :class:`FileStat` fields as int64s.
_STAT_WIDTH = 8 * len(FileStat._fields)
#: Files compared at a time between two trees' stats before looking at single files.
_STAT_BLOCK = 64
#: The stat recorded for a file modified within the racy window: it never matches a real stat, so
#: the next log looks that file up (and hashes it) again.
_UNSETTLED = -1
#: Files per row of a remembered tree, and per ``struct.pack`` call: no copy of a whole
#: 100,000-file tree's stats or digests is ever made for SQLite (see :meth:`ChecksumCache.remember_tree`).
_CHUNK_FILES = 4096


def _stat_bytes(stats: Sequence[FileStat], since: int | None = None) -> bytearray | None:
    """Every file's :class:`FileStat` packed as int64s; ``None`` if one does not fit.

    Files not :func:`settled` when read from ``since`` on are packed as :data:`_UNSETTLED` throughout.
    """
    fields = len(FileStat._fields)
    packed = bytearray()
    try:  # one pack call per chunk of files: about twice as fast as filling an array
        for start in range(0, len(stats), _CHUNK_FILES):
            part = stats[start : start + _CHUNK_FILES]
            packed += struct.pack(f"{fields * len(part)}q", *itertools.chain.from_iterable(part))
    except struct.error:  # a 64-bit inode number beyond 2**63: such trees are not remembered
        return None
    if since is None:
        return packed
    newest = max(memoryview(packed).cast("q")[fields - 1 :: fields], default=0)
    if newest >= since - max(RACY_WINDOW_NS, FINE_RACY_WINDOW_NS):  # else every file is settled
        unsettled = struct.pack(f"{fields}q", *[_UNSETTLED] * fields)
        for i, s in enumerate(stats):
            if not settled(s.st_mtime_ns, since):
                packed[i * _STAT_WIDTH : (i + 1) * _STAT_WIDTH] = unsettled
    return packed


#: A tree's rows are rewritten whole, rather than patched, once its patches would hold more than
#: this share of its files (or :data:`_PATCH_MIN_FILES`, for small trees).
_PATCH_SHARE = 8
_PATCH_MIN_FILES = 256


def _patched(
    stats: bytes | bytearray, digests: bytes | bytearray, patches: Iterable[tuple[int, bytes, bytes, bytes, int]]
) -> tuple[bytearray, bytearray] | None:
    """A tree's packed stats and digests with its patch rows applied in turn (each row: part,
    packed int64 indices, their stats, their digests, time); ``None`` if a patch does not fit."""
    stats_out, digests_out = bytearray(stats), bytearray(digests)
    files = len(digests) // 32
    for _part, packed, new_stats, new_digests, _at in patches:
        if (
            len(packed) % 8
            or len(new_stats) != len(packed) // 8 * _STAT_WIDTH
            or len(new_digests) != len(packed) // 8 * 32
        ):
            return None
        for k, i in enumerate(memoryview(packed).cast("q")):
            if not 0 <= i < files:
                return None
            stats_out[i * _STAT_WIDTH : (i + 1) * _STAT_WIDTH] = new_stats[k * _STAT_WIDTH : (k + 1) * _STAT_WIDTH]
            digests_out[i * 32 : i * 32 + 32] = new_digests[k * 32 : k * 32 + 32]
    return stats_out, digests_out


def _tree_key(root: str) -> bytes:
    return blake3(os.fsencode(root)).digest()


def _join_paths(rels: Sequence[str]) -> bytes:
    return "\0".join(rels).encode("utf-8", "surrogateescape")


def _changed_files(old_stats: bytes | bytearray, stats: bytes | bytearray) -> Iterator[int]:
    """The index of every file whose stat is not the one remembered at its index, in order.

    For a directory whose paths are those remembered, in the same order; ``stats`` and
    ``old_stats`` are :func:`_stat_bytes`. Whole blocks of stats compare at C speed first (a
    slice of bytes is a copy: halving the whole directory would copy it once per level), then
    :func:`_differing` halves the blocks that differ: a few changed files cost a few steps.
    """
    w = _STAT_WIDTH
    step = w * _STAT_BLOCK
    for start in range(0, len(stats), step):
        if stats[start : start + step] != old_stats[start : start + step]:
            yield from _differing(stats, old_stats, start // w, min(start + step, len(stats)) // w)


def _unchanged_by_path(
    old_rels: Sequence[str], old_stats: bytes | bytearray, rels: Sequence[str], stats: bytes | bytearray
) -> Iterator[tuple[int, int]]:
    """``(index, remembered index)`` of every file whose path and stat are those remembered,
    for a directory whose files were added, removed or renamed since (matched by path)."""
    w = _STAT_WIDTH
    index = {p: i for i, p in enumerate(old_rels)}
    for i, rel in enumerate(rels):
        j = index.get(rel)
        if j is not None and stats[i * w : i * w + w] == old_stats[j * w : j * w + w]:
            yield i, j


def _moved_files(
    old_rels: Sequence[str],
    old_stats: bytes | bytearray,
    gone: Collection[str],
    known: Sequence[str | None],
    stats: bytes | bytearray,
) -> Iterator[tuple[int, int]]:
    """``(index, remembered index)`` of every file not ``known`` whose stat is that of a
    remembered file whose path is ``gone``: a file renamed or moved within the directory keeps
    its device, inode, size and modification time, so it is not read again. Costs a step per
    file only where some remembered path is gone."""
    if not gone:
        return
    w = _STAT_WIDTH
    moved = {bytes(old_stats[j * w : j * w + w]): j for j, rel in enumerate(old_rels) if rel in gone}
    for i, digest in enumerate(known):
        if digest is None:
            j = moved.get(bytes(stats[i * w : i * w + w]))
            if j is not None:
                yield i, j


def _differing(stats: bytes | bytearray, old_stats: bytes | bytearray, first: int, end: int) -> Iterator[int]:
    """The files in ``[first, end)`` whose packed stats differ, in order, found by halving the
    range: a few changed files among many cost a few comparisons each, not one per file."""
    w = _STAT_WIDTH
    if stats[first * w : end * w] == old_stats[first * w : end * w]:
        return
    if end - first == 1:
        yield first
        return
    middle = (first + end) // 2
    yield from _differing(stats, old_stats, first, middle)
    yield from _differing(stats, old_stats, middle, end)


class TreeMark(NamedTuple):
    """A committed version that holds every file of a directory as remembered (:meth:`ChecksumCache.mark_tree`)."""

    #: The version's digest.
    version: str
    #: The entry prefix the directory's files were added under (``""``: none).
    prefix: str
    #: Whether the version's manifest is exactly the directory's files under ``prefix``.
    exact: bool
    #: How the version's manifest is stored: ``""`` whole, else the digest of its delta's base;
    #: ``None`` if not known.
    stored_base: str | None
    #: The store's generation the version's commit was fenced by (its blobs were all present
    #: then, and stay so while it is unchanged: only a garbage collection deletes, and each
    #: one counts itself first); ``None`` if not known.
    generation: int | None = None


class KnownTree(NamedTuple):
    """What the checksum cache remembers of a directory (see :meth:`ChecksumCache.known_tree`)."""

    #: Each file's digest where the file is as remembered, else ``None``.
    digests: list[str | None]
    #: Names this state of the remembered rows; :meth:`ChecksumCache.mark_tree` refers to it.
    token: int
    #: Whether the rows list the same paths in the same order as the scan.
    same_paths: bool
    #: The remembered files that the scan did not find (paths under the directory).
    gone: list[str]
    #: Per registry and store (their :func:`store_scope`), the committed version whose manifest
    #: holds the digest of every file as remembered.
    held_by: dict[str, TreeMark]


def store_scope(registry: str, store: str) -> str:
    """A short name for one registry and store pair, under which tree marks are kept (a hash:
    the URLs may carry credentials)."""
    return blake3(f"{registry}\0{store}".encode()).hexdigest()[:32]


def _checksum_rows(items: Iterable[tuple[Stat, str]], since: int) -> Iterator[tuple[int, int, int, int, str]]:
    """``(dev, ino, size, mtime_ns, digest)`` of each ``(stat, digest)`` whose file was
    :func:`settled` when read from ``since`` on."""
    return ((s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, d) for s, d in items if settled(s.st_mtime_ns, since))


def _insert_checksums(conn: sqlite3.Connection, rows: Iterable[tuple[int, int, int, int, str]]) -> None:
    """Write :func:`_checksum_rows`, streamed: a million never sit in a list at once."""
    conn.executemany("INSERT OR REPLACE INTO file_digests VALUES (?,?,?,?,?)", rows)


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
            # One B-tree keyed by (dev, ino) (WITHOUT ROWID): a rowid table also writes a separate
            # key index, twice the pages for the rows a log after a few changes rewrites.
            conn.execute(
                "CREATE TABLE IF NOT EXISTS file_digests (dev INTEGER, ino INTEGER, size INTEGER, "
                "mtime_ns INTEGER, digest TEXT NOT NULL, PRIMARY KEY (dev, ino)) WITHOUT ROWID"
            )
            earlier = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checksums'"
            if conn.execute(earlier).fetchone():
                conn.execute("BEGIN IMMEDIATE")  # the earlier table's rows carried over, once
                if conn.execute(earlier).fetchone():
                    conn.execute("INSERT OR IGNORE INTO file_digests SELECT * FROM checksums")
                    conn.execute("DROP TABLE checksums")
                conn.execute("COMMIT")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS trees (key BLOB, part INTEGER, paths BLOB NOT NULL, stats BLOB NOT NULL, "
                "digests BLOB NOT NULL, at INTEGER, PRIMARY KEY (key, part))"
            )
            # ``at`` is stored after the large columns: reading it from the rows walks every
            # overflow page of a big tree (milliseconds at 100,000 files); the index holds it apart.
            conn.execute("CREATE INDEX IF NOT EXISTS trees_by_time ON trees (key, at)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS tree_marks_g (key BLOB, scope TEXT, token INTEGER NOT NULL, "
                "version_digest TEXT NOT NULL, prefix TEXT NOT NULL, exact INTEGER NOT NULL, stored_base TEXT, "
                "generation INTEGER, PRIMARY KEY (key, scope))"
            )
            # Marks without the store's generation, superseded by ``tree_marks_g``.
            conn.execute("DROP TABLE IF EXISTS tree_marks")
            # Whole-set snapshots of earlier versions (exact matches only), superseded by ``trees``.
            conn.execute("DROP TABLE IF EXISTS snapshots")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS reference_fetches (dev INTEGER, ino INTEGER, ref_digest TEXT NOT NULL, "
                "content_digest TEXT NOT NULL, PRIMARY KEY (dev, ino))"
            )
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def lookup(self, stats: Sequence[Stat]) -> list[str | None]:
        """The cached digest for each stat, or ``None`` where unknown or stale."""
        out: list[str | None] = [None] * len(stats)
        if not stats:
            return out
        try:
            with self._lock:
                conn = self._connect()
                for start in range(0, len(stats), 900):
                    # dev = ? AND ino IN (...): one primary-key range per chunk, not an OR per
                    # file; chunk by chunk, so no index over all files is ever built.
                    by_dev: dict[int, dict[int, int]] = {}
                    for i in range(start, min(start + 900, len(stats))):
                        s = stats[i]
                        by_dev.setdefault(s.st_dev, {})[s.st_ino] = i
                    for dev, index in by_dev.items():
                        marks = ",".join("?" * len(index))
                        for ino, size, mtime, digest in conn.execute(
                            f"SELECT ino, size, mtime_ns, digest FROM file_digests WHERE dev = ? AND ino IN ({marks})",
                            [dev, *index],
                        ):
                            i = index[ino]
                            st = stats[i]
                            if size == st.st_size and mtime == st.st_mtime_ns:
                                out[i] = digest
        except sqlite3.Error:
            pass
        return out

    def remember(self, items: Iterable[tuple[Stat, str]], since: int | None = None) -> None:
        """Record digests of files whose bytes were read (or written) from time ``since`` on
        (default: now); files not :func:`settled` by then are skipped."""
        since = time.time_ns() if since is None else since
        rows = _checksum_rows(items, since)
        first = next(rows, None)
        if first is None:
            return
        self._write(lambda conn: _insert_checksums(conn, itertools.chain([first], rows)))

    def _write(self, fn: Callable[[sqlite3.Connection], object]) -> bool:
        """Run ``fn`` in one write transaction; whether it was committed. A failure is rolled back
        and swallowed (it only costs a later rehash)."""
        try:
            with self._lock:
                conn = self._connect()
                conn.execute("BEGIN")
                fn(conn)
                conn.execute("COMMIT")
            return True
        except sqlite3.Error:
            try:
                if self._conn is not None:
                    self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            return False

    # -- files fetched for references -------------------------------------------------------------

    def remember_fetched(self, items: Iterable[tuple[Stat, str, str]]) -> None:
        """Record ``(stat, reference digest, content digest)``: the file (device and inode) received the
        bytes of the reference entry with that digest (which names the object's identity, not its
        bytes), and they hash to the content digest. Whether the file still holds them is the
        content checksums' question (:meth:`lookup`, else hashing), not this record's."""
        rows = [(s.st_dev, s.st_ino, ref, content) for s, ref, content in items]
        if rows:
            sql = "INSERT OR REPLACE INTO reference_fetches VALUES (?,?,?,?)"
            self._write(lambda conn: conn.executemany(sql, rows))

    def fetched(self, stats: Sequence[Stat]) -> list[tuple[str, str] | None]:
        """``(reference digest, content digest)`` recorded for each file by :meth:`remember_fetched`, if any."""
        out: list[tuple[str, str] | None] = [None] * len(stats)
        try:
            with self._lock:
                conn = self._connect()
                for i, st in enumerate(stats):
                    row = conn.execute(
                        "SELECT ref_digest, content_digest FROM reference_fetches WHERE dev = ? AND ino = ?",
                        (st.st_dev, st.st_ino),
                    ).fetchone()
                    out[i] = (row[0], row[1]) if row is not None else None
        except sqlite3.Error:
            pass
        return out

    # -- whole directories ------------------------------------------------------------------------

    def known_tree(self, root: str, rels: Sequence[str], stats: Sequence[FileStat]) -> KnownTree | None:
        """The digest of every file of directory ``root`` that is as the last remembered scan of it saw it.

        ``rels`` are the files' paths under ``root`` and ``stats`` their stats, in the same
        order. A file counts as unchanged when its path and (device, inode, size, mtime_ns) are
        those remembered; the others are ``None``. ``None`` when nothing is remembered of
        ``root``. A few rows for the whole directory: a re-log of an unchanged tree, or of one
        where a few files changed, makes no per-file look-up for the files that did not change.
        The versions marked as holding the remembered files (:meth:`mark_tree`) come along.
        """
        key = _tree_key(root)
        try:
            with self._lock:
                conn = self._connect()
                parts = conn.execute(
                    "SELECT part, paths, stats, digests, at FROM trees WHERE key = ? ORDER BY part", (key,)
                ).fetchall()
                marks = conn.execute(
                    "SELECT scope, token, version_digest, prefix, exact, stored_base, generation FROM tree_marks_g "
                    "WHERE key = ?",
                    (key,),
                ).fetchall()
        except sqlite3.Error:
            return None
        patches = [p for p in parts if p[0] < 0]
        chunks = parts[len(patches) :]  # ordered by part: the patches come first
        if not chunks or [p[0] for p in chunks] != list(range(len(chunks))):
            return None  # nothing remembered, or not rows this code wrote
        current = _stat_bytes(stats)
        if current is None:
            return None
        token = max(p[4] for p in parts)
        held_by = {m[0]: TreeMark(m[2], m[3], bool(m[4]), m[5], m[6]) for m in marks if m[1] == token}
        old_paths = b"\0".join([p[1] for p in chunks])
        old_stats: bytes | bytearray = b"".join([p[2] for p in chunks])
        raw: bytes | bytearray = b"".join([p[3] for p in chunks])
        del parts, chunks
        if len(raw) % 32 or len(old_stats) != len(raw) // 32 * _STAT_WIDTH:
            return None  # not rows this code wrote
        if patches:
            patched = _patched(old_stats, raw, reversed(patches))  # -1 first: in the order written
            if patched is None:
                return None
            old_stats, raw = patched
        paths = _join_paths(rels)
        if old_paths == paths:  # the same files: every digest, then the changed files' taken back
            text = raw.hex()
            digests: list[str | None] = [PREFIX + text[k : k + 64] for k in range(0, len(text), 64)]
            if old_stats != current:
                for i in _changed_files(old_stats, current):
                    digests[i] = None
            return KnownTree(digests, token, True, [], held_by)
        out: list[str | None] = [None] * len(rels)
        old_rels = old_paths.decode("utf-8", "surrogateescape").split("\0")
        for i, j in _unchanged_by_path(old_rels, old_stats, rels, current):
            out[i] = PREFIX + raw[j * 32 : j * 32 + 32].hex()
        gone = set(old_rels).difference(rels)
        for i, j in _moved_files(old_rels, old_stats, gone, out, current):
            out[i] = PREFIX + raw[j * 32 : j * 32 + 32].hex()
        return KnownTree(out, token, False, sorted(gone), held_by)

    def mark_tree(self, root: str, token: int, scope: str, mark: TreeMark) -> None:
        """Record that the committed version ``mark.version`` (of the registry and store named by
        ``scope``) holds every file of ``root`` as remembered in the rows named ``token``.

        A no-op when the rows were written again meanwhile (another scan of the directory): the
        mark would then claim files the version may not hold.
        """
        key = _tree_key(root)

        def store(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO tree_marks_g SELECT ?, ?, ?, ?, ?, ?, ?, ? "
                "WHERE (SELECT max(at) FROM trees WHERE key = ?) = ?",
                (
                    key,
                    scope,
                    token,
                    mark.version,
                    mark.prefix,
                    int(mark.exact),
                    mark.stored_base,
                    mark.generation,
                    key,
                    token,
                ),
            )

        self._write(store)

    def remember_tree(
        self,
        root: str,
        rels: Sequence[str],
        stats: Sequence[FileStat],
        digests: Sequence[str],
        changed: tuple[int, Sequence[int]] | None = None,
        since: int | None = None,
        hashed: Iterable[int] = (),
    ) -> int | None:
        """Remember the digests of every file of directory ``root`` (see :meth:`known_tree`);
        returns the token of the rows written, ``None`` if nothing was. Of the files at indices
        ``hashed``, those of :data:`TREE_ALONE_SIZE` or more (every one, where no rows are
        written) are also remembered file by file (:meth:`remember`), in the same transaction.

        A file not :func:`settled` when read from ``since`` on (default: now) is remembered as
        unknown: only that file is looked up again next time. Written :data:`_CHUNK_FILES` files to a row: one row for a
        100,000-file tree raised a first log's peak memory by ~85 bytes a file (SQLite copies a
        bound value and builds the record from it), chunks keep each copy small.

        ``changed`` is ``(token, indices)`` when the rows named ``token`` (:meth:`known_tree`)
        hold the same paths in the same order and only the files at ``indices`` are not as
        they remember: then one *patch* row holds those files' stats and digests (a negative
        part; its ``paths`` are the files' indices as int64s), so a log after a few files changed
        writes what changed whatever the size of the directory. The rows are written whole
        instead once the patches would cover more than 1/:data:`_PATCH_SHARE` of the files, or
        if the rows were written again since ``token`` (another scan's patch on them would be
        marked as neither's).
        """
        key, now = _tree_key(root), time.time_ns()
        since = now if since is None else since

        def row(start: int) -> tuple[bytes, bytearray, bytes] | None:
            end = start + _CHUNK_FILES
            packed = _stat_bytes(stats[start:end], since)
            if packed is None:  # a 64-bit inode number: such trees are not remembered
                return None
            return _join_paths(rels[start:end]), packed, bytes.fromhex("".join(map(hex_of, digests[start:end])))

        def patch(conn: sqlite3.Connection) -> bool | None:
            """Write ``changed`` as a patch row; ``None`` where the rows must be written whole."""
            assert changed is not None
            token, indices = changed
            # Three statements, each answered from an index or from the patch rows alone.
            (at,) = conn.execute("SELECT max(at) FROM trees WHERE key = ?", (key,)).fetchone()
            (first,) = conn.execute("SELECT min(part) FROM trees WHERE key = ?", (key,)).fetchone()
            (covered,) = conn.execute(  # files the patch rows already hold
                "SELECT sum(length(paths) / 8) FROM trees WHERE key = ? AND part < 0", (key,)
            ).fetchone()
            if at != token or (covered or 0) + len(indices) > max(_PATCH_MIN_FILES, len(rels) // _PATCH_SHARE):
                return None
            packed = _stat_bytes([stats[i] for i in indices], since)
            if packed is None:
                return False
            digest_bytes = bytes.fromhex("".join([hex_of(digests[i]) for i in indices]))
            where = struct.pack(f"{len(indices)}q", *indices)
            conn.execute(
                "INSERT INTO trees VALUES (?, ?, ?, ?, ?, ?)",
                (key, min(first, 0) - 1, where, packed, digest_bytes, now),
            )
            return True

        def rewrite(conn: sqlite3.Connection) -> bool:
            """Write the rows whole; False where a file's stat does not fit (nothing remembered)."""
            conn.execute("DELETE FROM trees WHERE key = ?", (key,))
            for part, start in enumerate(range(0, len(rels), _CHUNK_FILES)):
                made = row(start)
                if made is None:
                    return False
                conn.execute("INSERT INTO trees VALUES (?, ?, ?, ?, ?, ?)", (key, part, *made, now))
            return True

        written = False

        def write(conn: sqlite3.Connection) -> None:
            nonlocal written
            patched = patch(conn) if changed is not None else None
            written = rewrite(conn) if patched is None else patched
            if not written:
                conn.execute("DELETE FROM trees WHERE key = ?", (key,))
            # What the rows hold is not also remembered file by file, but for large files: a
            # file is read again only where the rows do not answer (added alone or with another
            # directory, or these rows evicted), which costs little below TREE_ALONE_SIZE.
            alone = hashed if not written else (i for i in hashed if stats[i].st_size >= TREE_ALONE_SIZE)
            _insert_checksums(conn, _checksum_rows(((stats[i], digests[i]) for i in alone), since))
            if patched:  # no directory, and no file of a whole row, more than before: nothing to evict
                return
            conn.execute(  # bounded: the most recent directories only, by count and by files
                "DELETE FROM trees WHERE key NOT IN (SELECT key FROM (SELECT key, "
                "row_number() OVER (ORDER BY max(at) DESC) AS newest, "
                "sum(sum(part >= 0)) OVER (ORDER BY max(at) DESC ROWS UNBOUNDED PRECEDING) AS parts "
                "FROM trees GROUP BY key) WHERE newest = 1 OR (newest <= ? AND parts <= ?))",
                (TREES_KEPT, -(-TREE_FILES_KEPT // _CHUNK_FILES)),
            )
            conn.execute("DELETE FROM tree_marks_g WHERE key NOT IN (SELECT key FROM trees)")

        return now if self._write(write) and written else None
