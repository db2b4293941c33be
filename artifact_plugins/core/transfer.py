"""Moving bytes: uploading a draft's blobs, and materialising a version's entries on disk."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .artifact import PendingEntry
from .client import Client
from .errors import InvalidPathError, StoreError
from .hashing import hash_file
from .manifest import ManifestEntry
from .naming import normalize_entry_path
from .progress import Progress, progress_for
from .references import handler_for
from .storage import BlobStore, RemoteStore, blob_key, parallel_map
from .storage.local import SMALL_FILE

TRANSFER_WORKERS = 4


def _parallel(fn: Callable[[object], None], items: Sequence[object], workers: int = TRANSFER_WORKERS) -> None:
    """Run ``fn`` over ``items`` on a bounded thread pool (serially when that cannot help).

    The first failure stops the transfer: work not yet started is cancelled, not retried to death.
    """
    if len(items) <= 1 or workers <= 1:
        for it in items:
            fn(it)
        return
    parallel_map(fn, items, workers)


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


def upload_blobs(client: Client, pending: Iterable[PendingEntry], label: str) -> int:
    """Step (1) of the commit protocol: send every blob the store does not have. Returns bytes sent."""
    store = client.store
    by_key: dict[str, PendingEntry] = {}
    for p in pending:
        if p.entry.ref is None:
            key = blob_key(p.entry.digest)
            if p.source is not None or key not in by_key:
                by_key[key] = p
    missing = store.missing(by_key)
    lost = sorted(by_key[k].entry.path for k in missing if by_key[k].source is None)
    if lost:
        raise StoreError(
            f"{label}: the stored bytes of {len(lost)} entries carried over from an earlier version are gone "
            f"(first: {lost[0]!r}); that version was garbage-collected — add those files again"
        )
    reused = [k for k in by_key if k not in missing]
    if reused:
        # A reused blob must look young to a concurrent gc; one that gc deleted between the
        # check above and this touch is simply sent again.
        store.touch(reused)
        missing |= {k for k in store.missing(reused) if by_key[k].source is not None}
    todo = [by_key[k] for k in sorted(missing)]
    total = sum(p.entry.size for p in todo)
    with progress_for(f"uploading {label}", total, len(todo)) as progress:

        def put(item: object) -> None:
            assert isinstance(item, PendingEntry) and item.source is not None
            if isinstance(store, RemoteStore):
                counted = _FileProgress(progress)
                store.put_file(blob_key(item.entry.digest), item.source, expect=item.stat, on_bytes=counted)
                counted.done(item.entry.size)
            else:
                store.put_file(blob_key(item.entry.digest), item.source, expect=item.stat)
                progress.advance(item.entry.size)

        _parallel(put, todo, _workers(store, total, len(todo)))
    return total


def _workers(store: BlobStore, total_bytes: int, files: int) -> int:
    """Threads only pay off for network stores or large files: small local copies are
    syscall-bound and extra threads just trade the GIL back and forth (measured: slower)."""
    if isinstance(store, RemoteStore):
        return store.transfer_workers
    if not store.is_local:
        return TRANSFER_WORKERS
    return TRANSFER_WORKERS if files > 4 and total_bytes / files >= SMALL_FILE else 1


def safe_destination(root: Path, entry_path: str) -> Path:
    """The on-disk path of an entry under ``root``, re-validated so nothing can escape ``root``."""
    if normalize_entry_path(entry_path) != entry_path:
        raise InvalidPathError(f"entry path {entry_path!r} is not canonical; refusing to write it")
    dest = root / entry_path
    if os.path.commonpath([os.path.abspath(dest), os.path.abspath(root)]) != os.path.abspath(root):
        raise InvalidPathError(f"entry path {entry_path!r} would be written outside {root}")
    return dest


def materialize(
    client: Client, entries: Sequence[ManifestEntry], root: Path, label: str, verify: bool = False
) -> list[Path]:
    """Write ``entries`` under ``root``; files already there with the right digest are kept.

    Every path is validated before any byte is written. Files appear under their final names
    only when complete (temp file + rename).
    """
    dests = [safe_destination(root, e.path) for e in entries]
    cache = client.checksum_cache
    present: list[bool] = [False] * len(entries)
    existing = [(i, os.stat(d)) for i, d in enumerate(dests) if os.path.isfile(d)]
    if existing:
        known = cache.lookup([st for _, st in existing])
        rehash = []
        for (i, st), digest in zip(existing, known, strict=True):
            if digest is not None:
                present[i] = digest == entries[i].digest
            elif st.st_size == entries[i].size:
                rehash.append((i, st))
        if rehash:
            results = [hash_file(dests[i], st) for i, st in rehash]
            cache.remember((st, d) for d, st in results)
            for (i, _), (d, _) in zip(rehash, results, strict=True):
                present[i] = d == entries[i].digest
    todo = [i for i in range(len(entries)) if not present[i]]
    total = sum(entries[i].size for i in todo)
    made: set[Path] = set()
    for i in todo:
        parent = dests[i].parent
        if parent not in made:
            parent.mkdir(parents=True, exist_ok=True)
            made.add(parent)
    written: list[tuple[os.stat_result, str]] = []
    with progress_for(f"downloading {label}", total, len(todo)) as progress:

        def fetch(item: object) -> None:
            assert isinstance(item, int)
            entry, dest = entries[item], dests[item]
            tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:12]}"
            counted = _FileProgress(progress)
            try:
                fetch_entry(client, entry, tmp, verify, on_bytes=counted)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            if entry.ref is None:  # a reference's digest may describe its URI, not its bytes
                written.append((os.stat(dest), entry.digest))
            counted.done(entry.size)

        _parallel(fetch, todo, _workers(client.store, total, len(todo)))
    cache.remember(written)
    return dests


def fetch_entry(
    client: Client,
    entry: ManifestEntry,
    dest: Path,
    verify: bool = False,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Write one entry's bytes to ``dest`` (not atomic: callers write to a temp name).

    ``on_bytes`` hears about bytes as a remote store downloads them (cache hits report nothing).
    """
    if entry.ref is not None:
        handler_for(entry.ref).fetch(entry, dest)
        return
    store = client.store
    key = blob_key(entry.digest)
    if store.is_local:
        store.get_file(key, dest)
    else:
        if isinstance(store, RemoteStore):
            remote = store
            cached = client.download_cache.fetch(
                entry.digest, lambda tmp: remote.get_file(key, tmp, size=entry.size, on_bytes=on_bytes)
            )
        else:
            cached = client.download_cache.fetch(entry.digest, lambda tmp: store.get_file(key, tmp))
        from .storage.local import copy_file

        copy_file(cached, dest)
    if verify:
        from .errors import IntegrityError

        actual, _ = hash_file(dest)
        if actual != entry.digest:
            raise IntegrityError(f"{entry.path}: stored bytes hash to {actual}, manifest says {entry.digest}")
