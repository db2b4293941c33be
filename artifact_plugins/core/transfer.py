"""Moving bytes: uploading a draft's blobs, and materialising a version's entries on disk."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat as stat_mod
import struct
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import cast

from .artifact import PendingEntry
from .cache import SMALL_BLOB
from .client import Client
from .download_claims import IN_ROOT_PREFIX, Claim, claim, remove_tagged, sweep
from .errors import InvalidInputError, InvalidPathError, StoreError
from .forked import fork_pays, run_forked
from .hashing import ChecksumCache, FileStat, Stat, compact_stat, hash_file, stat_files
from .manifest import ManifestEntry
from .naming import normalize_entry_path
from .pacing import run_paced
from .progress import Progress, progress_for
from .references import handler_for, is_unchecked
from .storage import BlobStore, RemoteStore, blob_key, parallel_map
from .storage.base import local_write_error, temp_token
from .storage.local import SMALL_FILE, LocalStore

TRANSFER_WORKERS = 4


def _transfer(fn: Callable[[object], None], items: Sequence[object], store: BlobStore, total_bytes: int) -> None:
    """Run ``fn`` over ``items``, the files of one transfer of ``total_bytes`` with ``store``.

    Network stores and large files go on a bounded thread pool. Small local copies run serially
    while the disk keeps up and on threads while it makes them wait (:func:`run_paced`). The
    first failure stops the transfer: work not yet started is not run, not retried to death.
    """
    if len(items) <= 1:
        for it in items:
            fn(it)
    elif isinstance(store, RemoteStore):
        parallel_map(fn, items, store.transfer_workers)
    elif not store.is_local or (len(items) > 4 and total_bytes / len(items) >= SMALL_FILE):
        parallel_map(fn, items, TRANSFER_WORKERS)
    else:
        run_paced(fn, items, TRANSFER_WORKERS)


class _FileProgress:
    """One file's share of a transfer's progress: bytes as a remote store moves them, then the file.

    Squares the account when the file is done, so retries and skipped (already present) bytes
    never leave the total off.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress, self.moved = progress, 0

    def __call__(self, nbytes: int) -> None:
        self.moved += nbytes
        self.progress.advance(nbytes, 0)

    def done(self, size: int) -> None:
        self.progress.advance(size - self.moved, 1)


def upload_blobs(client: Client, pending: Iterable[PendingEntry], label: str, *, skip_held: bool = False) -> int:
    """Step (1) of the commit protocol: send every blob the store does not have. Returns bytes sent.

    With ``skip_held``, blobs of entries flagged ``held`` are taken as present without asking
    the store: the caller checks that the versions holding them are still committed.
    """
    store = client.store
    blobs = _distinct_blobs(p for p in pending if not p.held) if skip_held else _distinct_blobs(pending)
    if isinstance(store, LocalStore):
        # What a concurrent gc might delete is guarded by the commit's turn (store_then_record),
        # not by touching: one look per blob.
        todo: list[PendingEntry] = []
        for start in range(0, len(blobs), _KEY_CHUNK):  # key strings live for one chunk only
            chunk = blobs[start : start + _KEY_CHUNK]
            keys = [blob_key(p.entry.digest) for p in chunk]
            gone = store.missing(keys)
            if gone:
                todo.extend(p for p, k in zip(chunk, keys, strict=True) if k in gone)
    else:  # one call with every key: a remote store plans its listings over all of them
        gone = store.missing(blob_key(p.entry.digest) for p in blobs)
        todo = [p for p in blobs if blob_key(p.entry.digest) in gone]
    _check_lost(todo, label)
    total = sum(p.entry.size for p in todo)
    with progress_for(f"uploading {label}", total, len(todo)) as progress:

        def put(item: object) -> None:
            assert isinstance(item, PendingEntry)
            source, size = item.source, item.entry.size  # the source path is built per call
            assert source is not None
            if isinstance(store, RemoteStore):
                counted = _FileProgress(progress)
                store.put_file(blob_key(item.entry.digest), source, expect=item.hashed_stat, on_bytes=counted)
                counted.done(size)
            else:
                store.put_file(blob_key(item.entry.digest), source, expect=item.hashed_stat)
                progress.advance(size)

        _transfer(put, todo, store, total)
    return total


