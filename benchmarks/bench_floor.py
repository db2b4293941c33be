"""What a bare Python loop of a first log's per-file work costs, on one core and on two.

    python benchmarks/bench_floor.py [--files 10000] [--size 4096] [--runs 5] [--dir DIR]

For each file of ``bench_first_log.py``'s small-file set: open, read, ``fstat`` and close it,
BLAKE3 its bytes, create its blob (mode 0) in one of 256 directories, write, ``fchmod`` and
close it: the system calls and the hash that ``bench_first_log.py``'s hash step makes per file,
with none of the project's code around them. Timed in one process, then with the files split in
halves between the process and a forked child (as ``forked.py`` shares them), next to ``cp -r``
of the same files. The distance from these to the hash step is the Python the project adds per
file; these themselves are what Python costs here at the least.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from blake3 import blake3
from smallfiles import cp_r, first_log_set, print_step, small_file_args


def store_all(paths: Sequence[str], dest: str) -> None:
    """Hash each file and write its bytes under ``dest/<2 hex>/<digest>``, read-only once written."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            data = os.read(fd, os.fstat(fd).st_size + 1)
        finally:
            os.close(fd)
        digest = blake3(data).hexdigest()
        fd = os.open(f"{dest}/{digest[:2]}/{digest}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0)
        try:
            os.write(fd, data)
            os.fchmod(fd, 0o444)
        finally:
            os.close(fd)


def fresh_store(root: Path) -> str:
    """An empty store of 256 blob directories under ``root`` (made before any clock starts)."""
    for i in range(256):
        (root / f"{i:02x}").mkdir(parents=True)
    return str(root)


def one_core(paths: Sequence[str], root: Path) -> float:
    """Seconds :func:`store_all` takes over every file in this process."""
    dest = fresh_store(root)
    started = time.perf_counter()
    store_all(paths, dest)
    return time.perf_counter() - started


def two_cores(paths: Sequence[str], root: Path) -> float:
    """Seconds :func:`store_all` takes with the second half of the files in a forked child."""
    dest = fresh_store(root)
    half = len(paths) // 2
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            store_all(paths[half:], dest)
        finally:
            os._exit(0)
    store_all(paths[:half], dest)
    os.waitpid(pid, 0)
    return time.perf_counter() - started


def main() -> None:
    args = small_file_args(__doc__)
    base = Path(args.dir)
    src = first_log_set(base, args.files, args.size)
    paths = sorted(str(p) for p in src.rglob("*") if p.is_file())
    trash = base / f"floor-trash-{uuid.uuid4().hex}"
    trash.mkdir(parents=True)
    runs: dict[str, list[float]] = {"one core": [], "two cores": [], "cp -r": []}
    try:
        for k in range(args.runs):
            os.sync()
            runs["cp -r"].append(cp_r(src, trash / f"cp-{k}"))
            os.sync()
            runs["one core"].append(one_core(paths, trash / f"one-{k}"))
            os.sync()
            runs["two cores"].append(two_cores(paths, trash / f"two-{k}"))
    finally:
        shutil.rmtree(trash, ignore_errors=True)
    print(f"read, hash and store {len(paths):,} files of {args.size:,} bytes, bare loop: median of {args.runs} runs")
    for label, seconds in runs.items():
        print_step(label, statistics.median(seconds), len(paths))


if __name__ == "__main__":
    main()
