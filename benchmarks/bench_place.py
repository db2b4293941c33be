"""The floor under a first log of small files: what putting N new files on this disk costs.

    python benchmarks/bench_place.py [--files 10000] [--size 4096] [--runs 5] [--dir DIR]

A blob must never count as present half-written. The store used to write each new blob under
a temp name and rename it (two directory operations); ``cp -r`` creates each destination once
(one); the store now creates a small blob under its final name unreadable and makes it readable
when complete. This script times, on the disk under ``--dir`` (default: ``benchmarks/.data``), only
the system calls that put ``--files`` new files of ``--size`` bytes into 256 shard
directories, in four ways, each also on two threads (contiguous halves, so no directory is
shared between them):

* ``create``: ``open(O_CREAT|O_EXCL)`` + ``write`` + ``close`` (what ``cp`` does per destination)
* ``temp + rename``: the same under a temp name, then ``rename`` (what the store does for large
  blobs, and did for all)
* ``O_TMPFILE + linkat``: an unnamed file, linked under its name when complete (atomic, one
  directory entry)
* ``create + fchmod``: created under its final name with mode 0, made readable when complete
  (what the store does for small blobs)

and prints the median of ``--runs`` per way. Nothing is deleted between runs (on this VM's
ext4 with ``discard`` a bulk delete slows file creation for seconds): each run's tree is
renamed into a trash directory, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

from smallfiles import add_run_options, add_size_options

SHARDS = 256


def _create(dfd: int, name: str, data: bytes) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444, dir_fd=dfd)
    os.write(fd, data)
    os.close(fd)


def _temp_rename(dfd: int, name: str, data: bytes) -> None:
    tmp = f".tmp-{name}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444, dir_fd=dfd)
    os.write(fd, data)
    os.close(fd)
    os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)


def _tmpfile_linkat(dfd: int, name: str, data: bytes) -> None:
    fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o444, dir_fd=dfd)
    try:
        os.write(fd, data)
        # An absolute /proc path with a real src_dir_fd makes Python call linkat with
        # AT_SYMLINK_FOLLOW (plain link() would not follow the magic link).
        os.link(f"/proc/self/fd/{fd}", name, src_dir_fd=dfd, dst_dir_fd=dfd)
    finally:
        os.close(fd)


def _create_fchmod(dfd: int, name: str, data: bytes) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0, dir_fd=dfd)
    os.write(fd, data)
    os.fchmod(fd, 0o444)
    os.close(fd)


WAYS: dict[str, Callable[[int, str, bytes], None]] = {
    "create": _create,
    "temp + rename": _temp_rename,
    "O_TMPFILE + linkat": _tmpfile_linkat,
    "create + fchmod": _create_fchmod,
}


def one_run(base: Path, trash: Path, way: str, files: int, size: int, threads: int) -> float:
    """Seconds to place ``files`` new files ``way`` on ``threads`` threads."""
    root = base / f"run-{time.monotonic_ns()}"
    dirs = [root / f"{i:02x}" for i in range(SHARDS)]
    for d in dirs:
        d.mkdir(parents=True)
    dfds = [os.open(d, os.O_RDONLY | os.O_DIRECTORY) for d in dirs]
    payloads = [os.urandom(size) for _ in range(64)]
    place = WAYS[way]
    os.sync()  # nothing of an earlier run still being written back

    def work(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            place(dfds[i * SHARDS // files], f"f{i:08d}", payloads[i & 63])

    bounds = [files * k // threads for k in range(threads + 1)]
    workers = [threading.Thread(target=work, args=(bounds[k], bounds[k + 1])) for k in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    for fd in dfds:
        os.close(fd)
    os.rename(root, trash / root.name)
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_options(p)
    add_run_options(p, dir_help="a directory on the disk to measure")
    args = p.parse_args()
    base = Path(args.dir) / "bench-place"
    trash = base / "trash"
    trash.mkdir(parents=True, exist_ok=True)
    samples: dict[tuple[str, int], list[float]] = {(w, t): [] for w in WAYS for t in (1, 2)}
    try:
        for _ in range(args.runs):  # the ways take turns, so a slow minute of the disk hits all
            for key in samples:
                samples[key].append(one_run(base, trash, key[0], args.files, args.size, key[1]))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{args.files:,} new files of {args.size:,} bytes in {SHARDS} directories, median of {args.runs} runs")
    print(f"{'way':<22}{'1 thread':>18}{'2 threads':>18}")
    for way in WAYS:
        cells = []
        for t in (1, 2):
            med = statistics.median(samples[(way, t)])
            cells.append(f"{med:.3f} s {med * 1e6 / args.files:5.1f} us")
        print(f"{way:<22}{cells[0]:>18}{cells[1]:>18}")


if __name__ == "__main__":
    main()