#: Blob keys built at a time while the local store is asked about them.
_KEY_CHUNK = 10_000


def _distinct_blobs(pending: Iterable[PendingEntry]) -> list[PendingEntry]:
    """One pending entry per blob the entries need (references need none), in digest order.

    Where entries share a digest, one with a local source is kept: it can send the bytes. No
    dict or set over every digest: at 100,000 distinct blobs those were a tenth of a log's peak
    memory; a sorted list costs a pointer per blob.
    """
    blobs = sorted((p for p in pending if p.entry.ref is None), key=_digest_of)
    distinct: list[PendingEntry] = []
    for p in blobs:
        if distinct and distinct[-1].entry.digest == p.entry.digest:
            if distinct[-1].source is None and p.source is not None:
                distinct[-1] = p
            continue
        distinct.append(p)
    return distinct


def _digest_of(p: PendingEntry) -> str:
    return p.entry.digest


def _check_lost(missing: Iterable[PendingEntry], label: str) -> None:
    """Refuse to commit when blobs of entries carried over without a local source are gone."""
    lost = sorted(p.entry.path for p in missing if p.origin is None)  # no source (origin is cheaper)
    if lost:
        raise StoreError(
            f"{label}: the stored bytes of {len(lost)} entries carried over from an earlier version are gone "
            f"(first: {lost[0]!r}); that version was garbage-collected — add those files again"
        )


def safe_destination(root: Path, entry_path: str) -> Path:
    """The on-disk path of an entry under ``root``, re-validated so nothing can escape ``root``."""
    _check_destination(os.path.abspath(root), entry_path)
    return root / entry_path


def _check_destination(root_abs: str, entry_path: str) -> None:
    if normalize_entry_path(entry_path) != entry_path:
        raise InvalidPathError(f"entry path {entry_path!r} is not canonical; refusing to write it")
    # A canonical path is relative and has no '..' or empty segments, so joining it to the
    # root cannot leave the root; the check below is a cheap second line of defence.
    if entry_path.startswith("/") or "/../" in f"/{entry_path}/":
        raise InvalidPathError(f"entry path {entry_path!r} would be written outside {root_abs}")


def materialize(
    client: Client,
    entries: Sequence[ManifestEntry],
    root: str | os.PathLike[str],
    label: str,
    verify: bool = False,
    fresh: bool = False,
) -> None:
    """Write ``entries`` under ``root``; files already there with the right digest are kept.

    Every path is validated before any byte is written. Files appear under their final names
    only when complete (temp file + rename); the temp files carry a token claimed for this
    download (``download_claims.py``), so the next download into ``root`` removes those a killed
    one left. ``fresh`` says ``root`` is a directory this call's caller just created and nobody
    else sees yet (see :func:`download_tree`): nothing can be there, so nothing is looked up,
    and files are written in place (a failed file is removed).
    """
    root_abs, base = os.path.abspath(root), os.fspath(root)
    for e in entries:
        _check_destination(root_abs, e.path)
    if fresh:
        _materialize(client, entries, base, label, verify, None)
        return
    sweep(base, IN_ROOT_PREFIX, lambda token: remove_tagged(base, token))  # what killed downloads left
    try:
        mine: Claim | None = claim(base, IN_ROOT_PREFIX)
    except OSError:  # a root we cannot write to: the first file says so, naming the root
        mine = None
    try:
        _materialize(client, entries, base, label, verify, mine.token if mine else temp_token())
    finally:
        if mine is not None:
            mine.release()


