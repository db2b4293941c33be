"""How the local store places many small blobs: serially, paced, or on threads, on a settled
disk and on one busy right after a bulk delete.

    python benchmarks/bench_pacing.py [--files 10000] [--size 4096] [--runs 5] [--dir DIR]

Generates ``--files`` files of ``--size`` distinct bytes (under ``--dir``, default
``benchmarks/.data``; the same set as ``bench_first_log.py``), hashes them once, and then times
what a first log's "store" step does with them: ``LocalStore.put_file`` of every file (read,
check its digest, temp + rename), in digest order, into a new store, three ways:

* ``serial``: one after another (what the store did before pacing)
* ``paced``: :func:`artifact_plugins.core.pacing.run_paced`, what uploads and downloads of
  small local files use now: serial while calls are quick, on 4 threads while they are slow
* ``threads``: always on 4 threads, contiguous slices

in two states of the disk, the ways taking turns run by run:

* ``settled``: after :func:`smallfiles.wait_until_settled`, nothing deleted since
* ``after a bulk delete``: right after deleting a copy of the files (on this VM's ext4 with
  ``discard``, creating files is then several times slower for a while; a network file system
  makes every create wait in much the same way)

and prints the median of each, and its ratio to ``serial``. Stores are renamed into a trash
directory between runs, removed at the end.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from smallfiles import first_log_set, small_file_args, wait_until_settled

from artifact_plugins.core.hashing import FileStat, compact_stat, hash_file
from artifact_plugins.core.pacing import _in_slices, run_paced
from artifact_plugins.core.storage import blob_key
from artifact_plugins.core.storage.local import LocalStore
from artifact_plugins.core.transfer import TRANSFER_WORKERS

Item = tuple[str, str, FileStat]


def _serial(fn: Callable[[Item], None], items: list[Item]) -> None:
    for item in items:
        fn(item)


def _paced(fn: Callable[[Item], None], items: list[Item]) -> None:
    run_paced(fn, items, TRANSFER_WORKERS)


def _threads(fn: Callable[[Item], None], items: list[Item]) -> None:
    with ThreadPoolExecutor(TRANSFER_WORKERS) as pool:  # what a paced group does when it is slow
        _in_slices(pool, fn, items, 0, len(items), TRANSFER_WORKERS)


WAYS: dict[str, Callable[[Callable[[Item], None], list[Item]], None]] = {
    "serial": _serial,
    "paced": _paced,
    "threads": _threads,
}


def one_run(trash: Path, way: str, items: list[Item]) -> float:
    """Seconds to store every item into a new store ``way``."""
    root = trash / f"store-{uuid.uuid4().hex}"
    store = LocalStore(str(root))
    os.sync()

    def put(item: Item) -> None:
        store.put_file(item[0], item[1], expect=item[2])

    start = time.perf_counter()
    WAYS[way](put, items)
    return time.perf_counter() - start


def bulk_delete(src: Path, trash: Path) -> None:
    """Copy the files and delete the copy: what leaves this disk busy discarding."""
    copy = trash / f"deleted-{uuid.uuid4().hex}"
    shutil.copytree(src, copy)
    os.sync()
    shutil.rmtree(copy)


def main() -> None:
    args = small_file_args(__doc__)
    base = Path(args.dir)
    src = first_log_set(base, args.files, args.size)
    items: list[Item] = []
    for path in sorted(str(f) for f in src.rglob("*.bin")):
        digest, st = hash_file(path)
        items.append((blob_key(digest), path, compact_stat(st)))
    items.sort()  # the order uploads place blobs in
    trash = base / f"pacing-trash-{uuid.uuid4().hex}"
    trash.mkdir(parents=True)
    samples: dict[tuple[str, str], list[float]] = {}
    try:
        wait_until_settled(trash)
        for _ in range(args.runs):
            for way in WAYS:
                samples.setdefault(("settled", way), []).append(one_run(trash, way, items))
        for _ in range(args.runs):
            for way in WAYS:
                bulk_delete(src, trash)
                samples.setdefault(("after a bulk delete", way), []).append(one_run(trash, way, items))
    finally:
        shutil.rmtree(trash, ignore_errors=True)
    print(f"storing {args.files:,} new files of {args.size:,} bytes: median of {args.runs} runs")
    print(f"{'disk':<21}{'way':<9}{'time':>10}{'a file':>11}{'/ serial':>10}")
    for state in ("settled", "after a bulk delete"):
        serial = statistics.median(samples[(state, "serial")])
        for way in WAYS:
            med = statistics.median(samples[(state, way)])
            print(f"{state:<21}{way:<9}{med:8.3f} s{med * 1e6 / args.files:7.1f} us{med / serial:10.2f}")


if __name__ == "__main__":
    main()