def _materialize(
    client: Client, entries: Sequence[ManifestEntry], base: str, label: str, verify: bool, token: str | None
) -> None:
    """:func:`materialize` once the paths are checked: temp files named with ``token``, or (``None``:
    a fresh root) files written in place."""
    cache = client.checksum_cache
    # Indices and destination paths are made as they are needed: at a million entries, lists of
    # them were hundreds of MiB of a download's peak memory.
    todo: Sequence[int] = range(len(entries))
    if token is not None:
        present = _present(cache, entries, base)
        todo = [i for i in todo if not present[i]]
    total = sum(entries[i].size for i in todo)
    made: set[str] = set()
    for i in todo:
        parent = f"{base}/{entries[i].path}".rsplit("/", 1)[0]
        if parent not in made:
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as exc:
                raise (local_write_error(exc, parent) or StoreError(f"cannot create {parent}: {exc}")) from exc
            made.add(parent)
    written: list[tuple[Stat, str]] = []
    fetched_refs: list[tuple[Stat, str, str]] = []
    remote = not client.store.is_local
    with progress_for(f"downloading {label}", total, len(todo)) as progress:

        def target_of(item: int) -> tuple[str, str]:
            dest = f"{base}/{entries[item].path}"
            if token is None:
                return dest, dest
            parent, _, name = dest.rpartition("/")
            return dest, f"{parent}/.{name}.tmp-{token}"

        def land(item: int, counted: _FileProgress | None = None) -> FileStat | None:
            """Entry ``item`` written to its destination; the stat it landed with (``None``: a reference)."""
            entry = entries[item]
            dest, target = target_of(item)
            try:
                landed = fetch_entry(client, entry, target, verify, on_bytes=counted)
                if entry.ref is not None and not is_unchecked(entry) and os.path.isfile(target):
                    # What the object's identity fetched, by content: the next download keeps the file
                    # while it still holds these bytes, and verify can check it.
                    content, st = hash_file(target)
                    fetched_refs.append((st, entry.digest, content))
                    written.append((compact_stat(st), content))
                if target is not dest:
                    try:
                        _replace(target, dest)
                    except OSError as exc:
                        raise (local_write_error(exc, dest) or StoreError(f"cannot write {dest}: {exc}")) from exc
            except BaseException:
                _remove(target)
                raise
            # A reference's digest describes its object's identity, not its bytes. The stat taken
            # while writing holds for ``dest``: a rename keeps inode, size and mtime.
            return None if entry.ref is not None else compact_stat(landed or os.stat(dest))

        def fetch(item: object) -> None:
            assert isinstance(item, int)
            counted = _FileProgress(progress) if remote else None  # only a remote store reports bytes
            st = land(item, counted)
            if st is not None:
                written.append((st, entries[item].digest))
            if counted is None:
                progress.advance(entries[item].size)
            else:
                counted.done(entries[item].size)

        try:
            store = client.store
            if isinstance(store, LocalStore) and fork_pays(len(todo)):
                _fetch_forked(store, entries, todo, fetch, land, target_of, written, progress)
            else:
                _transfer(fetch, todo, store, total)
        finally:  # what did arrive is known good: a retry need not hash it again
            cache.remember(written)
            cache.remember_fetched(fetched_refs)


#: What a forked child hands back per file it copied: the :class:`FileStat` it landed with.
_LANDED = struct.Struct(f"{len(FileStat._fields)}q")


def _copied_in_memory(entry: ManifestEntry) -> bool:
    """Whether a local download of ``entry`` is one read and one write (a small blob, not a reference)."""
    return entry.ref is None and entry.size < SMALL_FILE


def _fetch_forked(
    store: BlobStore,
    entries: Sequence[ManifestEntry],
    todo: Sequence[int],
    fetch: Callable[[object], None],
    land: Callable[[int], FileStat | None],
    target_of: Callable[[int], tuple[str, str]],
    written: list[tuple[Stat, str]],
    progress: Progress,
) -> None:
    """:func:`_materialize`'s copies with the small blobs shared with a forked child (``forked.py``),
    which writes the files and hands back their stats; the parent keeps the progress and the record."""
    rest = [i for i in todo if not _copied_in_memory(entries[i])]
    _transfer(fetch, rest, store, sum(entries[i].size for i in rest))
    stats: dict[int, FileStat] = {}  # the child's: what it exports

    def land_quietly(item: int) -> None:
        stats[item] = cast(FileStat, land(item))  # a blob, not a reference: it has a stat

    def adopt(item: int, data: bytes) -> None:
        written.append((compact_stat(FileStat(*_LANDED.unpack(data))), entries[item].digest))
        progress.advance(entries[item].size)

    run_forked(
        fetch,  # type: ignore[arg-type]  # items are indices
        array("q", (i for i in todo if _copied_in_memory(entries[i]))),
        child_fn=land_quietly,
        export=lambda item: _LANDED.pack(*stats[item]),
        adopt=adopt,
        undo=lambda item: _remove(target_of(item)[1]),  # a file the child was killed writing
        width=_LANDED.size,
        run=lambda fn, items: _transfer(
            cast(Callable[[object], None], fn), items, store, sum(entries[i].size for i in items)
        ),
    )


def _present(cache: ChecksumCache, entries: Sequence[ManifestEntry], base: str) -> bytearray:
    """Which entries are already under ``base`` with the right content (stat + checksum cache, else hashed).

    A checked reference's digest names its object's identity, not its bytes: its file counts as
    present when this machine fetched that object to it (:meth:`ChecksumCache.fetched`) and the
    file still holds the bytes fetched. An unchecked reference is always fetched again.
    """
    is_reg = stat_mod.S_ISREG
    existing = [
        (i, st)
        for i, st in enumerate(stat_files(len(entries), lambda i: f"{base}/{entries[i].path}"))
        if st is not None and is_reg(st.st_mode) and not (entries[i].ref is not None and is_unchecked(entries[i]))
    ]
    contents: dict[int, str] = {}
    if existing:
        rehash = []
        for (i, st), digest in zip(existing, cache.lookup([st for _, st in existing]), strict=True):
            if digest is not None:
                contents[i] = digest
            elif st.st_size == entries[i].size:
                rehash.append((i, st))
        if rehash:
            since = time.time_ns()
            results = [hash_file(f"{base}/{entries[i].path}", st) for i, st in rehash]
            cache.remember(((st, d) for d, st in results), since)
            contents.update((i, d) for (i, _), (d, _) in zip(rehash, results, strict=True))
    present = bytearray(len(entries))
    refs: list[tuple[int, FileStat]] = []
    for i, st in existing:
        if contents.get(i) == entries[i].digest:  # stored bytes, or a file:// reference's content digest
            present[i] = 1
        elif i in contents and entries[i].ref is not None:
            refs.append((i, st))
    if refs:
        for (i, _), record in zip(refs, cache.fetched([st for _, st in refs]), strict=True):
            present[i] = record == (entries[i].digest, contents[i])
    return present


def _remove(path: str) -> None:
    """Remove a file (or an unchecked prefix reference's directory) a failed fetch left behind."""
    with contextlib.suppress(OSError):  # EROFS/EPERM too: never mask the real error
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def download_tree(
    client: Client, entries: Sequence[ManifestEntry], root: str | os.PathLike[str], label: str, verify: bool = False
) -> None:
    """Materialise ``entries`` as the directory ``root``.

    A ``root`` that does not exist yet is built as a hidden sibling directory and renamed into
    place at the end: no temp name and rename per file (two directory operations per file were
    most of a 10,000-file download), and no reader ever sees a half-built tree at ``root``. If
    the build fails, what arrived complete is still renamed into place, so a retry does not fetch
    it again. If something else created ``root`` meanwhile, the download goes into it file by
    file, as into any existing directory.
    """
    root = os.fspath(root)
    if os.path.lexists(root):
        if not os.path.isdir(root):
            raise InvalidInputError(f"cannot download into {root!r}: it exists and is not a directory")
        materialize(client, entries, root, label, verify)
        return
    parent, name = os.path.split(os.path.abspath(root))
    try:
        os.makedirs(parent, exist_ok=True)
        staging, mine = _new_staging(parent, name)
    except OSError as exc:
        raise (local_write_error(exc, root) or StoreError(f"cannot create {root}: {exc}")) from exc
    placed = False
    try:
        materialize(client, entries, staging, label, verify, fresh=True)
    finally:  # on failure too: what arrived is complete, a retry keeps it
        try:
            os.rename(staging, root)  # also replaces an empty directory made meanwhile
            placed = True
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
        mine.release()
    if not placed:  # ``root`` appeared meanwhile, not empty: fill it the careful way
        materialize(client, entries, root, label, verify)


def stray_files(root: str | os.PathLike[str], entries: Sequence[ManifestEntry], limit: int = 3) -> list[str]:
    """The first ``limit`` (sorted) of the files under the directory ``root`` that none of ``entries``
    puts there, as ``/``-separated paths under ``root``; none if ``root`` is not a directory.

    Hidden names (``.…``) the version does not have do not count: downloads leave their claims
    and temp files there under such names, and file browsers and notebooks their own
    (``.DS_Store``, ``.ipynb_checkpoints``). Nor does anything inside the directory of an
    unchecked prefix reference. A symlink the version does not have counts. Names are listed,
    not stat'ed.
    """
    wanted = {e.path for e in entries}
    found: list[str] = []
    stack = [(os.fspath(root), "")]
    while stack:
        top, prefix = stack.pop()
        try:
            with os.scandir(top) as listing:
                for item in listing:
                    rel = prefix + item.name
                    if rel in wanted or item.name.startswith("."):  # also a reference's directory
                        continue
                    if item.is_dir(follow_symlinks=False):
                        stack.append((item.path, rel + "/"))
                    else:
                        found.append(rel)
        except (FileNotFoundError, NotADirectoryError):
            continue
    return sorted(found)[:limit]


def _new_staging(parent: str, name: str) -> tuple[str, Claim]:
    """A new hidden directory beside ``name`` to build it in, claimed for this download.

    Staging directories of downloads of the same root that died are removed first, so a
    download killed mid-way leaves nothing behind past the next download of the same root.
    """
    prefix = f".{name}.tmp-"
    sweep(parent, prefix, lambda token: shutil.rmtree(os.path.join(parent, f"{prefix}{token}"), ignore_errors=True))
    mine = claim(parent, prefix)
    staging = os.path.join(parent, f"{prefix}{mine.token}")
    try:
        os.mkdir(staging)
    except BaseException:
        mine.release()
        raise
    return staging, mine


def _replace(tmp: str, dest: str) -> None:
    """Rename a fetched file (or the directory of an unchecked prefix reference) onto ``dest``."""
    if not os.path.isdir(tmp):
        os.replace(tmp, dest)
        return
    if os.path.isdir(dest) and not os.path.islink(dest):
        old = f"{tmp}.old"
        os.replace(dest, old)  # a directory cannot be renamed over a non-empty one
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
        return
    if os.path.lexists(dest):
        os.unlink(dest)
    os.replace(tmp, dest)


def fetch_entry(
    client: Client,
    entry: ManifestEntry,
    dest: str | os.PathLike[str],
    verify: bool = False,
    on_bytes: Callable[[int], None] | None = None,
) -> os.stat_result | None:
    """Write one entry's bytes to ``dest`` (not atomic: callers write to a temp name).

    ``on_bytes`` hears about bytes as a remote store downloads them (cache hits report nothing).
    Returns ``dest``'s stat when it was taken while writing (small blobs of the local store).
    """
    if entry.ref is not None:
        handler_for(entry.ref, client.settings.store_access).fetch(entry, dest)
        return None
    store = client.store
    key = blob_key(entry.digest)
    landed: os.stat_result | None = None
    if isinstance(store, LocalStore) and store.is_local:
        landed = store.get_file(key, dest, size=entry.size)
    elif entry.size <= SMALL_BLOB:
        size = client.download_cache.fetch_small(entry.digest, lambda: store.get_bytes(key), dest)
        if on_bytes is not None:
            on_bytes(size)
    else:
        cached = client.download_cache.get(entry.digest)
        if cached is None and isinstance(store, RemoteStore):
            # A large blob goes straight to its destination, verified part by part as it lands. It is
            # not also copied into the shared cache: a second full copy of every large file would
            # double the disk used and the time (files already in the destination are not fetched again).
            store.get_file(key, dest, size=entry.size, on_bytes=on_bytes, digest=entry.digest)
            return None
        if cached is None:
            cached = client.download_cache.fetch(entry.digest, lambda tmp: store.get_file(key, tmp))
        from .storage.local import copy_file

        try:
            copy_file(cached, dest)
        except OSError as exc:
            raise (local_write_error(exc, dest) or StoreError(f"cannot copy {cached} to {dest}: {exc}")) from exc
    if verify:
        from .errors import IntegrityError

        actual, _ = hash_file(dest)
        if actual != entry.digest:
            raise IntegrityError(f"{entry.path}: stored bytes hash to {actual}, manifest says {entry.digest}")
    return landed
